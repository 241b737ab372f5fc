"""The VAE's own figures: reconstruction match rate and latent property optimisation (SR).

    .venv/bin/python benchmarks/bench_vae.py mp20-dng-vae --dataset mp20 --test pilot_test \
        --n-recon 1000 --n-opt 100 --opt-steps 5000 --out benchmarks/results/oneshot/vae-mp20.json
    .venv/bin/python benchmarks/bench_vae.py perov5-dng-vae --dataset perov5 --test test \
        --n-recon 1000 --skip opt --out benchmarks/results/oneshot/vae-perov5.json

De novo generation (the DNG suite, S.U.N., sampling cost) is the one benchmark protocol for
every generator, beside the flow and the Wyckoff transformer::

    xtalgen benchmark --task dng --dataset mp20 --n 1000 --stability --n-sun 200 \
        --property formation_energy --generators mp20-dng-vae,mp20-dng-gan,mp20-dng-flow,... \
        --out benchmarks/results/oneshot/dng-mp20

Two parts here (``--skip recon,opt`` leaves one out), both seeded:

* **recon** (CDVAE): the first ``--n-recon`` crystals of ``--test`` encoded (posterior mean),
  decoded, matched to their originals with the ``csp`` matcher preset
  (``StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3)``), validity gate on the prediction
  only (:func:`xtalgen.metrics.csp.evaluate_csp`, ``gate="pred"``, k = 1): match rate and RMSE.
* **opt** (CDVAE's property optimisation): ``--n-opt`` starting latents (encodings of the first
  test crystals, or ``--opt-start prior``), ``--opt-steps`` Adam steps (lr ``--opt-lr``) on z
  against the property head, ``--n-decoded`` decodings per trajectory; the decoded crystals
  are scored by an independent predictor (``--opt-predictor``, default the shipped predictor
  of the head's property, MP-20 formation energy: MAE 0.039 eV/atom), never by the head. A
  trajectory succeeds at SRp when its best score is at or below the p-th percentile of the
  training labels: for MP-20 formation energy CDVAE's -3.1756 / -2.8220 / -2.5281 eV/atom,
  else the percentiles of the VAE's training labels (stored in the checkpoint). Two baselines
  under the same predictor and thresholds: each trajectory's first decoding alone (no
  optimisation) and the same decoding budget spent on prior samples (best of ``--n-decoded``).
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

MP20_FORMATION_ENERGY = {"SR5": -3.1756, "SR10": -2.8220, "SR15": -2.5281}
"""CDVAE's MP-20 thresholds (eV/atom): the 5th, 10th and 15th percentiles of its training set."""


def reconstruction(generator, test, args) -> dict:
    from xtalgen.metrics.csp import CSPConfig, evaluate_csp

    targets = test[: args.n_recon]
    start = time.perf_counter()
    recon = generator.reconstruct(targets, seed=args.seed)
    decode_s = time.perf_counter() - start
    evaluation = evaluate_csp(recon, targets, config=CSPConfig(k=1, gate="pred", n_jobs=1,
                                                               progress=False))
    metrics = {m.name: m.value for m in evaluation.metrics}
    return {"n": len(targets), "decoded": len(recon), "decode_time_s": round(decode_s, 1),
            "match_rate": metrics.get("match_rate@1"), "rmse": metrics.get("rmse@1"),
            "matcher": "csp (stol 0.5, angle_tol 10, ltol 0.3), gate pred", "metrics": metrics}


def optimisation(generator, test, args) -> dict:
    from xtalgen.models.oneshot.vae import score_trajectories, success_rates
    from xtalgen.properties.trained import is_predictor_spec, load_predictor

    config = generator.config
    if not config.property_column:
        return {"skipped": "the checkpoint has no property head (no labels in its training set)"}
    spec = args.opt_predictor or config.property_name
    if not is_predictor_spec(spec):
        return {"skipped": f"no independent predictor of {config.property_name}; "
                           "pass --opt-predictor CHECKPOINT"}
    predictor = load_predictor(spec)
    starts = None if args.opt_start == "prior" else test[: args.n_opt]
    start = time.perf_counter()
    trajectories = generator.optimize(args.n_opt, steps=args.opt_steps, lr=args.opt_lr,
                                      seed=args.seed, starts=starts, n_decoded=args.n_decoded)
    opt_s = time.perf_counter() - start
    scores = score_trajectories(trajectories, predictor)
    if args.dataset.lower().replace("-", "").replace("_", "") == "mp20" and \
            config.property_name == "formation_energy":
        thresholds, source = MP20_FORMATION_ENERGY, "CDVAE MP-20 percentiles"
    else:
        thresholds = {f"SR{p}": config.percentile(p) for p in (5, 10, 15)}
        source = "percentiles of the VAE's training labels"
    head = np.array([t.predicted for t in trajectories])
    scored = np.array(scores, dtype=float)
    # Baselines with the same predictor and thresholds: the first decoding of each trajectory
    # alone (no optimisation), and the trajectories' decoding budget spent on prior samples
    # (random search in z: n_decoded draws per trajectory, the best one counted).
    prior = generator.generate(args.n_opt * args.n_decoded, seed=args.seed + 1)
    prior_scores = np.full(args.n_opt * args.n_decoded, np.nan)  # NaN: a dropped decoding
    prior_scores[[c.properties["index"] for c in prior]] = np.asarray(predictor(prior), float)
    prior_scores = prior_scores.reshape(args.n_opt, args.n_decoded)
    baselines = {"start_only": success_rates(scored[:, :1].tolist(), thresholds),
                 "prior_best_of_n_decoded": success_rates(prior_scores.tolist(), thresholds)}
    return {"n": len(trajectories), "steps": args.opt_steps, "lr": args.opt_lr,
            "start": args.opt_start, "n_decoded": args.n_decoded, "time_s": round(opt_s, 1),
            "predictor": predictor.name, "thresholds": thresholds, "threshold_source": source,
            **success_rates(scores, thresholds),
            "head_mean_first_last": [float(head[:, 0].mean()), float(head[:, -1].mean())],
            "predictor_mean_first_last": [float(np.nanmean(scored[:, 0])),
                                          float(np.nanmean(scored[:, -1]))],
            "decoded_fraction": float(np.isfinite(scored).mean()), "baselines": baselines}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--dataset", default="mp20")
    parser.add_argument("--test", default="pilot_test")
    parser.add_argument("--n-recon", type=int, default=1000)
    parser.add_argument("--n-opt", type=int, default=100)
    parser.add_argument("--opt-steps", type=int, default=5000)
    parser.add_argument("--opt-lr", type=float, default=1e-3)
    parser.add_argument("--opt-start", choices=("data", "prior"), default="data")
    parser.add_argument("--opt-predictor", default="")
    parser.add_argument("--n-decoded", type=int, default=10)
    parser.add_argument("--steps", type=int, default=None, help="decoder flow steps")
    parser.add_argument("--skip", default="", help="comma-separated: recon, opt")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from xtalgen.data import load_dataset
    from xtalgen.models import load_model

    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    from xtalgen.checkpoints import shipped_checkpoints

    path = shipped_checkpoints().get(args.checkpoint, Path(args.checkpoint))
    generator = load_model(path, n_steps=args.steps, batch_size=250)
    test = list(load_dataset(args.dataset, args.test))
    result: dict = {"checkpoint": args.checkpoint, "dataset": args.dataset, "test": args.test,
                    "decoder_steps": args.steps or generator.config.decoder.flow.n_steps,
                    "seed": args.seed, "threads": args.threads}
    if "recon" not in skip:
        result["reconstruction"] = reconstruction(generator, test, args)
    if "opt" not in skip:
        result["optimisation"] = optimisation(generator, test, args)
    result.update(machine="2-core CPU dev machine, no GPU (shared)",
                  date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    print(json.dumps(result, indent=1, default=str))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
