"""Conditional generation of a guided flow DNG checkpoint (classifier-free guidance, MatterGen).

Chemical system, space group, band gap, formation energy, S.U.N. within a system, and the
guidance-scale trade-off.

Full run (500 samples per condition; resumable: rerun the same command after an interruption):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_conditioning.py \\
        --checkpoint mp20-dng-flow-cond --n 500 --guidance 2.0 --sun-n 100 \\
        --hard-results benchmarks/results/sg-hard/results.json --threads 1 \\
        --out benchmarks/results/conditioning

Time (estimated on the busy 2-core CPU, one torch thread, from a randomly initialised 4 x 128
conditional flow at 100 steps: 0.135 s per guided sample, both branches in one backbone call, and
0.06 s unguided (w = 1 or no condition); scoring about 0.03 s per sample): system 7 min,
spacegroup 14 min, band_gap 6.5 min, formation_energy 3 min (the unconditional set is shared),
sweep 7 min (w = --guidance reuses the parts' sets), sun 7-12 min (CHGNet, ~3 CPU s per
structure, and novelty matching): about 50 min in all.

Smoke test (a tiny conditional model and a tiny band-gap predictor, see the commands in
``xtalgen train --help``; the numbers mean nothing):

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_conditioning.py \\
        --checkpoint /tmp/cond-tiny/last.pt --gap-predictor /tmp/pred-gap-tiny/last.pt \\
        --n 4 --steps 5 --sun-n 2 --relax-steps 20 --no-require-converged --smact-cap 100000 \\
        --out /tmp/cond-bench

Sampling: ``IterativeGenerator.sample(n, condition=..., guidance=w, seed=--seed)`` of
``--checkpoint`` (a shipped name or a path), guidance scale ``w = --guidance`` (default 2.0, as in
MatterGen's examples; 1: plain conditional, 0: unconditional) with ``--steps`` sampler steps
(default: the model's). A condition the model was not trained on (``ModelConfig.conditions``) is
skipped with a note; a chemical system is served by any DNG model through its type mask.

Parts (``--parts``, comma-separated; default all), ``--n`` samples per condition:

* ``system``: one chemical system per ``--systems`` (default Li-Mn-O, a ternary oxide; Ni-Ti-Al,
  an intermetallic; Ba-Ti-O; Li-Fe-P-O; Cu-Zn-Sn); a system with an element the model never saw
  (``config.elements``) is skipped with a note. ``within``: every element of the sample is in the
  system; ``success``: the sample's elements are exactly the system's (all present too).
* ``spacegroup``: soft guidance only, one row per ``--groups`` (default the ten commonest MP-20
  groups, as ``bench_spacegroup_hard.py``). ``success``: spglib's group at symprec 0.1 and angle
  tolerance 5 (:func:`xtalgen.representations.wyckoff.detected_spacegroup`, the convention of
  ``bench_spacegroup_hard.py``) is the requested one; ``p1``: the share detected as P1. The hard
  form (sampling inside Wyckoff templates) is measured by ``bench_spacegroup_hard.py``; with
  ``--hard-results`` (its ``results.json``) its rows are put beside.
* ``band_gap``: one row per ``--gap-targets`` (eV, default 0 1 2 3), beside one set of ``--n``
  *unconditional* samples of the same model (no condition, seed ``--seed``) scored against each
  target. Predicted gap: the trained band-gap predictor (``--gap-predictor``, default the shipped
  ``mp20-band-gap``). Over the *valid* samples (struct and comp) with a prediction: ``mae``
  (|predicted - target|, eV) and ``success`` (the fraction within ``--gap-tolerance``, 0.5 eV).
* ``formation_energy``: the same for ``--eform-targets`` (eV/atom, default -1 and -2.5) with the
  formation-energy predictor (``--eform-predictor``, default the shipped
  ``mp20-formation-energy``), fraction within ``--eform-tolerance`` = 0.25 eV/atom (wider than the
  0.1 eV/atom of the library's rejection filter, ``xtalgen.conditions.DEFAULT_TOLERANCES``).
* ``sun``: ``--sun-n`` samples (0: skip) with ``chemical_system=--sun-system`` (Li-O, MatterGen's
  use case), screened by :func:`xtalgen.screen.screen` as in ``bench_gflownet.py`` (CHGNet
  relaxation up to ``--relax-steps`` FIRE steps, bundled MP-20 hull, uniqueness, novelty against
  MP-20 ``offline_train``): the E_hull <= 0.1 eV/atom rate and the S.U.N. rate (MatterGen
  convention; strict E_hull <= 0 beside it), over all submitted samples; converged relaxations
  only unless ``--no-require-converged``.
* ``sweep``: each ``--sweep-conditions`` (default ``band_gap=2.0`` and ``spacegroup=225``) at
  every ``--guidance-sweep`` scale (default 0 1 2 4): validity and success as above, drawn in
  OUT/guidance.png. Rows at ``--guidance`` are the very samples of the parts above (same cache).

Every row: samples returned (a degenerate lattice is dropped), ``struct_valid`` / ``comp_valid``
/ ``valid`` (:mod:`xtalgen.metrics.validity`: 0.5 angstrom and 0.1 A^3; SMACT), ``p1``, the
condition's success and ``seconds`` (sampling wall time, ``--threads`` torch threads; scoring
apart). Each sample set is cached with its per-sample scores as OUT/parts/*.json (its settings
recorded; rerun to resume; a predictor score missing from a cached set is added), the S.U.N.
store as OUT/sun/*.db; OUT/results.json and OUT/results.md hold the parts of the invocation
(cached parts cost seconds, so name them all).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

PARTS = ("system", "spacegroup", "band_gap", "formation_energy", "sun", "sweep")
SYSTEMS = ("Li-Mn-O", "Ni-Ti-Al", "Ba-Ti-O", "Li-Fe-P-O", "Cu-Zn-Sn")
"""A ternary oxide, a ternary intermetallic, a perovskite system, a quaternary, a metal alloy."""
GROUPS = (225, 221, 194, 191, 166, 139, 62, 14, 12, 2)
"""The commonest space groups of MP-20 (as ``bench_spacegroup_hard.py``)."""
PROPERTIES = ("band_gap", "formation_energy")
UNITS = {"band_gap": "eV", "formation_energy": "eV/atom"}


# -- sample sets: sampling, per-sample scores, cache ---------------------------------------------
def to_record(crystal: Any) -> list:
    """A crystal as plain lists (lattice rows, fractional coordinates, atomic numbers)."""
    return [np.round(crystal.lattice, 8).tolist(), np.round(crystal.frac_coords, 8).tolist(),
            [int(z) for z in crystal.species]]


def from_record(record: list) -> Any:
    from xtalgen.crystal import Crystal

    return Crystal(np.array(record[0]), np.array(record[1]).reshape(-1, 3), np.array(record[2]))


def smact_combinations(crystal: Any) -> int:
    """Oxidation-state combinations SMACT enumerates for a crystal's composition (0 when an
    element has none or is unknown to SMACT)."""
    import smact

    symbols = sorted({_symbol(z) for z in crystal.species})
    try:
        space = smact.element_dictionary(symbols)
    except (KeyError, NameError):
        return 0
    return math.prod(len(space[s].oxidation_states or ()) for s in symbols)


def base_scores(crystals: Sequence[Any], smact_cap: int = 0) -> dict[str, list]:
    """Per-sample validity and space group (symprec 0.1, angle tolerance 5). ``smact_cap`` > 0:
    a composition with more oxidation-state combinations is comp-invalid unchecked (DiffCSP's
    cap is 1e7; 0: no cap, the CDVAE / MatterGen convention)."""
    from xtalgen.metrics.validity import smact_validity, structure_validity
    from xtalgen.representations.wyckoff import detected_spacegroup

    capped = [bool(smact_cap) and smact_combinations(c) > smact_cap for c in crystals]
    return {"struct": [structure_validity(c) for c in crystals],
            "comp": [not cap and smact_validity(c) for c, cap in zip(crystals, capped)],
            "smact_capped": capped,
            "spacegroup": [detected_spacegroup(c, 0.1, 5.0) for c in crystals]}


class SampleSets:
    """Sample sets of one model, each cached as OUT/parts/<label>-<hash>.json with its settings,
    its crystals and their per-sample scores."""

    def __init__(self, args: argparse.Namespace, predictors: dict[str, Any]) -> None:
        self.args = args
        self.predictors = predictors  # property -> Predictor (missing: unavailable)
        self.folder = args.out / "parts"
        self.folder.mkdir(parents=True, exist_ok=True)
        self._model = None

    @property
    def model(self) -> Any:
        if self._model is None:
            from xtalgen.models import load_generator

            self._model = load_generator(self.args.checkpoint, n_steps=self.args.steps,
                                         batch_size=self.args.batch_size, device=self.args.device)
        return self._model

    def get(self, label: str, condition: dict[str, Any] | None, guidance: float,
            n: int | None = None, needs: Sequence[str] = ()) -> dict[str, Any]:
        """The set of ``n`` (default ``--n``) samples with ``condition`` at ``guidance``
        (None: unconditional), sampled or read from the cache, with the predictor scores
        ``needs`` (those whose predictor is available) added."""
        args = self.args
        settings = {"checkpoint": str(args.checkpoint), "n": n or args.n, "seed": args.seed,
                    "steps": args.steps, "batch_size": args.batch_size,
                    "condition": condition, "guidance": guidance, "smact_cap": args.smact_cap}
        digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
        path = self.folder / f"{label}-{digest}.json"
        part = json.loads(path.read_text()) if path.is_file() else None
        if part is not None and part.get("settings") != settings:
            raise SystemExit(f"{path} holds other settings; choose another --out")
        if part is None:
            start = time.perf_counter()
            crystals = self.model.sample(settings["n"], condition=condition, guidance=guidance,
                                         seed=args.seed)
            seconds = time.perf_counter() - start
            start = time.perf_counter()
            part = {"settings": settings, "label": label, "seconds": seconds,
                    "returned": len(crystals),
                    "scores": base_scores(crystals, args.smact_cap),
                    "predictors": {}, "crystals": [to_record(c) for c in crystals]}
            part["score_seconds"] = time.perf_counter() - start
            changed = True
        else:
            crystals = None
            changed = False
        for name in needs:
            predictor = self.predictors.get(name)
            if predictor is None or part["predictors"].get(name) == predictor.checkpoint:
                continue
            if crystals is None:
                crystals = [from_record(r) for r in part["crystals"]]
            start = time.perf_counter()
            values = predictor(crystals) if crystals else np.zeros(0)
            part["scores"][name] = [None if not math.isfinite(v) else float(v) for v in values]
            part["predictors"][name] = predictor.checkpoint
            part["score_seconds"] = part.get("score_seconds", 0.0) + time.perf_counter() - start
            changed = True
        if changed:  # written whole, then renamed: an interrupted run leaves no torn file
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(part))
            tmp.replace(path)
        return part


# -- figures of a sample set ---------------------------------------------------------------------
def validity(part: dict[str, Any]) -> dict[str, Any]:
    """Returned, validity and P1 share of a sample set."""
    s = part["scores"]
    struct, comp = np.array(s["struct"], bool), np.array(s["comp"], bool)
    n = part["returned"]
    out: dict[str, Any] = {"returned": n, "seconds": part["seconds"]}
    if n:
        out.update(struct_valid=float(struct.mean()), comp_valid=float(comp.mean()),
                   valid=float((struct & comp).mean()),
                   p1=float(np.mean(np.array(s["spacegroup"]) == 1)))
        if any(s.get("smact_capped", ())):
            out["smact_capped"] = int(sum(s["smact_capped"]))
    return out


def system_figures(part: dict[str, Any], system: Sequence[int]) -> dict[str, Any]:
    elements = [set(r[2]) for r in part["crystals"]]
    out = validity(part)
    if elements:
        out["within"] = float(np.mean([e <= set(system) for e in elements]))
        out["success"] = float(np.mean([e == set(system) for e in elements]))
        out["top_systems"] = Counter("-".join(sorted(map(_symbol, e)))
                                     for e in elements).most_common(3)
    return out


def spacegroup_figures(part: dict[str, Any], group: int) -> dict[str, Any]:
    out = validity(part)
    groups = np.array(part["scores"]["spacegroup"])
    if len(groups):
        out["success"] = float(np.mean(groups == group))
        out["detected_top"] = {int(k): v for k, v in Counter(groups.tolist()).most_common(5)}
    return out


def property_figures(part: dict[str, Any], name: str, target: float,
                     tolerance: float) -> dict[str, Any]:
    """Over the valid samples with a prediction: n_scored, MAE to the target, the fraction within
    ``tolerance`` (``success``) and the mean prediction."""
    out = validity(part)
    if name not in part["scores"] or not part["returned"]:
        return out
    s = part["scores"]
    values = np.array([np.nan if v is None else v for v in s[name]], dtype=float)
    keep = np.array(s["struct"], bool) & np.array(s["comp"], bool) & np.isfinite(values)
    out["n_scored"] = int(keep.sum())
    if keep.any():
        err = np.abs(values[keep] - target)
        out.update(mae=float(err.mean()), success=float(np.mean(err <= tolerance)),
                   mean_predicted=float(values[keep].mean()))
    return out


def _symbol(z: int) -> str:
    from xtalgen.crystal import element_symbol

    return element_symbol(int(z))


# -- parts -----------------------------------------------------------------------------------------
def run_systems(sets: SampleSets, notes: list[str]) -> list[dict[str, Any]]:
    from xtalgen.conditions import parse_chemical_system, system_label

    seen = set(sets.model.model.config.elements)
    rows = []
    for text in sets.args.systems:
        system = parse_chemical_system(text)
        unseen = sorted(set(system) - seen) if seen else []
        if unseen:
            notes.append(f"system {text} skipped: the model never saw "
                         f"{', '.join(map(_symbol, unseen))} in training")
            continue
        label = system_label(system)
        part = sets.get(f"system-{label}", {"chemical_system": label}, sets.args.guidance)
        rows.append({"system": label, "guidance": sets.args.guidance,
                     **system_figures(part, system)})
        log("system", rows[-1])
    return rows


def run_spacegroups(sets: SampleSets) -> list[dict[str, Any]]:
    rows = []
    for group in sets.args.groups:
        part = sets.get(f"spacegroup-{group}", {"spacegroup": group}, sets.args.guidance)
        rows.append({"group": group, "generator": "soft (guidance)", "guidance": sets.args.guidance,
                     **spacegroup_figures(part, group)})
        log("spacegroup", rows[-1])
    return rows


def hard_rows(path: Path | None, groups: Sequence[int], notes: list[str]) -> list[dict[str, Any]]:
    """The rows of ``bench_spacegroup_hard.py``'s results.json for ``groups``."""
    if path is None:
        return []
    if not path.is_file():
        notes.append(f"--hard-results {path}: no such file; hard rows left out")
        return []
    payload = json.loads(path.read_text())
    rows = []
    for name, per_group in payload.get("per_group", {}).items():
        for group in groups:
            r = per_group.get(str(group))
            if r is not None:
                rows.append({"group": group, "generator": f"hard: {name}",
                             **{k: r[k] for k in ("returned", "success", "p1", "struct_valid",
                                                  "comp_valid", "valid", "seconds") if k in r}})
    notes.append(f"hard rows from {path} ({payload.get('command', '?')}, {payload.get('date', '?')})")
    return rows


def run_property(sets: SampleSets, name: str, targets: Sequence[float],
                 tolerance: float) -> list[dict[str, Any]]:
    """Guided rows per target, each beside the unconditional set scored against it."""
    w = sets.args.guidance
    unconditional = sets.get("unconditional", None, 1.0, needs=[name])
    rows = []
    for target in targets:
        part = sets.get(f"{name}-{target:g}", {name: target}, w, needs=[name])
        for samples, p, g in (("guided", part, w), ("unconditional", unconditional, None)):
            rows.append({"target": target, "samples": samples, "guidance": g,
                         **property_figures(p, name, target, tolerance)})
            log(name, rows[-1])
    return rows


def run_sweep(sets: SampleSets, trained: Sequence[str], notes: list[str]) -> list[dict[str, Any]]:
    from xtalgen.conditions import parse_condition_args

    args = sets.args
    rows = []
    for text in args.sweep_conditions:
        condition = parse_condition_args([text])
        (name, value), = condition.items()
        if name not in trained and name != "chemical_system":
            notes.append(f"sweep {text} skipped: the model was not trained with {name}")
            continue
        if name in PROPERTIES and name not in sets.predictors:
            notes.append(f"sweep {text} skipped: no {name} predictor")
            continue
        if name in PROPERTIES:  # the labels of the parts above: their w = --guidance sets
            label = f"{name}-{value:g}"
        else:
            label = f"spacegroup-{value}" if name == "spacegroup" else f"system-{value}"
        for w in args.guidance_sweep:
            part = sets.get(label, {name: value}, w, needs=[name] if name in PROPERTIES else ())
            if name in PROPERTIES:
                tol = args.gap_tolerance if name == "band_gap" else args.eform_tolerance
                figures = property_figures(part, name, value, tol)
            elif name == "spacegroup":
                figures = spacegroup_figures(part, value)
            else:
                from xtalgen.conditions import parse_chemical_system

                figures = system_figures(part, parse_chemical_system(value))
            rows.append({"condition": text, "guidance": w, **figures})
            log("sweep", rows[-1])
    return rows


def run_sun(sets: SampleSets, notes: list[str]) -> dict[str, Any] | None:
    from xtalgen.conditions import parse_chemical_system, system_label

    args = sets.args
    system = parse_chemical_system(args.sun_system)
    seen = set(sets.model.model.config.elements)
    if seen and set(system) - seen:
        notes.append(f"S.U.N. skipped: the model never saw every element of {args.sun_system}")
        return None
    label = system_label(system)
    part = sets.get(f"sun-{label}", {"chemical_system": label}, args.guidance, n=args.sun_n)
    row: dict[str, Any] = {"system": label, "guidance": args.guidance,
                           **system_figures(part, system)}
    settings = {"sample_set": part["settings"], "relax_steps": args.relax_steps,
                "fmax": args.fmax, "require_converged": args.require_converged}
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    cache = sets.folder / f"sun-screen-{label}-{digest}.json"
    if cache.is_file():
        row["screen"] = json.loads(cache.read_text())
        return row
    from xtalgen.screen import CandidateStore, ScreenConfig, screen

    config = ScreenConfig(potential="chgnet", potential_kw={"threads": args.threads},
                          fmax=args.fmax, max_steps=args.relax_steps,
                          require_converged=args.require_converged,
                          novelty_reference="mp20:offline_train", n_workers=args.sun_workers,
                          progress=False)
    store = args.out / "sun" / f"sun-{label}-{digest}.db"
    store.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    summary = screen([from_record(r) for r in part["crystals"]], store, config)
    rows = CandidateStore(store).table()
    mattergen = summary.metrics.get("mattergen", {})
    strict = summary.metrics.get("strict", {})
    screened = {
        "n_submitted": summary.n_submitted, "stages": summary.stages,
        "frac_ehull_le_0.1": mattergen.get("frac_stable"), "frac_sun": mattergen.get("frac_sun"),
        "n_sun": mattergen.get("n_sun"), "frac_sun_strict": strict.get("frac_sun"),
        "frac_unique": mattergen.get("frac_unique"), "frac_novel": mattergen.get("frac_novel"),
        "converged": sum(bool(r.get("converged")) for r in rows),
        "relax_wall_s": float(sum(r.get("relax_s") or 0.0 for r in rows)),
        "screen_wall_s": time.perf_counter() - start, "store": str(store),
    }
    if not any(r.get("stage") == "pending" for r in rows):  # an interrupted screen resumes
        cache.write_text(json.dumps(screened, indent=1))
    row["screen"] = screened
    return row


# -- report ----------------------------------------------------------------------------------------
def fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> list[str]:
    """Markdown table of ``rows`` with (header, key) ``columns`` (seconds with one decimal), and
    a blank line."""
    lines = ["| " + " | ".join(h for h, _ in columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        cells = [fmt(r.get(k), 1) if k == "seconds" else fmt(r.get(k)) for _, k in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


VALIDITY = [("returned", "returned"), ("struct valid", "struct_valid"),
            ("comp valid", "comp_valid"), ("valid", "valid"), ("P1", "p1")]


def write_report(args: argparse.Namespace, payload: dict[str, Any]) -> str:
    res = payload["results"]
    lines = ["# Conditional generation (classifier-free guidance)", "",
             f"`{payload['command']}` ({payload['date']}, {payload['machine']}, "
             f"{args.threads} torch thread(s), {args.device})", "",
             f"Model `{args.checkpoint}` (conditions: {', '.join(payload['model_conditions']) or 'none'}; "
             f"sampler steps: {args.steps or 'the model default'}), guidance w = {args.guidance:g} "
             f"unless a row says otherwise; seed {args.seed}. Validity: struct (0.5 angstrom, "
             "0.1 A^3), comp (SMACT), valid (both); P1: spglib group 1 at symprec 0.1; seconds: "
             "sampling wall time.", ""]
    if args.smact_cap:
        lines += [f"SMACT capped: a composition with more than {args.smact_cap} oxidation-state "
                  "combinations counts as comp-invalid unchecked (`smact_capped` in results.json "
                  "counts them).", ""]
    if "system" in res:
        lines += [f"## Chemical system ({args.n} samples each)", "",
                  "within: every element in the system; success: exactly the system's elements "
                  "(all present).", ""]
        lines += table(res["system"], [("system", "system"), *VALIDITY, ("within", "within"),
                                       ("success", "success"), ("seconds", "seconds")])
    if "spacegroup" in res:
        lines += [f"## Space group, soft guidance ({args.n} samples each)", "",
                  "success: spglib group == requested at symprec 0.1, angle tolerance 5. Hard "
                  "conditioning (symmetry projection inside Wyckoff templates) is measured by "
                  "`benchmarks/bench_spacegroup_hard.py`"
                  + ("; its rows (`--hard-results`) are beside." if res.get("spacegroup_hard")
                     else " (pass its results.json as `--hard-results` to put its rows here)."),
                  ""]
        merged = sorted(res["spacegroup"] + res.get("spacegroup_hard", []),
                        key=lambda r: (args.groups.index(r["group"]), r["generator"] != "soft (guidance)"))
        lines += table(merged, [("group", "group"), ("generator", "generator"), *VALIDITY,
                                ("success", "success"), ("seconds", "seconds")])
        lines += summary_lines(res["spacegroup"], "soft (guidance), all groups")
    for name, tol in (("band_gap", args.gap_tolerance), ("formation_energy", args.eform_tolerance)):
        if name not in res:
            continue
        unit = UNITS[name]
        lines += [f"## {name.replace('_', ' ').capitalize()} ({args.n} samples per target)", "",
                  f"Predictor: `{payload['predictors'].get(name, {}).get('checkpoint', '-')}`. "
                  f"Over the valid samples with a prediction (n scored): MAE = mean |predicted - "
                  f"target| ({unit}); success = fraction within +-{tol:g} {unit}. The "
                  "unconditional rows are one set of samples (no condition) scored against each "
                  "target.", ""]
        lines += table(res[name], [("target", "target"), ("samples", "samples"),
                                   ("w", "guidance"), *VALIDITY, ("n scored", "n_scored"),
                                   ("mean predicted", "mean_predicted"), ("MAE", "mae"),
                                   ("success", "success"), ("seconds", "seconds")])
    if "sun" in res:
        r, s = res["sun"], res["sun"].get("screen", {})
        lines += [f"## S.U.N. within {r['system']} ({args.sun_n} samples)", "",
                  f"CHGNet relaxation (up to {args.relax_steps} FIRE steps, fmax {args.fmax:g}; "
                  f"{'converged only' if args.require_converged else 'unconverged included'}), "
                  "bundled MP-20 hull, uniqueness, novelty against MP-20 offline_train; rates over "
                  "all submitted samples (E_hull <= 0.1 eV/atom: MatterGen's stable; strict: "
                  "E_hull <= 0).", ""]
        sun_row = {**r, **s}
        lines += table([sun_row], [("system", "system"), *VALIDITY, ("success", "success"),
                                   ("converged", "converged"), ("E_hull<=0.1", "frac_ehull_le_0.1"),
                                   ("unique", "frac_unique"), ("novel", "frac_novel"),
                                   ("S.U.N.", "frac_sun"), ("S.U.N. strict", "frac_sun_strict"),
                                   ("seconds", "seconds")])
        lines += [f"Relaxation wall time {fmt(s.get('relax_wall_s'), 0)} s.", ""]
    if "sweep" in res:
        lines += ["## Guidance scale", "", "Success as in the sections above (a property: "
                  "fraction of the valid samples within the tolerance). ![](guidance.png)", ""]
        lines += table(res["sweep"], [("condition", "condition"), ("w", "guidance"), *VALIDITY,
                                      ("success", "success"), ("seconds", "seconds")])
    if payload["notes"]:
        lines += ["## Notes", ""] + [f"* {n}" for n in payload["notes"]] + [""]
    return "\n".join(lines)


def summary_lines(rows: Sequence[dict[str, Any]], name: str) -> list[str]:
    """One pooled line (weighted by samples returned) of validity and success."""
    n = sum(r.get("returned", 0) for r in rows)
    if not n:
        return []
    pooled = {k: sum(r.get(k, 0.0) * r["returned"] for r in rows if r.get("returned")) / n
              for k in ("success", "p1", "valid")}
    return [f"Pooled, {name}: {n} samples, success {pooled['success']:.3f}, P1 {pooled['p1']:.3f}, "
            f"valid {pooled['valid']:.3f}, {sum(r['seconds'] for r in rows):.0f} s.", ""]


def plot_sweep(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """Validity and success against the guidance scale, one panel per condition."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conditions = list(dict.fromkeys(r["condition"] for r in rows))
    fig, axes = plt.subplots(1, len(conditions), figsize=(4.5 * len(conditions), 3.6),
                             squeeze=False)
    for ax, condition in zip(axes[0], conditions):
        mine = sorted((r for r in rows if r["condition"] == condition), key=lambda r: r["guidance"])
        w = [r["guidance"] for r in mine]
        for key, style in (("valid", "o-"), ("struct_valid", "^:"), ("comp_valid", "v:"),
                           ("success", "s-")):
            ax.plot(w, [r.get(key, np.nan) for r in mine], style, label=key)
        ax.set(title=condition, xlabel="guidance scale w", ylim=(-0.02, 1.02))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("fraction of samples")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def log(part: str, row: dict[str, Any]) -> None:
    shown = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()
             if k not in ("top_systems", "detected_top", "screen")}
    print(part, shown, flush=True)


def load_predictors(args: argparse.Namespace, wanted: set[str],
                    notes: list[str]) -> dict[str, Any]:
    from xtalgen.errors import XtalgenError
    from xtalgen.properties.trained import load_predictor

    specs = {"band_gap": args.gap_predictor, "formation_energy": args.eform_predictor}
    out = {}
    for name in sorted(wanted):
        try:
            out[name] = load_predictor(specs[name] or name, device=args.device)
        except XtalgenError as exc:
            notes.append(f"{name} skipped: {exc}")
    return out


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[1:]))
    p.add_argument("--checkpoint", default="mp20-dng-flow-cond", help="shipped name or path")
    p.add_argument("--n", type=int, default=500, help="samples per condition")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {PARTS}")
    p.add_argument("--guidance", type=float, default=2.0, help="guidance scale w of every part")
    p.add_argument("--systems", nargs="+", default=list(SYSTEMS))
    p.add_argument("--groups", nargs="+", type=int, default=list(GROUPS))
    p.add_argument("--hard-results", type=Path, default=None,
                   help="results.json of bench_spacegroup_hard.py, rows put beside")
    p.add_argument("--gap-targets", nargs="+", type=float, default=[0.0, 1.0, 2.0, 3.0])
    p.add_argument("--gap-tolerance", type=float, default=0.5, help="eV")
    p.add_argument("--gap-predictor", default=None, help="checkpoint (default: mp20-band-gap)")
    p.add_argument("--eform-targets", nargs="+", type=float, default=[-1.0, -2.5])
    p.add_argument("--eform-tolerance", type=float, default=0.25, help="eV/atom")
    p.add_argument("--eform-predictor", default=None,
                   help="checkpoint (default: mp20-formation-energy)")
    p.add_argument("--sun-system", default="Li-O")
    p.add_argument("--sun-n", type=int, default=100, help="samples screened for S.U.N. (0: skip)")
    p.add_argument("--relax-steps", type=int, default=300, help="FIRE steps of the S.U.N. relaxation")
    p.add_argument("--fmax", type=float, default=0.1)
    p.add_argument("--require-converged", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--sun-workers", type=int, default=1)
    p.add_argument("--guidance-sweep", nargs="+", type=float, default=[0.0, 1.0, 2.0, 4.0])
    p.add_argument("--sweep-conditions", nargs="+", default=["band_gap=2.0", "spacegroup=225"],
                   help="NAME=VALUE, one condition per sweep")
    p.add_argument("--smact-cap", type=int, default=0,
                   help="comp-invalid above this many SMACT oxidation-state combinations "
                        "(0: no cap, the convention; 10000000: DiffCSP's; for untrained smoke "
                        "models, whose 15-element compositions take minutes each)")
    p.add_argument("--steps", type=int, default=None, help="sampler steps (default: model's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/conditioning"))
    args = p.parse_args(argv)
    parts = [s.strip() for s in args.parts.split(",") if s.strip()]
    if set(parts) - set(PARTS):
        p.error(f"unknown parts {sorted(set(parts) - set(PARTS))}; choose from {PARTS}")
    if args.sun_n <= 0 and "sun" in parts:
        parts.remove("sun")
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)

    notes: list[str] = []
    wanted = {n for n in PROPERTIES if n in parts}
    if "sweep" in parts:
        wanted |= {c.split("=")[0].strip() for c in args.sweep_conditions} & set(PROPERTIES)
    predictors = load_predictors(args, wanted, notes)
    sets = SampleSets(args, predictors)
    trained = list(sets.model.model.config.conditions)
    if sets.model.task != "dng":
        p.error(f"{args.checkpoint} is a {sets.model.task} model; this benchmark needs a DNG one")
    if "chemical_system" not in trained:
        notes.append("the model was not trained with chemical_system: systems are served by its "
                     "type mask alone (guidance does not act on them)")

    results: dict[str, Any] = {}
    runners: dict[str, Callable[[], Any]] = {
        "system": lambda: run_systems(sets, notes),
        "spacegroup": lambda: run_spacegroups(sets),
        "band_gap": lambda: run_property(sets, "band_gap", args.gap_targets, args.gap_tolerance),
        "formation_energy": lambda: run_property(sets, "formation_energy", args.eform_targets,
                                                 args.eform_tolerance),
        "sun": lambda: run_sun(sets, notes),
        "sweep": lambda: run_sweep(sets, trained, notes),
    }
    for part in parts:
        if part in ("spacegroup", *PROPERTIES) and part not in trained:
            notes.append(f"{part} skipped: the model was not trained with it (trained: "
                         f"{', '.join(trained) or 'none'})")
            continue
        if part in PROPERTIES and part not in predictors:
            continue  # noted by load_predictors
        result = runners[part]()
        if result is not None:
            results[part] = result
    if "spacegroup" in results:
        results["spacegroup_hard"] = hard_rows(args.hard_results, args.groups, notes)
    if results.get("sweep"):
        plot_sweep(results["sweep"], args.out / "guidance.png")

    flags = [f"--{k.replace('_', '-')}" + ("" if v is True else
                                           " " + " ".join(map(str, v)) if isinstance(v, list)
                                           else f" {v}")
             for k, v in vars(args).items() if v is not None and v is not False]
    if not args.require_converged:
        flags.append("--no-require-converged")
    payload = {"command": "python benchmarks/bench_conditioning.py " + " ".join(flags),
               "date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.node(),
               "torch_threads": args.threads, "device": args.device,
               "checkpoint": str(args.checkpoint), "model_conditions": trained,
               "guidance": args.guidance, "parts": parts,
               "tolerances": {"band_gap": args.gap_tolerance,
                              "formation_energy": args.eform_tolerance},
               "predictors": {k: v.info for k, v in predictors.items()},
               "notes": notes, "results": results}
    (args.out / "results.json").write_text(json.dumps(payload, indent=1, default=str))
    report = write_report(args, payload)
    (args.out / "results.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
