"""Hard space-group conditioning (DiffCSP++-style sampling inside Wyckoff templates) vs. the
Wyckoff transformer's own samples: success, P1 share, validity, seconds.

    .venv/bin/python benchmarks/bench_spacegroup_hard.py --n 500 --out benchmarks/results/sg-hard
    .venv/bin/python benchmarks/bench_spacegroup_hard.py --n 5 --dng-baseline 5 --steps 20 \\
        --out /tmp/sg-hard                                                   # smoke test

Generators, ``--n`` samples per space group (``generate(n, spacegroup=sg, seed=--seed)``):

* ``hard-flow`` (and ``hard-diffusion`` with ``--diffusion``): :class:`SymmetricSampler` with
  the shipped CSP model (``--csp``, ``--csp-diffusion``) and templates from ``--templates``
  (``mp20-dng-wyckoff``, whose own detected-group filter is on: a template is a crystal of the
  requested group). The model samples from pure noise (``--noise-level 1``) with the projection
  after every step; samples with atoms closer than 0.5 angstrom are redrawn (counted), and
  with ``--enforce-spacegroup`` also samples detected in another group (a supergroup).
* ``wyckoff``: the Wyckoff transformer's own samples with its detected-group filter *off*
  (``enforce_spacegroup=False``), so its raw success rate is measured; its 0.5 angstrom
  overlap filter stays on, as for the hard sampler.
* ``--dng-baseline N``: N unconditional samples of ``mp20-dng-flow`` (no space-group input),
  whose P1 share is the issue's starting point (180 of 200 at symprec 0.1).

Figures per (generator, group), of the *returned* samples: ``success`` (spglib group ==
requested at symprec 0.1, angle tolerance 5; also at 0.01), ``p1`` (group 1 at 0.1),
``struct_valid`` / ``comp_valid`` / ``valid`` (:mod:`xtalgen.metrics.validity`: 0.5 angstrom and
0.1 A^3; SMACT), ``success_per_draw`` (matches / (returned + redrawn samples)), seconds
(wall, ``--threads`` torch threads). Each (generator, group) is cached as OUT/parts/*.json
(rerun to resume); OUT/results.json and OUT/results.md hold everything.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

GROUPS = (225, 221, 194, 191, 166, 139, 62, 14, 12, 2)
"""The commonest space groups of MP-20 (all seven crystal systems but trigonal's 166 only)."""


def score(crystals: list, requested: int | None) -> dict:
    """Symmetry and validity figures of a list of crystals."""
    from xtalgen.metrics.validity import smact_validity, structure_validity
    from xtalgen.representations.wyckoff import detected_spacegroup

    if not crystals:
        return {"returned": 0}
    sg1 = np.array([detected_spacegroup(c, 0.1) for c in crystals])
    sg2 = np.array([detected_spacegroup(c, 0.01) for c in crystals])
    struct = np.array([structure_validity(c) for c in crystals])
    comp = np.array([smact_validity(c) for c in crystals])
    out = {"returned": len(crystals), "p1": float(np.mean(sg1 == 1)),
           "struct_valid": float(struct.mean()), "comp_valid": float(comp.mean()),
           "valid": float((struct & comp).mean()),
           "detected_top": {int(k): v for k, v in Counter(sg1.tolist()).most_common(5)}}
    if requested is not None:
        out["success"] = float(np.mean(sg1 == requested))
        out["success_0.01"] = float(np.mean(sg2 == requested))
        out["matches"] = int(np.sum(sg1 == requested))
    return out


def run_part(path: Path, make) -> dict:
    """One (generator, group) result, cached at ``path``."""
    if path.is_file():
        return json.loads(path.read_text())
    start = time.perf_counter()
    crystals, report, requested = make()
    result = {"seconds": time.perf_counter() - start, **score(crystals, requested), "report": report}
    redrawn = sum(v for k, v in report.get("failed_attempts", {}).items() if k != "no template")
    if requested is not None and crystals:
        result["success_per_draw"] = result["matches"] / (len(crystals) + redrawn)
    path.write_text(json.dumps(result, indent=1, default=str))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=500, help="samples per space group")
    parser.add_argument("--groups", default=",".join(map(str, GROUPS)))
    parser.add_argument("--csp", default="mp20-csp-flow")
    parser.add_argument("--csp-diffusion", default="mp20-csp-diffusion")
    parser.add_argument("--diffusion", action="store_true", help="also the CSP diffusion model")
    parser.add_argument("--templates", default="mp20-dng-wyckoff")
    parser.add_argument("--steps", type=int, default=None, help="sampler steps (default: model's)")
    parser.add_argument("--noise-level", type=float, default=1.0)
    parser.add_argument("--enforce-spacegroup", action="store_true",
                        help="hard samplers redraw samples detected in another group (supergroups)")
    parser.add_argument("--dng-baseline", type=int, default=200,
                        help="unconditional mp20-dng-flow samples for its P1 share (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from xtalgen.models.registry import load_generator
    from xtalgen.pipelines.symmetric_sampling import SymmetricSampler, WyckoffTemplates

    groups = [int(g) for g in args.groups.split(",")]
    parts = args.out / "parts"
    tag = f"n{args.n}-seed{args.seed}-steps{args.steps}"  # cached parts are reused only for these
    hard_tag = f"{tag}-noise{args.noise_level:g}" + ("-enforce" if args.enforce_spacegroup else "")
    parts.mkdir(parents=True, exist_ok=True)
    wyckoff = load_generator(args.templates, device=args.device)
    samplers = {"hard-flow": args.csp}
    if args.diffusion:
        samplers["hard-diffusion"] = args.csp_diffusion
    results: dict[str, dict] = {}
    for name, checkpoint in samplers.items():
        model = load_generator(checkpoint, n_steps=args.steps, batch_size=args.batch_size,
                               device=args.device)
        sampler = SymmetricSampler(model, WyckoffTemplates(wyckoff), noise_level=args.noise_level,
                                   enforce_spacegroup=args.enforce_spacegroup)
        for sg in groups:
            def make(sampler=sampler, sg=sg):
                out = sampler.generate(args.n, spacegroup=sg, seed=args.seed)
                report = dict(sampler.last_report, templates=dict(wyckoff.last_report))
                return out, report, sg
            results.setdefault(name, {})[sg] = run_part(parts / f"{name}-{sg}-{hard_tag}.json", make)
            print(name, sg, {k: v for k, v in results[name][sg].items() if k != "report"}, flush=True)

    for sg in groups:
        def make_wyckoff(sg=sg):
            wyckoff.enforce_spacegroup = False
            try:
                out = wyckoff.generate(args.n, spacegroup=sg, seed=args.seed)
            finally:
                wyckoff.enforce_spacegroup = True
            return out, dict(wyckoff.last_report), sg
        results.setdefault("wyckoff", {})[sg] = run_part(parts / f"wyckoff-{sg}-{tag}.json", make_wyckoff)
        print("wyckoff", sg, {k: v for k, v in results["wyckoff"][sg].items() if k != "report"}, flush=True)

    if args.dng_baseline:
        def make_dng():
            dng = load_generator("mp20-dng-flow", n_steps=args.steps, batch_size=args.batch_size,
                                 device=args.device)
            return dng.generate(args.dng_baseline, seed=args.seed), {}, None
        results["dng-flow (unconditional)"] = {
            0: run_part(parts / f"dng-flow-{args.dng_baseline}-seed{args.seed}-steps{args.steps}.json",
                 make_dng)}

    summary = {}
    for name, per_group in results.items():
        rows = [r for r in per_group.values() if r.get("returned")]
        n_ret = sum(r["returned"] for r in rows)
        summary[name] = {"returned": n_ret, "seconds": sum(r["seconds"] for r in per_group.values())}
        for key in ("success", "success_0.01", "p1", "struct_valid", "comp_valid", "valid"):
            if rows and all(key in r for r in rows):
                summary[name][key] = sum(r[key] * r["returned"] for r in rows) / max(n_ret, 1)
    flags = [f"--{k.replace('_', '-')}" + ("" if isinstance(v, bool) else f" {v}")
             for k, v in vars(args).items() if v is not None and v is not False]
    payload = {"command": "python benchmarks/bench_spacegroup_hard.py " + " ".join(flags),
               "date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.node(),
               "torch_threads": args.threads, "device": args.device, "groups": groups,
               "summary": summary, "per_group": results}
    (args.out / "results.json").write_text(json.dumps(payload, indent=1, default=str))

    lines = ["# Hard space-group conditioning", "", f"`{payload['command']}` ({payload['date']})", "",
             "| generator | group | returned | success@0.1 | success@0.01 | P1 | struct valid | "
             "comp valid | valid | success/draw | seconds |", "|" + "---|" * 11]
    for name, per_group in results.items():
        for sg, r in per_group.items():
            cells = [name, str(sg or "-"), str(r.get("returned", 0))]
            for key in ("success", "success_0.01", "p1", "struct_valid", "comp_valid", "valid",
                        "success_per_draw"):
                cells.append(f"{r[key]:.3f}" if key in r else "-")
            cells.append(f"{r['seconds']:.1f}")
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| generator | returned | success@0.1 | success@0.01 | P1 | valid | seconds |",
              "|" + "---|" * 7]
    for name, s in summary.items():
        cells = [name, str(s["returned"])] + [f"{s[k]:.3f}" if k in s else "-" for k in
                                              ("success", "success_0.01", "p1", "valid")]
        lines.append("| " + " | ".join([*cells, f"{s['seconds']:.1f}"]) + " |")
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
