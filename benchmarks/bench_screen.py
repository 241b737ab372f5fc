"""End-to-end screening time: random MP-20-sized cells through validity, dedup, relaxation
(CHGNet), E_hull, S.U.N. (novelty against MP-20's offline training set) and the store.

    .venv/bin/python benchmarks/bench_screen.py --n 100 --workers 2 --db /tmp/bench_screen.db

The cells are what an untrained generator submits (``bench_relax.random_cells``: compositions
and sizes of MP-20 test structures, random compatible space group, pyxtal positions), i.e. the
hard case for relaxation. Prints the wall time per stage, the stage counts, the S.U.N. metrics
and the time projected linearly to 1,000 structures.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bench_relax import random_cells
from xtalgen.screen import CandidateStore, ScreenConfig, screen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--reject-ehull", default="50:2.0,100:1.2,200:0.5")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--db", default="bench_screen.db")
    args = parser.parse_args()

    start = time.perf_counter()
    crystals = random_cells(args.n, args.seed)
    generate_s = time.perf_counter() - start
    db = Path(args.db)
    if db.exists():
        db.unlink()
    reject = (
        tuple(
            (int(a), float(b))
            for a, b in (item.split(":") for item in args.reject_ehull.split(","))
        )
        if args.reject_ehull != "none"
        else ()
    )
    config = ScreenConfig(
        n_workers=args.workers,
        max_steps=args.max_steps,
        reject_ehull=reject,
        batch_size=args.batch_size,
    )
    start = time.perf_counter()
    summary = screen(crystals, db, config)
    screen_s = time.perf_counter() - start
    rows = CandidateStore(db).table()
    relax_s = sum(r.get("relax_s", 0.0) for r in rows)
    relax_cpu_s = sum(r.get("relax_cpu_s", 0.0) for r in rows)
    rejected = sum(str(r.get("error", "")).startswith("rejected") for r in rows)
    not_converged = sum(str(r.get("error", "")).startswith("not converged") for r in rows)
    out = {
        "n": len(crystals),
        "workers": args.workers,
        "max_steps": args.max_steps,
        "reject_ehull": args.reject_ehull,
        "generate_s": generate_s,
        "screen_s": screen_s,
        "relax_wall_s_sum": relax_s,
        "relax_cpu_s_sum": relax_cpu_s,
        "cpu_s_per_structure": relax_cpu_s / len(crystals),
        "projected_1000_idle_2core_h": (relax_cpu_s / len(crystals) * 1000 / 2) / 3600,
        "stages": summary.stages,
        "early_rejected": rejected,
        "not_converged": not_converged,
        "projected_1000_h": screen_s / len(crystals) * 1000 / 3600,
        "metrics": summary.metrics,
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
