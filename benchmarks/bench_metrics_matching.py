"""Novelty against the training split: plain StructureMatcher loops versus xtalgen's fast path.

    .venv/bin/python benchmarks/bench_metrics_matching.py --n 300

Samples are perturbed copies of MP-20 ``offline_train`` crystals (so most have a match);
the reference is ``offline_train`` (8,094 crystals). Compared, with the ``ordered`` preset:

1. naive: every sample against every training crystal (estimated from a timed random subset
   of pairs, since running it takes hours);
2. plain grouped: pymatgen ``fit`` against the training crystals of the same reduced formula;
3. xtalgen ``novel_mask`` (same grouping, each structure reduced once, composition prefilter,
   parallel processes), which must give the same mask as 2.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from xtalgen.data import load_dataset
from xtalgen.metrics import get_matcher, novel_mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    train = list(load_dataset("mp20", "offline_train", progress=False))
    rng = np.random.default_rng(0)
    picks = rng.choice(len(train), args.n, replace=False)
    samples = [train[i].replace(frac_coords=train[i].frac_coords + rng.normal(0, 0.02, (train[i].num_sites, 3)))
               for i in picks]
    matcher = get_matcher("ordered")

    # 1. naive all-pairs, estimated from 300 random pairs
    pairs = [(samples[rng.integers(args.n)].to_pymatgen(), train[rng.integers(len(train))].to_pymatgen())
             for _ in range(300)]
    start = time.perf_counter()
    for a, b in pairs:
        matcher.fit(a, b)
    per_pair = (time.perf_counter() - start) / len(pairs)
    naive = per_pair * args.n * len(train)

    # 2. plain loop grouped by reduced formula
    groups: dict[str, list] = {}
    for c in train:
        groups.setdefault(c.formula, []).append(c)
    start = time.perf_counter()
    plain = []
    for c in samples:
        s = c.to_pymatgen()
        plain.append(not any(matcher.fit(s, r.to_pymatgen()) for r in groups.get(c.formula, [])))
    t_plain = time.perf_counter() - start

    # 3. xtalgen
    start = time.perf_counter()
    fast1 = novel_mask(samples, train, preset="ordered", n_jobs=1, progress=False)
    t_fast1 = time.perf_counter() - start
    start = time.perf_counter()
    fast = novel_mask(samples, train, preset="ordered", n_jobs=args.jobs, progress=False)
    t_fast = time.perf_counter() - start
    assert fast.tolist() == plain == fast1.tolist(), "fast path differs from the plain loop"

    print(f"| novelty of {args.n} samples vs {len(train)} training crystals (ordered preset) | wall |")
    print("|---|---|")
    print(f"| naive all pairs (estimated: {per_pair * 1e3:.2f} ms/pair x {args.n * len(train)} pairs) "
          f"| {naive:.0f} s |")
    print(f"| plain pymatgen loop, grouped by reduced formula | {t_plain:.1f} s |")
    print(f"| xtalgen novel_mask, 1 process | {t_fast1:.1f} s |")
    print(f"| xtalgen novel_mask, {args.jobs} processes | {t_fast:.1f} s |")
    print(f"| novel fraction (identical in 2 and 3) | {np.mean(plain):.3f} |")


if __name__ == "__main__":
    main()
