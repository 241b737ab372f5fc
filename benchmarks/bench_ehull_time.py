"""Time of the E_hull step for 10,000 relaxed structures (bundled MP-20 hull, one process).

    .venv/bin/python benchmarks/bench_ehull_time.py --n 10000

Structures: the first 10,000 rows of MP-20 pilot_test, biternary_test and offline_train;
energies: their tabulated formation energies turned back into total energies with the elemental
references (the timing does not depend on the values).
Both paths are timed: ``none`` (CHGNet, whose energies already carry MP2020 corrections) and
``MP2020`` (potentials trained on raw energies: the correction scheme runs on every structure).
The E_hull of each structure must equal the tabulated-formation-energy one (a consistency check).
"""

from __future__ import annotations

import argparse
import json
import math
import time

from xtalgen.data import load_dataset
from xtalgen.relax.hull import ConvexHull


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000)
    args = parser.parse_args()

    crystals = []
    for split in ("pilot_test", "biternary_test", "offline_train"):
        crystals += list(load_dataset("mp20", split, progress=True))
    crystals = crystals[: args.n]
    start = time.perf_counter()
    hull = ConvexHull()
    load_s = time.perf_counter() - start
    energies = []
    for c in crystals:
        mu = -hull.formation_energy_per_atom(c.composition, 0.0)
        energies.append(float(c.properties["formation_energy_per_atom"]) + mu)
    out = {"n": len(crystals), "hull_load_s": load_s}
    for correction in ("none", "MP2020"):
        fresh = ConvexHull(hull.reference)  # phase diagrams built inside the timing
        start, cpu = time.perf_counter(), time.process_time()
        results = [fresh.evaluate(c, e, correction) for c, e in zip(crystals, energies)]
        wall = time.perf_counter() - start
        out[f"{correction}_cpu_s"] = time.process_time() - cpu
        out[f"{correction}_s"] = wall
        out[f"{correction}_ms_per_structure"] = 1e3 * wall / len(crystals)
        out[f"{correction}_n_phase_diagrams"] = len(fresh._diagrams)
        out[f"{correction}_errors"] = sum(r.error is not None for r in results)
        if correction == "none":
            floor = [
                fresh.e_above_hull_of_formation(
                    c.composition, c.properties["formation_energy_per_atom"]
                )
                for c in crystals
            ]
            diffs = [
                abs(a.e_above_hull - b.e_above_hull)
                for a, b in zip(results, floor)
                if math.isfinite(a.e_above_hull)
            ]
            out["max_abs_diff_vs_formation_path"] = max(diffs)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
