"""Time the evaluation suites and check their sanity anchors; prints Markdown tables.

    .venv/bin/python benchmarks/bench_metrics.py --part anchors     # val vs test, test vs itself
    .venv/bin/python benchmarks/bench_metrics.py --part dng --n 10000
    .venv/bin/python benchmarks/bench_metrics.py --part dng --n 10000 --fingerprint-method fast
    .venv/bin/python benchmarks/bench_metrics.py --part csp

Data (all bundled, offline): MP-20 ``pilot/val`` (1,000 rows of the standard val split),
``offline_test`` (= pilot/test, 1,000 rows of the standard test split), ``offline_train``
(8,094 rows), ``biternary_test`` (7,118 test rows with 2-3 elements). The DNG timing uses
perturbed copies of ``offline_train`` crystals as "generated" samples (MP-20-sized cells);
the CSP timing uses perturbed copies of every test structure here as predictions (k=1).
Wall times on a shared machine depend on its load, so CPU time (this process plus its
workers) is printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from xtalgen.crystal import Crystal, perturb
from xtalgen.data import load_dataset
from xtalgen.data.registry import BUNDLED_DIR
from xtalgen.metrics import CSPConfig, DNGConfig, evaluate_csp, evaluate_dng
from xtalgen.metrics.fingerprints import default_method


def cpu_seconds() -> float:
    self_, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return self_.ru_utime + self_.ru_stime + children.ru_utime + children.ru_stime


def perturbed(crystals: list[Crystal], n: int, seed: int, noise: float = 0.02,
              strain: float = 0.03) -> list[Crystal]:
    """``n`` copies cycling through ``crystals``: lattice strained, coordinates shaken."""
    rng = np.random.default_rng(seed)
    return [perturb(crystals[i % len(crystals)], rng, frac_noise=noise, strain=strain)
            for i in range(n)]


def timed(label: str, fn):
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = fn()
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    print(f"[{label}] wall {wall:.1f} s, cpu {cpu:.1f} s", flush=True)
    return result, wall, cpu


def table(rows: list[tuple[str, str]]) -> str:
    return "\n".join(["| figure | value |", "|---|---|", *[f"| {a} | {b} |" for a, b in rows]])


def part_anchors(jobs: int | None) -> list[tuple[str, str]]:
    val = list(load_dataset(BUNDLED_DIR / "mp_20" / "pilot" / "val.csv.gz", progress=False))
    test = list(load_dataset("mp20", "offline_test", progress=False))
    dng, wall, cpu = timed("anchor dng", lambda: evaluate_dng(
        val, test, config=DNGConfig(n_jobs=jobs, progress=True)))
    v = dng.values()
    rows = [(f"MP-20 val (1,000) as samples vs offline_test (1,000): {k}", f"{v[k]:.4f}")
            for k in ("struct_valid", "comp_valid", "valid", "cov_recall", "cov_precision",
                      "wdist_density", "wdist_num_elems")]
    rows.append(("  time (wall / cpu)", f"{wall:.0f} s / {cpu:.0f} s"))
    samples = [c.with_properties(target_index=i, sample_index=0) for i, c in enumerate(test)]
    for gate in ("none", "pred_and_gt"):
        csp, wall, cpu = timed(f"anchor csp {gate}", lambda g=gate: evaluate_csp(
            samples, test, config=CSPConfig(k=1, gate=g, n_jobs=jobs, progress=True)))
        c = csp.values()
        rows.append((f"offline_test predicted by itself, gate={gate}: match_rate@1 / rmse@1",
                     f"{c['match_rate@1']:.4f} / {c['rmse@1']:.2e} "
                     f"(valid test structures: {csp.info['num_test_valid']}/{len(test)})"))
    return rows


def part_dng(n: int, jobs: int | None) -> list[tuple[str, str]]:
    train = list(load_dataset("mp20", "offline_train", progress=False))
    test = list(load_dataset("mp20", "offline_test", progress=False))
    samples = perturbed(train, n, seed=0)
    config = DNGConfig(n_jobs=jobs, progress=True)
    # fill the on-disk cache of the reference fingerprints first (a one-time cost per split)
    _, ref_wall, ref_cpu = timed("reference fingerprints", lambda: evaluate_dng(
        samples[:2], test, config=DNGConfig(n_jobs=jobs, n_subsample=2, progress=False)))
    result, wall, cpu = timed("dng suite", lambda: evaluate_dng(samples, test, train=train, config=config))
    rows = [(f"DNG suite, {n} samples vs offline_test (1,000), novelty vs offline_train "
             f"({len(train)}): wall / cpu", f"{wall:.0f} s / {cpu:.0f} s")]
    stage_cpu = result.info.get("cpu_s", {})
    rows += [(f"  stage {k} (wall / cpu)", f"{s:.1f} s / {stage_cpu.get(k, float('nan')):.1f} s")
             for k, s in result.info["timings_s"].items()]
    rows.append(("warm-up: 2 samples, filling the reference fingerprint cache if cold (wall / cpu)",
                 f"{ref_wall:.0f} s / {ref_cpu:.0f} s"))
    rows += [(f"  {m.name}", "skipped" if m.value is None else f"{m.value:.4f}")
             for m in result.metrics]
    return rows


def part_csp(jobs: int | None) -> list[tuple[str, str]]:
    seen, test = set(), []
    for split in ("biternary_test", "offline_test"):
        for c in load_dataset("mp20", split, progress=False):
            if c.properties["material_id"] not in seen:
                seen.add(c.properties["material_id"])
                test.append(c)
    preds = [c.with_properties(target_index=i, sample_index=0)
             for i, c in enumerate(perturbed(test, len(test), seed=1, noise=0.01, strain=0.02))]
    result, wall, cpu = timed("csp suite", lambda: evaluate_csp(
        preds, test, config=CSPConfig(k=1, n_jobs=jobs, progress=True)))
    v = result.values()
    per = wall / len(test)
    return [
        (f"CSP suite k=1, {len(test)} MP-20 test structures (perturbed copies as predictions): "
         "wall / cpu", f"{wall:.0f} s / {cpu:.0f} s"),
        ("  extrapolated to the 9,046-structure test split (wall, linear)", f"{per * 9046:.0f} s"),
        ("  match_rate@1 / rmse@1", f"{v['match_rate@1']:.4f} / {v['rmse@1']:.4f}"),
        *[(f"  stage {k} (wall)", f"{s:.1f} s") for k, s in result.info["timings_s"].items()],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["anchors", "dng", "csp"], required=True)
    parser.add_argument("--n", type=int, default=10_000, help="DNG samples")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: all)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--fingerprint-method", choices=["fast", "matminer"], default=None,
                        help="CrystalNN fingerprint path (default: the library default)")
    args = parser.parse_args()
    if args.fingerprint_method:  # read by xtalgen.metrics.fingerprints.default_method
        os.environ["XTALGEN_FINGERPRINT_METHOD"] = args.fingerprint_method
    rows = {"anchors": lambda: part_anchors(args.jobs), "dng": lambda: part_dng(args.n, args.jobs),
            "csp": lambda: part_csp(args.jobs)}[args.part]()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"\n{args.part} ({stamp}, 2-core CPU dev machine, no GPU, "
          f"fingerprints: {default_method()})\n")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({"part": args.part, "date": stamp, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
