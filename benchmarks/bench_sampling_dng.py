"""De novo generation (DNG) from a trained checkpoint, scored with the DNG suite.

    .venv/bin/python benchmarks/bench_sampling_dng.py CHECKPOINT --dataset mp20 --n 500 \
        --steps 100 --seed 0 --out runs/eval/dng.json

Samples ``--n`` crystals (atom counts from the training distribution), then
:func:`xtalgen.metrics.dng.evaluate_dng` against ``--test`` (novelty against ``--train``):
validity, coverage (COV-R / COV-P), Wasserstein distances (density, number of elements),
uniqueness and novelty. S.U.N. needs relaxation and a hull and is not computed here.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--dataset", default="mp20")
    parser.add_argument("--test", default="offline_test")
    parser.add_argument("--train", default="offline_train")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--eval-model", default="mp20")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from xtalgen.data import load_dataset
    from xtalgen.metrics.dng import DNGConfig, evaluate_dng
    from xtalgen.models import load_model

    generator = load_model(args.checkpoint, n_steps=args.steps, batch_size=250, progress=True)
    start = time.perf_counter()
    samples = generator.generate(args.n, seed=args.seed)
    sample_time = time.perf_counter() - start
    test = list(load_dataset(args.dataset, args.test))
    train = list(load_dataset(args.dataset, args.train))
    evaluation = evaluate_dng(samples, test, train=train,
                              config=DNGConfig(eval_model=args.eval_model, n_jobs=1,
                                               n_subsample=min(1000, args.n)))
    result = {
        "checkpoint": args.checkpoint, "dataset": args.dataset, "test": args.test,
        "n_requested": args.n, "n_returned": len(samples), "steps": args.steps or "default",
        "seed": args.seed, "sampling_time_s": round(sample_time, 1),
        "metrics": {m.name: m.value for m in evaluation.metrics},
        "machine": "2-core CPU dev machine, no GPU (shared)",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
