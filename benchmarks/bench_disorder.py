"""Disorder: orderings per parent and seconds per parent (enumeration, SQS, screening).

Six textbook disordered crystals (built here with pymatgen; lattice constants from the
literature, rounded): each is enumerated (Ewald-ranked, symmetry-distinct orderings in the
smallest whole-atom supercell and in a doubled one), given one special quasirandom structure
(icet), and, with ``--screen``, screened end to end (``xtalgen.screen`` with ``order=N``, CHGNet,
bundled MP-20 hull) to report the lowest E_hull per parent.

    python benchmarks/bench_disorder.py --order 10 --screen --out benchmarks/results/disorder.json
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from pymatgen.core import Lattice, Structure

from xtalgen.crystal import Crystal
from xtalgen.disorder import (
    OrderingSettings,
    enumerate_orderings,
    min_supercell,
    special_quasirandom,
)

FCC = [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]


def parents() -> dict[str, Crystal]:
    """name -> disordered crystal (source property set to the name)."""
    cases = {
        "Na0.5K0.5Cl (rock salt)": Structure.from_spacegroup(
            "Fm-3m", Lattice.cubic(5.95), [{"Na": 0.5, "K": 0.5}, "Cl"], [[0, 0, 0], [0.5] * 3]
        ),
        "Cu0.5Au0.5 (fcc, A1)": Structure(Lattice.cubic(3.85), [{"Cu": 0.5, "Au": 0.5}] * 4, FCC),
        "Ba0.5Sr0.5TiO3 (cubic perovskite)": Structure.from_spacegroup(
            "Pm-3m", Lattice.cubic(3.95), [{"Ba": 0.5, "Sr": 0.5}, "Ti", "O"],
            [[0, 0, 0], [0.5] * 3, [0.5, 0.5, 0]],
        ),
        "Li0.5CoO2 (layered, Li/vacancy)": Structure.from_spacegroup(
            "R-3m", Lattice.hexagonal(2.82, 14.05), [{"Li": 0.5}, "Co", "O"],
            [[0, 0, 0.5], [0, 0, 0], [0, 0, 0.24]],
        ),
        "Fe0.75Ni0.25 (fcc)": Structure(Lattice.cubic(3.58), [{"Fe": 0.75, "Ni": 0.25}] * 4, FCC),
        "Mg0.5Zn0.5O (rock salt)": Structure.from_spacegroup(
            "Fm-3m", Lattice.cubic(4.26), [{"Mg": 0.5, "Zn": 0.5}, "O"], [[0, 0, 0], [0.5] * 3]
        ),
    }
    out = {}
    for name, structure in cases.items():
        primitive = structure.get_primitive_structure() if len(structure) > 4 else structure
        out[name] = Crystal.from_pymatgen(primitive, properties={"source": name})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--order", type=int, default=10, help="orderings kept per parent")
    parser.add_argument("--screen", action="store_true", help="also screen with CHGNet")
    parser.add_argument("--max-steps", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/disorder.json"))
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    rows = []
    for name, crystal in parents().items():
        row: dict = {"parent": name, "sites": crystal.num_sites}
        base = min_supercell(crystal)
        for label, cell in (("min", base), ("double", (base[0], base[1], base[2] * 2)),
                            ("auto", None)):
            start = time.perf_counter()
            settings = OrderingSettings(n=args.order, supercell=cell, max_sites=128)
            orderings = enumerate_orderings(crystal, settings)
            row[f"orderings_{label}"] = len(orderings)
            row[f"supercell_{label}"] = orderings[0].properties["supercell"]
            row[f"sites_{label}"] = orderings[0].num_sites
            row[f"enumerate_s_{label}"] = round(time.perf_counter() - start, 2)
            row[f"ranked_{label}"] = bool(np.isfinite(orderings[0].properties["ewald_energy"]))
        start = time.perf_counter()
        sqs = special_quasirandom(crystal, n_steps=3000)
        row["sqs_sites"] = sqs.num_sites
        row["sqs_s"] = round(time.perf_counter() - start, 2)
        if args.screen:
            from xtalgen.screen import ScreenConfig, screen

            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                config = ScreenConfig(order=args.order, max_steps=args.max_steps, n_workers=1,
                                      novelty_reference=None, progress=False)
                summary = screen([crystal], Path(tmp) / "c.db", config)
                row["screen_s"] = round(time.perf_counter() - start, 1)
                parent = summary.parents[0]
                row["screened_orderings"] = parent["n_orderings"]
                row["best_e_above_hull"] = parent["best_e_above_hull"]
                row["stages"] = summary.stages
        print(json.dumps(row), flush=True)
        rows.append(row)
    result = {
        "benchmark": "disorder",
        "command": f"python benchmarks/bench_disorder.py --order {args.order}"
        + (f" --screen --max-steps {args.max_steps}" if args.screen else ""),
        "machine": f"{platform.node()} (2-core CPU, no GPU; 1 torch thread)",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
