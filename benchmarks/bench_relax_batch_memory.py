"""Peak memory and wall time of CHGNet relaxation: one by one against lockstep batches.

    .venv/bin/python benchmarks/bench_relax_batch_memory.py --n 10 --batch-size 10

Relaxes ``--n`` MP-20 pilot_test structures, strained by +3% and rattled by 0.05 angstrom
(seeded), for at most ``--max-steps`` FIRE steps (fmax 0.1 eV/A, no RMSD), once one by one and
once in lockstep batches of ``--batch-size`` (``xtalgen.relax.relax(..., batch_size=B)``). Each
mode runs in a fresh process with one torch thread, so the peak resident memory (``ru_maxrss``)
belongs to that mode alone.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path


def run_mode(n: int, batch_size: int, max_steps: int, seed: int) -> dict:
    import os
    import resource
    import time
    import warnings

    import numpy as np

    os.environ["XTALGEN_THREADS"] = "1"
    warnings.filterwarnings("ignore")
    from xtalgen.data import load_dataset
    from xtalgen.relax import get_potential, relax
    from xtalgen.relax.relaxer import RelaxConfig

    rng = np.random.default_rng(seed)
    test = list(load_dataset("mp20", "pilot_test", progress=False))
    picked = [test[i] for i in rng.choice(len(test), n, replace=False)]
    crystals = []
    for c in picked:
        lattice = c.lattice * 1.03
        cart = c.frac_coords @ lattice + rng.normal(0, 0.05, (c.num_sites, 3))
        crystals.append(c.replace(lattice=lattice, frac_coords=cart @ np.linalg.inv(lattice)))
    potential = get_potential("chgnet")
    start = time.perf_counter()
    results = relax(crystals, potential=potential, batch_size=batch_size, progress=False,
                    config=RelaxConfig(fmax=0.1, max_steps=max_steps, compute_rmsd=False))
    return {"batch_size": batch_size, "wall_s": round(time.perf_counter() - start, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3),
            "steps": [r.n_steps for r in results]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--max-steps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mode", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode is not None:  # child process: one mode, written to a file (not stdout, which
        # xtalgen before the fix of relax_batched could leave redirected)
        Path(args.result).write_text(json.dumps(run_mode(args.n, args.mode, args.max_steps, args.seed)))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for batch in (1, args.batch_size):
            result = Path(tmp) / f"batch{batch}.json"
            out = subprocess.run([sys.executable, __file__, "--n", str(args.n), "--max-steps",
                                  str(args.max_steps), "--seed", str(args.seed), "--mode",
                                  str(batch), "--result", str(result)], capture_output=True, text=True)
            if out.returncode or not result.exists():
                raise SystemExit(f"batch size {batch}: exit {out.returncode}\n{out.stderr[-2000:]}")
            rows.append(json.loads(result.read_text()))
    result = {"n": args.n, "max_steps": args.max_steps, "modes": rows,
              "machine": f"{platform.node()} (2-core CPU dev machine, 1 torch thread)",
              "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
