"""Relaxation throughput with CHGNet: near-equilibrium MP-20 cells and raw random symmetric cells.

    .venv/bin/python benchmarks/bench_relax.py --kind mp20 --n 50
    .venv/bin/python benchmarks/bench_relax.py --kind random --n 30 --max-steps 500

``random``: compositions and sizes of MP-20 test structures, a random compatible space group and
a random pyxtal crystal (what an untrained generator or a random search submits). Prints
structures per minute (one process, ``--threads`` torch threads) and per-structure statistics;
``--csv`` keeps them (initial single-point formation energy, steps, time, final E_hull) for
tuning the early-rejection thresholds of ``xtalgen screen``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from xtalgen.crystal import Crystal
from xtalgen.data import load_dataset
from xtalgen.relax import RelaxConfig, get_potential, relax_one
from xtalgen.relax.hull import ConvexHull


def random_cells(n: int, seed: int) -> list[Crystal]:
    """Random symmetric crystals with the compositions of ``n`` MP-20 test structures."""
    from xtalgen.search.symmetric import pick_spacegroup, random_symmetric_crystal

    dataset = load_dataset("mp20", "pilot_test", progress=False)
    rng = np.random.default_rng(seed)
    out: list[Crystal] = []
    for i in rng.permutation(len(dataset)):
        comp = dataset[int(i)].composition
        symbols = [el.symbol for el in comp.elements]
        counts = [int(comp[el]) for el in comp.elements]
        sg = pick_spacegroup(counts, rng)
        crystal = None if sg is None else random_symmetric_crystal(symbols, counts, sg, rng)
        if crystal is not None:
            out.append(
                crystal.with_properties(
                    generator="random-symmetric", seed=seed, spacegroup_requested=sg
                )
            )
        if len(out) == n:
            break
    return out


def mp20_cells(n: int, seed: int) -> list[Crystal]:
    dataset = load_dataset("mp20", "pilot_test", progress=False)
    rng = np.random.default_rng(seed)
    return [dataset[int(i)] for i in rng.choice(len(dataset), n, replace=False)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", choices=("mp20", "random"), default="mp20")
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--fmax", type=float, default=0.1)
    parser.add_argument("--max-steps", type=int, default=500)
    parser.add_argument("--csv", default=None)
    args = parser.parse_args()

    crystals = (random_cells if args.kind == "random" else mp20_cells)(args.n, args.seed)
    potential = get_potential("chgnet", threads=args.threads)
    hull = ConvexHull()
    config = RelaxConfig(fmax=args.fmax, max_steps=args.max_steps)
    rows = []
    start = time.perf_counter()
    for crystal in crystals:
        res = relax_one(crystal, potential, config)
        comp = crystal.composition
        mu = -hull.formation_energy_per_atom(comp, 0.0)
        row = {
            "formula": crystal.formula,
            "n_sites": crystal.num_sites,
            "n_steps": res.n_steps,
            "wall_s": res.wall_s,
            "cpu_s": res.cpu_s,
            "converged": res.converged,
            "error": res.error,
            "initial_e_form": res.initial_energy_per_atom - mu,
            "final_e_form": res.energy_per_atom - mu,
        }
        energies = res.extra.get("energies", [])
        for k in (25, 50, 100, 150, 200, 300):  # E_form along the way, to tune early rejection
            row[f"e_form_step{k}"] = energies[k] - mu if len(energies) > k else row["final_e_form"]
        if res.crystal is not None:
            h = hull.evaluate(res.crystal, res.energy_per_atom, correction=potential.correction)
            row["e_above_hull"] = h.e_above_hull
        rows.append(row)
        print(json.dumps(row), flush=True)
    total = time.perf_counter() - start
    table = pd.DataFrame(rows)
    if args.csv:
        table.to_csv(args.csv, index=False)
    summary = {
        "kind": args.kind,
        "n": len(table),
        "threads": args.threads,
        "max_steps": args.max_steps,
        "fmax": args.fmax,
        "structures_per_min": 60 * len(table) / total,
        "mean_sites": float(table.n_sites.mean()),
        "mean_steps": float(table.n_steps.mean()),
        "median_s": float(table.wall_s.median()),
        "cpu_s_per_structure": float(table.cpu_s.mean()),
        "converged": int(table.converged.sum()),
    }
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
