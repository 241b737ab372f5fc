"""Powder-pattern matching: how often does the structure behind a pattern rank first?

Protocol. 100 seeded targets of MP-20 ``pilot_test``. For each, a synthetic "measured" pattern
(:func:`xtalgen.diffraction.synthetic_measurement`, seed = 1000 + target index; Cu K-alpha,
10-90 degrees, FWHM 0.1 degrees, zero shift up to 0.15 plus up to 0.05 per peak, intensities
times U(0.7, 1.3), two peaks of >= 5% removed, 2% flat background, 2% Gaussian noise). The
candidates of its composition (the target's cell, as in CSP) come from the generators named
by ``--generators`` (default: prototype substitution, n=20, unrelaxed, templates from MP-20
``offline_train``, the target's formula units per cell), never relaxed here.

* setting A (true structure among the candidates): the candidates plus a strained, rattled
  copy of the target (:func:`xtalgen.crystal.perturb`: every axis times ``1 + U(-1%, 1%)``,
  fractional coordinates + N(0, 0.005)); ``A_exact`` uses the unperturbed target instead;
* setting B (generation only): the generated candidates alone.

A candidate "matches" when pymatgen's ``StructureMatcher`` (the ``csp`` preset: ltol 0.3,
stol 0.5, angle_tol 10) fits it to the target. Reported: the fraction of targets whose first
(any of the first 5) ranked candidates match, over the targets that have a matching candidate
(and, for B, how many have one); ranks over all candidates, duplicates included. Seconds per
pattern: generation, and scoring (simulation + ranking of every candidate) separately.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_xrd.py --n-targets 100 --n 20
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_xrd.py --n-targets 100 --n 20 \
        --generators substitution templated --out benchmarks/results/xrd_templated.json

The similarity settings (WCC half-width 1 degree, sqrt intensities, noise threshold, zero
shift and cell-scale fit) were chosen on another 100 targets (``--seed 1``), not on these.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pickle
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "xrd.json"


def generate(targets: list, args: argparse.Namespace) -> tuple[list[list], list[float]]:
    """Candidates per target (unrelaxed) and the seconds each target's generation took."""
    from tqdm import tqdm

    from xtalgen.data import load_dataset
    from xtalgen.pipelines.xrd_match import build_generator

    pool = load_dataset("mp20", "offline_train", progress=False)
    candidates, seconds = [], []
    builders = {}
    for target in tqdm(targets, desc="generate"):
        formula = target.composition.formula.replace(" ", "")
        z = target.num_sites // round(target.composition.reduced_composition.num_atoms)
        made, start = [], time.perf_counter()
        for name in args.generators:
            if name == "substitution":
                from xtalgen.search import PrototypeSubstitution

                generator = builders.setdefault(name, PrototypeSubstitution(
                    pool=pool, relax=False, energies=False, progress=False))
                generator.config.formula_units = (z,)
            else:
                generator = builders.get(name) or builders.setdefault(name, build_generator(
                    name, composition_z=z, flow_steps=args.flow_steps, potential="chgnet"))
                if hasattr(generator, "config") and hasattr(generator.config, "formula_units"):
                    generator.config.formula_units = (z,)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    out = generator.generate(args.n, composition=formula, seed=args.seed)
                except Exception:  # no template of this formula type: no candidates from it
                    out = []
            made += [c.with_properties(xrd_generator=name) for c in out]
        seconds.append(time.perf_counter() - start)
        candidates.append(made)
    return candidates, seconds


def matches(target, crystals: list) -> list[bool]:
    """Does each crystal match the target (csp preset)?"""
    from xtalgen.matching import get_matcher

    matcher = get_matcher("csp")
    structure = target.to_pymatgen()
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for crystal in crystals:
            try:
                out.append(bool(matcher.fit(structure, crystal.to_pymatgen())))
            except Exception:
                out.append(False)
    return out


def evaluate(measured, candidates: list, flags: list[bool], settings) -> tuple[int | None, float]:
    """Rank (1-based) of the best-ranked matching candidate (None: none matches), seconds."""
    from xtalgen.pipelines.xrd_match import rank_candidates

    start = time.perf_counter()
    ranked = rank_candidates(measured, candidates, settings, progress=False)
    seconds = time.perf_counter() - start
    index = {id(c): i for i, c in enumerate(candidates)}
    for candidate in ranked:
        if flags[index[id(candidate.crystal)]]:
            return candidate.rank, seconds
    return None, seconds


def summarise(ranks: list[int | None]) -> dict:
    have = [r for r in ranks if r is not None]
    n = len(have)
    return {
        "n_targets": len(ranks),
        "n_with_match": n,
        "fraction_with_match": round(n / len(ranks), 4) if ranks else None,
        "rank1": round(sum(r == 1 for r in have) / n, 4) if n else None,
        "top5": round(sum(r <= 5 for r in have) / n, 4) if n else None,
        "rank1_of_all": round(sum(r == 1 for r in have) / len(ranks), 4) if ranks else None,
        "top5_of_all": round(sum(r <= 5 for r in have) / len(ranks), 4) if ranks else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-targets", type=int, default=100)
    parser.add_argument("--n", type=int, default=20, help="candidates per generator")
    parser.add_argument("--generators", nargs="+", default=["substitution"])
    parser.add_argument("--flow-steps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=float, default=None, help="WCC half-width, degrees")
    parser.add_argument("--power", type=float, default=None)
    parser.add_argument("--max-strain", type=float, default=None)
    parser.add_argument("--background", type=float, default=None)
    parser.add_argument("--cache", type=Path, default=None,
                        help="pickle of generated candidates and match flags (reused if present)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    import torch
    from tqdm import tqdm

    from xtalgen.crystal import perturb
    from xtalgen.data import load_dataset
    from xtalgen.diffraction import MatchSettings, synthetic_measurement

    torch.set_num_threads(1)
    overrides = {k: getattr(args, k) for k in ("width", "power", "max_strain", "background")
                 if getattr(args, k) is not None}
    settings = MatchSettings(**overrides)
    data = load_dataset("mp20", "pilot_test", progress=False)
    rng = np.random.default_rng(args.seed)
    order = np.sort(rng.choice(len(data), size=min(args.n_targets, len(data)), replace=False))
    targets = [data[int(i)] for i in order]

    if args.cache and args.cache.exists():
        with args.cache.open("rb") as handle:
            cached = pickle.load(handle)
        generated, gen_seconds, flags = cached["generated"], cached["seconds"], cached["flags"]
    else:
        generated, gen_seconds = generate(targets, args)
        flags = [matches(t, c) for t, c in tqdm(list(zip(targets, generated)), desc="match")]
        if args.cache:
            with args.cache.open("wb") as handle:
                pickle.dump({"generated": generated, "seconds": gen_seconds, "flags": flags}, handle)

    ranks: dict[str, list] = {"A": [], "A_exact": [], "B": []}
    score_seconds: list[float] = []
    per_target = []
    for i, (target, made, flag) in enumerate(tqdm(list(zip(targets, generated, flags)),
                                                  desc="rank")):
        measured = synthetic_measurement(target, 1000 + int(order[i]))
        copy = perturb(target, np.random.default_rng(2000 + int(order[i])), frac_noise=0.005,
                       strain=0.01)
        copy_flag = matches(target, [copy])[0]
        rank_a, seconds = evaluate(measured, [copy, *made], [copy_flag, *flag], settings)
        rank_exact, _ = evaluate(measured, [target, *made], [True, *flag], settings)
        rank_b, _ = evaluate(measured, made, flag, settings) if made else (None, 0.0)
        ranks["A"].append(rank_a)
        ranks["A_exact"].append(rank_exact)
        ranks["B"].append(rank_b)
        score_seconds.append(seconds)
        per_target.append({
            "material_id": target.properties.get("material_id"), "formula": target.formula,
            "n_sites": target.num_sites, "n_candidates": len(made), "n_matching": int(sum(flag)),
            "copy_matches": copy_flag, "rank_A": rank_a, "rank_A_exact": rank_exact,
            "rank_B": rank_b,
        })

    n_candidates = [len(c) for c in generated]
    result = {
        "benchmark": "xrd-match",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "python": platform.python_version(), "cpu_count": os.cpu_count(),
                    "torch_threads": torch.get_num_threads()},
        "dataset": "mp20 pilot_test",
        "generators": args.generators,
        "n_per_generator": args.n,
        "relaxed": False,
        "match_settings": settings.__dict__,
        "matcher": "csp (ltol 0.3, stol 0.5, angle_tol 10)",
        "true_copy": "perturb(strain=0.01, frac_noise=0.005)",
        "mean_candidates": round(float(np.mean(n_candidates)), 2),
        "setting_A": summarise(ranks["A"]),
        "setting_A_exact": summarise(ranks["A_exact"]),
        "setting_B": summarise(ranks["B"]),
        "seconds_per_pattern": {
            "generation": round(float(np.mean(gen_seconds)), 3),
            "scoring_A": round(float(np.mean(score_seconds)), 3),
            "scoring_per_candidate": round(float(np.sum(score_seconds))
                                           / max(1, sum(n + 1 for n in n_candidates)), 4),
        },
        "per_target": per_target,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "per_target"}, indent=1))


if __name__ == "__main__":
    main()
