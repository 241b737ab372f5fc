"""How the sampling temperature of the Wyckoff transformer trades validity against coverage.

    .venv/bin/python benchmarks/bench_wyckoff_temperature.py --n 500 --temperatures 1.0 0.8 0.6

For each temperature: ``--n`` DNG samples (seed 0) of ``--generator`` scored with the DNG suite
against MP-20 ``pilot_test`` (novelty against ``offline_train``), and the rejected draws of the
generator's checks (overlapping atoms), so the raw structural validity is visible.
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", default="mp20-dng-wyckoff")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperatures", type=float, nargs="+", default=[1.0, 0.8, 0.6])
    args = parser.parse_args()
    torch.set_num_threads(1)

    from xtalgen.data import load_dataset
    from xtalgen.metrics.dng import DNGConfig, evaluate_dng
    from xtalgen.models import load_generator

    test = list(load_dataset("mp20", "pilot_test", progress=False))
    train = list(load_dataset("mp20", "offline_train", progress=False))
    keys = ("struct_valid", "comp_valid", "cov_recall", "cov_precision", "wdist_density",
            "wdist_num_elems", "unique", "novel")
    print("| temperature | returned | rejected draws | " + " | ".join(keys) + " | sampling s |")
    print("|---" * (len(keys) + 4) + "|")
    for temperature in args.temperatures:
        generator = load_generator(args.generator)
        generator.temperature = temperature
        start = time.perf_counter()
        samples = generator.generate(args.n, seed=args.seed)
        seconds = time.perf_counter() - start
        evaluation = evaluate_dng(samples, test, train=train, config=DNGConfig(
            eval_model="mp20", n_jobs=1, n_subsample=args.n))
        values = {m.name: m.value for m in evaluation.metrics}
        rejected = json.dumps(generator.last_report["failed_attempts"])
        cells = " | ".join(f"{values[k]:.3f}" for k in keys)
        print(f"| {temperature:g} | {len(samples)} | {rejected} | {cells} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
