"""Fast CrystalNN fingerprint vs matminer's: per-structure time, speedup, largest difference.

    .venv/bin/python benchmarks/bench_fingerprint.py                 # 500 MP-20 structures
    .venv/bin/python benchmarks/bench_fingerprint.py --dataset perov5 --n 200

Structures: the first n/2 rows of the bundled split (MP-20 ``pilot_test``, Perov-5 / Carbon-24
``test``) as they are, plus n/2 strained / shaken copies (seed 0; lattice +-3 %, coordinates
N(0, 0.02) fractional) of the next n/2 rows. Both paths run in this one process (no workers);
times are CPU seconds of this process, so they hold on a shared machine. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections import Counter
from datetime import UTC, datetime

import numpy as np

from xtalgen.crystal import Crystal, perturb
from xtalgen.data import load_dataset
from xtalgen.metrics.crystalnn import FastStats, ops_preset
from xtalgen.metrics.fingerprints import structure_fingerprint

SPLITS = {"mp20": "pilot_test", "perov5": "test", "carbon24": "test"}


def perturbed(crystals: list[Crystal], seed: int, noise: float = 0.02, strain: float = 0.03) -> list[Crystal]:
    """Copies with the lattice strained by up to ``strain`` and fractional coordinates shaken."""
    rng = np.random.default_rng(seed)
    return [perturb(c, rng, frac_noise=noise, strain=strain) for c in crystals]


def sample(dataset: str, n: int) -> list[Crystal]:
    data = load_dataset(dataset, SPLITS[dataset], progress=False)
    half = n // 2
    if n > len(data):
        raise SystemExit(f"{dataset}/{SPLITS[dataset]} has only {len(data)} rows")
    plain = [data[i] for i in range(half)]
    return plain + perturbed([data[i] for i in range(half, n)], seed=0)


def run(crystals: list[Crystal], method: str, stats: FastStats | None = None) -> tuple[np.ndarray, float]:
    rows, cpu = [], time.process_time()
    for c in crystals:
        fp = structure_fingerprint(c, method, stats)
        rows.append(np.full(61, np.nan) if fp is None else fp)
    return np.array(rows), time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(SPLITS), default="mp20")
    parser.add_argument("--n", type=int, default=500)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    crystals = sample(args.dataset, args.n)
    structure_fingerprint(crystals[0], "matminer")  # imports and featurizer set-up off the clock
    ops_preset()
    stats = FastStats()
    fast, t_fast = run(crystals, "fast", stats)
    ref, t_ref = run(crystals, "matminer")
    both_none = np.isnan(fast).all(axis=1) & np.isnan(ref).all(axis=1)
    diff = np.where(both_none[:, None], 0.0, np.abs(fast - ref))
    diff = np.where(np.isnan(diff), np.inf, diff)  # None on one side only counts as a difference
    per_struct = diff.max(axis=1)
    n = len(crystals)
    reasons = Counter(r.split(":")[0] + ":" + r.split(":")[1] if ":" in r else r for r in stats.reasons)
    rows = [
        ("structures", f"{n} ({n // 2} {args.dataset}/{SPLITS[args.dataset]} rows + {n - n // 2} "
                       "perturbed copies of the next rows)"),
        ("sites", str(stats.sites)),
        ("matminer CPU per structure", f"{t_ref / n * 1e3:.1f} ms"),
        ("fast CPU per structure", f"{t_fast / n * 1e3:.1f} ms"),
        ("speedup (CPU)", f"{t_ref / t_fast:.2f}x"),
        ("max abs difference", f"{per_struct.max():.2e}"),
        ("structures differing > 1e-8", str(int((per_struct > 1e-8).sum()))),
        ("structures differing > 1e-10", str(int((per_struct > 1e-10).sum()))),
        ("structures without fingerprint (both paths)", str(int(both_none.sum()))),
        ("structures handed to matminer by the fast path", f"{stats.fallback_structures} {dict(reasons)}"),
        ("(site, CN) groups with OPs from pymatgen's code", str(stats.reference_groups)),
    ]
    print(f"bench_fingerprint {args.dataset} n={n}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print("| figure | value |\n|---|---|")
    for a, b in rows:
        print(f"| {a} | {b} |")


if __name__ == "__main__":
    main()
