"""The GAN (de novo generation): the DNG suite on 1,000 samples, S.U.N. on a seeded 200, cost.

    .venv/bin/python benchmarks/bench_gan.py perov5-dng-gan --dataset perov5 --sun-n 0 \
        --out runs/eval/gan-perov5.json
    .venv/bin/python benchmarks/bench_gan.py mp20-dng-gan --dataset mp20 --sun-n 200 \
        --out runs/eval/gan-mp20.json

Samples ``--n`` crystals (``seed``; atom counts from the training distribution; batches of 250)
on one CPU thread and times it (seconds per 1,000 crystals, sampling only), then
:func:`xtalgen.metrics.dng.evaluate_dng` against the test split (Perov-5: ``test``; MP-20:
``offline_test``) with novelty against the training split the model was trained on (Perov-5:
``train``; MP-20: ``offline_train``): validity (structural, compositional), COV-R / COV-P
(coverage cutoffs ``perovskite`` or ``mp20``), Wasserstein distances of density, number of
elements and formation energy (the shipped ``formation_energy`` predictor, on the same seeded
subsample of valid samples and on the test split), uniqueness and novelty. With ``--sun-n N``,
the first N of ``numpy.random.default_rng(seed).permutation`` of the samples (indices in the
JSON) are screened by :func:`xtalgen.screen.screen` (CHGNet relaxation, E_hull on the bundled
hull, uniqueness, novelty against the training split): S.U.N. at E_hull <= 0.1 eV/atom
(MatterGen) and <= 0 (strict). Anchors to print beside the result: no GAN reports a standard
benchmark number; FTCP (a VAE) has struct 1.55% / comp 48.37% valid and COV-R / COV-P 4.72 /
0.09 (%) on MP-20.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

SPLITS = {"perov5": ("test", "train", "perovskite"), "mp20": ("offline_test", "offline_train", "mp20")}
"""Dataset -> (test split, training split for novelty, coverage cutoffs)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", help="checkpoint file or shipped name (perov5-dng-gan, mp20-dng-gan)")
    p.add_argument("--dataset", choices=sorted(SPLITS), default="mp20")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sun-n", type=int, default=200, help="seeded subset screened for S.U.N. (0: none)")
    p.add_argument("--relax-steps", type=int, default=300, help="FIRE steps of the S.U.N. relaxation")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", default=None, help="JSON file of the result")
    return p.parse_args(argv)


def sample(args: argparse.Namespace) -> tuple[list, dict[str, Any]]:
    from xtalgen.models.registry import load_generator

    generator = load_generator(args.checkpoint, batch_size=250, progress=not args.no_progress)
    start = time.perf_counter()
    samples = generator.generate(args.n, seed=args.seed)
    seconds = time.perf_counter() - start
    return samples, {"sampling_s": round(seconds, 2),
                     "sampling_s_per_1000": round(seconds * 1000 / args.n, 2),
                     "last_report": getattr(generator, "last_report", None),
                     "training": training_cost(generator.checkpoint)}


def training_cost(path: str | None) -> dict[str, Any]:
    """Steps, wall time and command facts recorded in the checkpoint."""
    from xtalgen.models.checkpoint import read_checkpoint

    if not path:
        return {}
    payload = read_checkpoint(path)
    train = payload.get("train_config", {})
    return {"step": payload.get("step"), "wall_time_s": payload.get("wall_time_s"),
            "batch_size": train.get("batch_size"), "lr": train.get("lr"),
            "split": payload.get("provenance", {}).get("split"),
            "n_params": sum(v.numel() for v in payload["ema_state_dict"].values())}


def dng(samples: list, args: argparse.Namespace) -> dict[str, Any]:
    from xtalgen.data import load_dataset
    from xtalgen.metrics.dng import DNGConfig, evaluate_dng
    from xtalgen.properties import property_fn_info
    from xtalgen.properties.predictor import load_predictor

    test_split, train_split, cutoffs = SPLITS[args.dataset]
    test = list(load_dataset(args.dataset, test_split))
    train = list(load_dataset(args.dataset, train_split))
    predictor = load_predictor("formation_energy")
    config = DNGConfig(eval_model=cutoffs, n_jobs=1, n_subsample=min(1000, len(samples)),
                       seed=args.seed, progress=not args.no_progress)
    start = time.perf_counter()
    evaluation = evaluate_dng(samples, test, train=train, property_fn=predictor,
                              property_name="formation_energy (eV/atom)",
                              property_settings=property_fn_info(predictor), config=config)
    return {"test": f"{args.dataset} {test_split}", "train": f"{args.dataset} {train_split}",
            "n_test": len(test), "metrics": evaluation.values(),
            "eval_s": round(time.perf_counter() - start, 1)}


def sun(samples: list, args: argparse.Namespace) -> dict[str, Any]:
    from xtalgen.crystal import Crystal
    from xtalgen.screen import ScreenConfig, screen

    pick = np.random.default_rng(args.seed).permutation(len(samples))[: args.sun_n].tolist()
    subset = [Crystal(samples[i].lattice, samples[i].frac_coords, samples[i].species) for i in pick]
    _, train_split, _ = SPLITS[args.dataset]
    config = ScreenConfig(potential_kw={"threads": args.threads}, max_steps=args.relax_steps,
                          novelty_reference=f"{args.dataset}:{train_split}", n_workers=1,
                          progress=not args.no_progress)
    store = Path(args.out or "runs/eval/gan.json").with_suffix("") / f"sun-{len(pick)}-seed{args.seed}.db"
    store.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    summary = screen(subset, store, config)
    mattergen, strict = summary.metrics.get("mattergen", {}), summary.metrics.get("strict", {})
    return {"n_screened": len(pick), "indices": pick, "store": str(store),
            "stages": summary.stages, "frac_sun": mattergen.get("frac_sun"),
            "n_sun": mattergen.get("n_sun"), "frac_stable": mattergen.get("frac_stable"),
            "frac_sun_strict": strict.get("frac_sun"), "settings": config.settings(),
            "wall_s": round(time.perf_counter() - start, 1)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    samples, cost = sample(args)
    result: dict[str, Any] = {
        "checkpoint": args.checkpoint, "dataset": args.dataset, "n_requested": args.n,
        "n_returned": len(samples), "seed": args.seed, "cost": cost, "dng": dng(samples, args),
        "anchors": "no GAN reports a standard benchmark number; FTCP (VAE, MP-20): struct "
                   "1.55% / comp 48.37% valid, COV-R / COV-P 4.72 / 0.09 %",
        "machine": f"2-core CPU dev machine, {args.threads} torch thread(s), no GPU (shared)",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    if args.sun_n:
        result["sun"] = sun(samples, args)
    text = json.dumps(result, indent=1, default=str)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    return result


if __name__ == "__main__":
    main()
