"""Which CHGNet path is faster here: batched vs looped single points, chgnet's StructOptimizer
vs xtalgen's ASE FIRE + FrechetCellFilter loop (same optimizer, same fmax), and xtalgen's
lockstep batched relaxation (one CHGNet call per step for all crystals).

    .venv/bin/python benchmarks/bench_relax_backends.py --n 20 --n-relax 5
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
import warnings

import numpy as np

from xtalgen.crystal import Crystal
from xtalgen.data import load_dataset
from xtalgen.relax import RelaxConfig, get_potential, relax_one


def rattled(crystal: Crystal, rng: np.random.Generator) -> Crystal:
    cart = crystal.cart_coords + rng.normal(0, 0.05, crystal.frac_coords.shape)
    lattice = crystal.lattice * 1.03
    return crystal.replace(frac_coords=cart @ np.linalg.inv(crystal.lattice), lattice=lattice)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--n-relax", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    dataset = load_dataset("mp20", "pilot_test", progress=False)
    rng = np.random.default_rng(0)
    crystals = [dataset[int(i)] for i in rng.choice(len(dataset), args.n, replace=False)]
    potential = get_potential("chgnet", threads=args.threads)
    model = potential.calculator.model
    structures = [c.to_pymatgen() for c in crystals]
    out: dict[str, float] = {
        "n": args.n,
        "mean_sites": float(np.mean([len(s) for s in structures])),
    }

    potential.single_point(crystals[0])  # warm-up
    start = time.perf_counter()
    for c in crystals:
        potential.single_point(c)
    out["loop_single_point_s"] = (time.perf_counter() - start) / args.n
    for batch in (4, args.n):
        start = time.perf_counter()
        model.predict_structure(structures, task="efs", batch_size=batch)
        out[f"batched{batch}_single_point_s"] = (time.perf_counter() - start) / args.n

    from chgnet.model import StructOptimizer

    optimizer = StructOptimizer(model=potential.calculator)
    targets = [rattled(c, rng) for c in crystals[: args.n_relax]]
    start = time.perf_counter()
    steps = 0
    for c in targets:
        with contextlib.redirect_stdout(io.StringIO()):
            res = optimizer.relax(c.to_pymatgen(), fmax=0.1, steps=500, verbose=False)
        steps += len(res["trajectory"]) - 1
    out["chgnet_structoptimizer_s"] = (time.perf_counter() - start) / len(targets)
    out["chgnet_structoptimizer_steps"] = steps / len(targets)
    start = time.perf_counter()
    steps = 0
    for c in targets:
        res = relax_one(c, potential, RelaxConfig(fmax=0.1, max_steps=500, compute_rmsd=False))
        steps += res.n_steps
    out["xtalgen_relax_one_s"] = (time.perf_counter() - start) / len(targets)
    out["xtalgen_relax_one_steps"] = steps / len(targets)
    from xtalgen.relax import relax

    config = RelaxConfig(fmax=0.1, max_steps=500, compute_rmsd=False)
    start = time.perf_counter()
    relax(targets, potential=potential, config=config, batch_size=len(targets), progress=False)
    out["xtalgen_lockstep_batched_s"] = (time.perf_counter() - start) / len(targets)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
