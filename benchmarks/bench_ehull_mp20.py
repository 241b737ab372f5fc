"""E_hull error bar: relax MP-20 test structures with CHGNet, compare E_hull with MP's tabulated.

Also reports the near-equilibrium relaxation throughput and two floors of the error:
the hull floor (tabulated formation energy placed on our reference hull) and the formation-energy
error of the potential + MP2020 + 2023 elemental references against MP-20's formation energies.

    .venv/bin/python benchmarks/bench_ehull_mp20.py --n 200 --threads 1 --out /tmp/ehull.csv
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from xtalgen.data import load_dataset
from xtalgen.relax import RelaxConfig, get_potential, relax
from xtalgen.relax.hull import ConvexHull


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--fmax", type=float, default=0.1)
    parser.add_argument("--max-steps", type=int, default=500)
    parser.add_argument("--out", default="ehull_mp20.csv")
    args = parser.parse_args()

    dataset = load_dataset("mp20", "pilot_test", progress=False)
    rng = np.random.default_rng(args.seed)
    index = rng.choice(len(dataset), size=min(args.n, len(dataset)), replace=False)
    crystals = [dataset[int(i)] for i in index]
    potential = get_potential("chgnet", threads=args.threads)
    hull = ConvexHull()

    start = time.perf_counter()
    results = relax(
        crystals, potential=potential, config=RelaxConfig(fmax=args.fmax, max_steps=args.max_steps)
    )
    relax_s = time.perf_counter() - start
    rows = []
    start = time.perf_counter()
    for crystal, res in zip(crystals, results):
        tab_ehull = float(crystal.properties["e_above_hull"])
        tab_eform = float(crystal.properties["formation_energy_per_atom"])
        row = {
            "material_id": crystal.properties["material_id"],
            "formula": crystal.formula,
            "n_sites": crystal.num_sites,
            "tab_e_above_hull": tab_ehull,
            "tab_formation_energy": tab_eform,
            "n_steps": res.n_steps,
            "converged": res.converged,
            "relax_s": res.wall_s,
            "relax_cpu_s": res.cpu_s,
            "rmsd": res.rmsd,
            "error": res.error,
        }
        floor = hull.e_above_hull_of_formation(crystal.composition, tab_eform)
        row["hull_floor_e_above_hull"] = floor.e_above_hull
        if res.crystal is not None:
            for scheme in ("MP2020", "none"):
                h = hull.evaluate(res.crystal, res.energy_per_atom, correction=scheme)
                row[f"e_above_hull_{scheme}"] = h.e_above_hull
                row[f"formation_energy_{scheme}"] = h.formation_energy_per_atom
        rows.append(row)
    hull_s = time.perf_counter() - start
    table = pd.DataFrame(rows)
    table.to_csv(args.out, index=False)

    def mae(a: str, b: str) -> float:
        return float(np.nanmean(np.abs(table[a] - table[b])))

    def mse(a: str, b: str) -> float:
        return float(np.nanmean(table[a] - table[b]))

    summary = {
        "n": len(table),
        "relaxed_ok": int(table["converged"].sum()),
        "relax_structures_per_min": 60 * len(table) / relax_s,
        "mean_steps": float(table["n_steps"].mean()),
        "relax_cpu_s_per_structure": float(table["relax_cpu_s"].mean()),
        "mean_sites": float(table["n_sites"].mean()),
        "mean_rmsd_A": float(np.nanmean(table["rmsd"])),
        "ehull_mae_MP2020": mae("e_above_hull_MP2020", "tab_e_above_hull"),
        "ehull_mean_signed_MP2020": mse("e_above_hull_MP2020", "tab_e_above_hull"),
        "ehull_mae_uncorrected": mae("e_above_hull_none", "tab_e_above_hull"),
        "eform_mae_MP2020": mae("formation_energy_MP2020", "tab_formation_energy"),
        "eform_mean_signed_MP2020": mse("formation_energy_MP2020", "tab_formation_energy"),
        "eform_mae_uncorrected": mae("formation_energy_none", "tab_formation_energy"),
        "hull_floor_mae": mae("hull_floor_e_above_hull", "tab_e_above_hull"),
        "hull_floor_mean_signed": mse("hull_floor_e_above_hull", "tab_e_above_hull"),
        "ehull_s_per_structure": hull_s / len(table),
        "threads": args.threads,
    }
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
