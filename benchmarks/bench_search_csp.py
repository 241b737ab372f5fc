"""CSP match rate and RMSE at k=1 and k=K of the search generators (substitution, random
search, evolution) on Perov-5 test or MP-20 pilot_test, with the compute each used.

Protocol (metrics-spec B.7): for each target, the generator gets the target's composition (and,
for random search / evolution, its number of formula units) and returns up to K candidates,
best first. match@1 uses the first candidate, match@K any of them; RMSE is pymatgen's
normalised ``get_rms_dist`` with the CSP matcher (ltol=0.3, stol=0.5, angle_tol=10), mean over
matched targets (the best candidate's RMSE at K). Templates for substitution: Perov-5 ``val``
(for Perov-5 test) or MP-20 ``offline_train`` (for MP-20 pilot_test); never the test split.

    .venv/bin/python benchmarks/bench_search_csp.py --method substitution --dataset perov5 \
        --n-targets 500 --k 20 --no-relax --no-energies
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from pathlib import Path

import numpy as np

POOLS = {"perov5": ("perov5", "val"), "mp20": ("mp20", "offline_train")}
TARGETS = {"perov5": ("perov5", "test"), "mp20": ("mp20", "pilot_test")}


def build_generator(args: argparse.Namespace):
    from xtalgen.data import load_dataset
    from xtalgen.search import PrototypeSubstitution, RandomSymmetricSearch, SearchBudget

    common = dict(
        relax=args.relax,
        energies=args.energies,
        max_steps=args.max_steps,
        fmax=args.fmax,
        progress=False,
        budget=SearchBudget(max_potential_calls=args.max_calls, max_wall_time=args.max_time),
    )
    if args.method == "substitution":
        pool = load_dataset(*POOLS[args.dataset], progress=False)
        return PrototypeSubstitution(
            pool=pool,
            species_map=args.species_map,
            ranking=args.ranking,
            vote_weight=args.vote_weight,
            vote_temperature=args.vote_temperature,
            candidates_per_structure=args.candidates_per_structure,
            dedupe=args.dedupe,
            first_pick=args.first_pick,
            decorations=args.decorations,
            pick_temperature=args.pick_temperature,
            **common,
        )
    if args.method == "random-search":
        return RandomSymmetricSearch(candidates_per_structure=args.candidates_per_structure, **common)
    from xtalgen.search.evolution import EvolutionarySearch

    return EvolutionarySearch(population_size=args.population,
                              offspring_per_generation=args.offspring,
                              n_generations=args.generations, **common)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", choices=["substitution", "random-search", "evolution"], required=True)
    parser.add_argument("--dataset", choices=sorted(TARGETS), default="perov5")
    parser.add_argument("--n-targets", type=int, default=500)
    parser.add_argument("--select", choices=["random", "small15"], default="random",
                        help="small15: 15 seeded targets with <= 12 sites (the USPEX-style set)")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--relax", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--energies", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--max-steps", type=int, default=200)
    parser.add_argument("--fmax", type=float, default=0.1)
    parser.add_argument("--max-calls", type=int, default=None, help="potential calls per target")
    parser.add_argument("--max-time", type=float, default=None, help="seconds per target")
    parser.add_argument("--species-map", default="similarity")
    parser.add_argument("--ranking", default="prototype")
    parser.add_argument("--dedupe", action=argparse.BooleanOptionalAction, default=True,
                        help="substitution: drop duplicate prototypes (--no-dedupe: the naive rule)")
    parser.add_argument("--formula-units", action=argparse.BooleanOptionalAction, default=True,
                        help="give substitution the target's formula units per cell (the CSP "
                        "atom count; the other methods always get it)")
    parser.add_argument("--first-pick", default="vote")
    parser.add_argument("--decorations", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--pick-temperature", type=float, default=0.25)
    parser.add_argument("--vote-weight", type=float, default=0.0)
    parser.add_argument("--vote-temperature", type=float, default=1.0)
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--offspring", type=int, default=8)
    parser.add_argument("--generations", type=int, default=3)
    parser.add_argument("--candidates-per-structure", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="per-target JSON lines")
    parser.add_argument("--time-limit", type=float, default=None,
                        help="seconds: start no new target after this (the run is then partial)")
    args = parser.parse_args()

    from tqdm import tqdm

    from xtalgen.data import load_dataset
    from xtalgen.search.common import parse_composition

    targets = load_dataset(*TARGETS[args.dataset], progress=False)
    order = select_targets(targets, args)
    n = len(order)
    generator = build_generator(args)
    rows, predictions = [], []
    start = time.perf_counter()
    out = args.out.open("w") if args.out else None
    done = []
    for i in tqdm(order, desc=f"{args.method} on {args.dataset}"):
        if args.time_limit is not None and time.perf_counter() - start > args.time_limit:
            break
        done.append(int(i))
        target = targets[int(i)]
        comp = parse_composition(target.formula)
        z = target.num_sites // round(comp.num_atoms)
        if args.method != "substitution" or args.formula_units:
            generator.config.formula_units = (z,)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                preds = generator.generate(args.k, composition=target.formula, seed=args.seed)
            except Exception as exc:  # no template, no compatible group: an unmatched target
                preds, error = [], f"{type(exc).__name__}: {exc}"
            else:
                error = None
        wall = time.perf_counter() - t0
        calls = max((p.properties.get("search_potential_calls", 0) for p in preds), default=0)
        row = {
            "material_id": target.properties.get("material_id"),
            "formula": target.formula,
            "n_pred": len(preds),
            "potential_calls": calls,
            "wall_s": round(wall, 3),
            "error": error,
        }
        rows.append(row)
        mid = target.properties.get("material_id")
        predictions += [p.with_properties(material_id=mid, sample_index=r) for r, p in enumerate(preds)]
        if out:  # progress; rewritten with the distances at the end
            out.write(json.dumps(row) + "\n")
            out.flush()
    done_targets = [targets[i] for i in done]
    official, table = official_metrics(predictions, done_targets, args.k)
    add_distances(rows, predictions, done_targets, table)
    if out:
        out.close()
        with args.out.open("w") as out:
            out.writelines(json.dumps(row) + "\n" for row in rows)
    summary = summarize(rows, args.k)
    summary.update(official)
    summary.update(
        method=args.method, dataset=args.dataset, n_targets=len(done), n_selected=n,
        relax=args.relax,
        energies=args.energies, species_map=args.species_map, ranking=args.ranking,
        vote_weight=args.vote_weight, vote_temperature=args.vote_temperature,
        total_wall_s=round(time.perf_counter() - start, 1), select=args.select,
        max_steps=args.max_steps, max_calls=args.max_calls,
        candidates_per_structure=args.candidates_per_structure, dedupe=args.dedupe,
        formula_units=args.formula_units, first_pick=args.first_pick, decorations=args.decorations,
        pick_temperature=args.pick_temperature,
    )
    if args.select == "small15":
        summary["formulas"] = [targets[i].formula for i in done]
    if args.method == "evolution":
        summary.update(population=args.population, offspring=args.offspring,
                       generations=args.generations)
    print(json.dumps(summary, indent=1))


def select_targets(targets, args: argparse.Namespace) -> np.ndarray:
    """Seeded target indices: ``n_targets`` at random, or the ``small15`` set."""
    if args.select == "small15":
        small = [i for i, c in enumerate(targets) if c.num_sites <= 12]
        return np.sort(np.random.default_rng(15).choice(small, size=15, replace=False))
    rng = np.random.default_rng(args.seed)
    n = min(args.n_targets, len(targets))
    return np.sort(rng.choice(len(targets), size=n, replace=False))


def official_metrics(predictions: list, targets: list, k: int) -> tuple[dict, object]:
    """``xtalgen.metrics.csp.evaluate_csp`` (DiffCSP validity gates) on the targets run, and its
    per-prediction table."""
    from xtalgen.metrics.csp import CSPConfig, evaluate_csp

    evaluation = evaluate_csp(predictions, targets, config=CSPConfig(k=k, n_jobs=1, progress=False))
    values = {f"official_{name}": value for name, value in evaluation.values().items()}
    return values, evaluation.table


def add_distances(rows: list[dict], predictions: list, targets: list, table) -> None:
    """``row["rms"]``: every prediction's normalised RMS distance to its target (None: no match),
    ungated. Valid predictions reuse the official evaluation's matching; only the predictions
    it skipped as invalid are matched here."""
    from xtalgen.metrics.csp import rms_for_target

    rms = table["rms_dist"].to_numpy(dtype=float).copy()
    skipped = ~table["valid"].to_numpy(dtype=bool)
    start = 0
    for row, target in zip(rows, targets):
        idx = list(range(start, start + row["n_pred"]))
        start += row["n_pred"]
        redo = [j for j in idx if skipped[j]]
        for j, r in zip(redo, rms_for_target((target, [predictions[j] for j in redo]))):
            rms[j] = r
        row["rms"] = [None if math.isnan(rms[j]) else float(rms[j]) for j in idx]


def summarize(rows: list[dict], k: int) -> dict:
    """Ungated match@1, match@k (fractions of all targets) and mean RMSE over matched targets."""
    first = [r["rms"][0] if r["rms"] else None for r in rows]
    best = [min((x for x in r["rms"][:k] if x is not None), default=None) for r in rows]
    n = len(rows)

    def rmse(values: list[float | None]) -> float:
        got = [v for v in values if v is not None]
        return float(np.mean(got)) if got else math.nan

    return {
        "match_rate@1": sum(v is not None for v in first) / n,
        "rmse@1": rmse(first),
        f"match_rate@{k}": sum(v is not None for v in best) / n,
        f"rmse@{k}": rmse(best),
        "mean_potential_calls_per_target": float(np.mean([r["potential_calls"] for r in rows])),
        "mean_wall_s_per_target": float(np.mean([r["wall_s"] for r in rows])),
        "no_candidates": sum(r["n_pred"] == 0 for r in rows),
    }


if __name__ == "__main__":
    main()
