"""Point defects: seconds per defect and neutral formation energies beside published values.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_defects.py --threads 1

Cases (hosts relaxed first, defects at the fixed relaxed cell, ``xtalgen.defects``):

* Si vacancy, CHGNet, 3x3x3 and 4x4x4 primitive supercells (54 / 128 sites), once more with
  the neighbours rattled by 0.05 A to let a symmetry-lowering distortion appear.
  Published: DFT (LDA/GGA) neutral V_Si 3.0-4.0 eV (e.g. ~3.6 eV, converged supercells);
  positron annihilation experiment 3.6 +- 0.5 eV.
* NaCl V_Na and V_Cl, CHGNet, 3x3x3 and 4x4x4 primitive supercells, at both corners (Na-rich,
  Cl-rich). The sum of the two neutral vacancies at one corner does not depend on the chemical
  potentials; it is shown beside the experimental Schottky-pair enthalpy 2.0-2.5 eV, which is
  for the *charged* pair V_Na^- + V_Cl^+ (electron moved from the F centre to the V centre),
  so the two are not the same quantity: only the order of magnitude is comparable.
* Cu vacancy, ASE EMT, 4x4x4 primitive (64 sites): experiment 1.28 eV (1.27-1.29).

Known: universal potentials trained on near-equilibrium data (CHGNet, M3GNet, MACE-MP-0)
underpredict energies of defects and surfaces (potential-energy-surface softening; Deng et al.,
npj Comput. Mater. 11, 9 (2025)). Writes ``benchmarks/results/defects.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from ase.build import bulk

from xtalgen.crystal import Crystal
from xtalgen.defects import (
    APPROXIMATION,
    DefectResult,
    defect_formation_energies,
    generate_defects,
    relax_host,
)
from xtalgen.defects.generate import Defect
from xtalgen.relax import get_potential

LITERATURE = {
    "Si v_Si": {"range_eV": [3.0, 4.0], "note": "DFT neutral vacancy; experiment 3.6 +- 0.5 eV"},
    "NaCl v_Na+v_Cl": {
        "range_eV": [2.0, 2.5],
        "note": "experimental Schottky pair (charged vacancies), not the neutral pair",
    },
    "Cu v_Cu": {"range_eV": [1.27, 1.29], "note": "experiment (positron annihilation)"},
}


def rattled(defect: Defect, rng: np.random.Generator, sigma: float = 0.05) -> Defect:
    """The defect with every site moved by N(0, sigma) angstrom (sigma in angstrom)."""
    crystal = defect.crystal
    cart = crystal.cart_coords + rng.normal(0, sigma, crystal.cart_coords.shape)
    frac = np.linalg.solve(crystal.lattice.T, cart.T).T
    return dataclasses.replace(defect, crystal=crystal.replace(frac_coords=frac))


def run_case(label: str, host: Crystal, potential, supercell, fmax: float, rattle: bool = False):
    host = relax_host(host, potential).crystal
    defects = generate_defects(host, supercell=supercell)
    if rattle:
        rng = np.random.default_rng(0)
        defects = [rattled(d, rng) for d in defects]
    results = defect_formation_energies(
        host,
        defects,
        potential=potential,
        fmax=fmax,
        max_steps=500,
        relax_host_first=False,
        progress=False,
    )
    return [row(label, r) for r in results], results


def row(label: str, r: DefectResult) -> dict:
    return {
        "case": label,
        "defect": r.name,
        "supercell": r.defect.supercell_label,
        "sites": r.defect.crystal.num_sites,
        "formation_energy_eV": {k: round(v, 4) for k, v in r.formation_energy.items()},
        "default_corner": r.default,
        "n_steps": r.n_steps,
        "converged": r.converged,
        "seconds": round(r.wall_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--fmax", type=float, default=0.02)
    parser.add_argument("--out", default="benchmarks/results/defects.json")
    args = parser.parse_args()

    start = time.perf_counter()
    chgnet = get_potential("chgnet", threads=args.threads)
    load_s = time.perf_counter() - start
    emt = get_potential("emt")
    si = Crystal.from_ase(bulk("Si", "diamond", a=5.43))
    nacl = Crystal.from_ase(bulk("NaCl", "rocksalt", a=5.64))
    cu = Crystal.from_ase(bulk("Cu", "fcc", a=3.61))

    rows: list[dict] = []
    pairs: list[dict] = []
    for cell in ((3, 3, 3), (4, 4, 4)):
        rows += run_case("Si CHGNet", si, chgnet, cell, args.fmax)[0]
    rows += run_case("Si CHGNet rattled 0.05 A", si, chgnet, (3, 3, 3), args.fmax, rattle=True)[0]
    for cell in ((3, 3, 3), (4, 4, 4)):
        new, results = run_case("NaCl CHGNet", nacl, chgnet, cell, args.fmax)
        rows += new
        by_name = {r.name: r for r in results}
        corner = next(iter(by_name["v_Na"].formation_energy))
        pairs.append(
            {
                "supercell": "x".join(map(str, cell)),
                "neutral_pair_eV": round(
                    by_name["v_Na"].formation_energy[corner]
                    + by_name["v_Cl"].formation_energy[corner],
                    4,
                ),
            }
        )
    rows += run_case("Cu EMT", cu, emt, (4, 4, 4), args.fmax)[0]
    chgnet_rows = [r for r in rows if "CHGNet" in r["case"]]
    result = {
        "benchmark": "point defects: neutral formation energies and time per defect",
        "command": " ".join(
            [
                "OMP_NUM_THREADS=" + os.environ.get("OMP_NUM_THREADS", ""),
                ".venv/bin/python",
                *sys.argv,
            ]
        ),
        "machine": f"{platform.node()} ({os.cpu_count()}-core CPU dev machine, shared, no GPU)",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "threads": args.threads,
        "fmax_eV_per_A": args.fmax,
        "approximation": APPROXIMATION,
        "chgnet_load_s": round(load_s, 2),
        "seconds_per_defect_chgnet": {
            f"{n} sites": round(
                float(np.mean([r["seconds"] for r in chgnet_rows if r["sites"] == n])), 2
            )
            for n in sorted({r["sites"] for r in chgnet_rows})
        },
        "defects": rows,
        "nacl_neutral_vacancy_pair": pairs,
        "literature": LITERATURE,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    for r in rows:
        print(
            f"{r['case']:<26} {r['defect']:<6} {r['supercell']:<6} {r['sites']:>4} sites "
            f"E_f {r['formation_energy_eV']} eV  {r['n_steps']:>3} steps {r['seconds']:>6.2f} s"
        )
    print("NaCl neutral pair v_Na + v_Cl:", pairs)
    print("seconds per defect (CHGNet):", result["seconds_per_defect_chgnet"])


if __name__ == "__main__":
    main()
