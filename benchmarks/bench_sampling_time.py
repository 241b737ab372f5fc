"""Wall time to sample CSP structures for the compositions of a test split.

    .venv/bin/python benchmarks/bench_sampling_time.py --process diffusion --steps 1000 \
        --dataset mp20 --split offline_test --n 1000 [--checkpoint PATH]

Sampling cost does not depend on the weights, so without ``--checkpoint`` an untrained model of
the given size is timed (its lattice scale fitted on the targets). Prints one JSON record.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--process", default="diffusion", choices=["diffusion", "flow"])
    parser.add_argument("--hidden-dim", type=int, default=128)
    parser.add_argument("--num-layers", type=int, default=4)
    parser.add_argument("--dataset", default="mp20")
    parser.add_argument("--split", default="offline_test")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from xtalgen.data import load_dataset
    from xtalgen.models import load_model
    from xtalgen.models.iterative.generative import CrystalGenerativeModel, ModelConfig
    from xtalgen.models.iterative.generator import IterativeGenerator
    from xtalgen.nn.backbone import BackboneConfig

    targets = list(load_dataset(args.dataset, args.split))[: args.n]
    if args.checkpoint:
        generator = load_model(args.checkpoint, n_steps=args.steps, batch_size=args.batch_size,
                               progress=True)
    else:
        config = ModelConfig(process=args.process, task="csp",
                             backbone=BackboneConfig(hidden_dim=args.hidden_dim,
                                                     num_layers=args.num_layers))
        model = CrystalGenerativeModel(config.fit_statistics(targets))
        generator = IterativeGenerator(model, n_steps=args.steps, batch_size=args.batch_size,
                                     progress=True)
    n_params = sum(p.numel() for p in generator.model.parameters())
    start = time.perf_counter()
    with torch.no_grad():
        samples = generator.sample_csp(targets, k=1, seed=0)
    elapsed = time.perf_counter() - start
    print(json.dumps({
        "process": generator.model.config.process, "steps": args.steps, "n": len(targets),
        "returned": len(samples), "atoms": sum(t.num_sites for t in targets),
        "parameters": n_params, "threads": args.threads, "seconds": round(elapsed, 1),
        "checkpoint": args.checkpoint, "dataset": f"{args.dataset}/{args.split}",
        "machine": "2-core CPU dev machine, no GPU (shared)",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }, indent=1))


if __name__ == "__main__":
    main()
