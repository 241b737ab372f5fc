"""``xtalgen optimize``: latent property optimisation with a VAE checkpoint (CDVAE's protocol).

Gradient descent on z through the VAE's property head, decoding along each trajectory
(:meth:`xtalgen.models.oneshot.vae.VAEGenerator.optimize`). Writes
``OUT/trajectory_NNN.extxyz`` (the decoded crystals of each trajectory, in step order) and
``OUT/trajectories.csv`` (trajectory, step, start, head prediction, formula, sites and, with
``--score``, the independent predictor's value), and prints the success rates SR5/SR10/SR15
(thresholds: percentiles of the VAE's training labels) when scored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("optimize")(optimize)


def optimize(
    generator: Annotated[str, typer.Argument(help="VAE checkpoint file or shipped name (mp20-dng-vae).")],
    prop: Annotated[str, typer.Option("--property", help="Property of the VAE's head (formation_energy; a check).")] = "",
    n: Annotated[int, typer.Option("--n", help="Number of starting latents (trajectories).")] = 100,
    steps: Annotated[int, typer.Option("--steps", help="Adam steps on z (CDVAE: 5000).")] = 5000,
    lr: Annotated[float, typer.Option("--lr", help="Adam learning rate on z (CDVAE: 1e-3).")] = 1e-3,
    n_decoded: Annotated[int, typer.Option("--n-decoded", help="Decoded points per trajectory, first and last step included.")] = 10,
    start: Annotated[str, typer.Option("--start", help="prior (z ~ N(0, I)) or DATASET[:SPLIT] whose first --n crystals are encoded (CDVAE starts from test crystals).")] = "prior",
    maximize: Annotated[bool, typer.Option("--maximize/--minimize", help="Direction of the optimisation.")] = False,
    score: Annotated[bool, typer.Option("--score/--no-score", help="Score the decoded crystals with the shipped predictor of the property (independent of the head).")] = True,
    decoder_steps: Annotated[int | None, typer.Option("--decoder-steps", help="Flow steps of each decoding (default: the checkpoint's).")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    threads: Annotated[int, typer.Option("--threads", help="torch CPU threads (0: torch default).")] = 1,
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("optimized"),
) -> None:
    """Optimise latents for a low (or high) property and decode along the way."""
    import csv

    import torch

    from xtalgen import io as xio
    from xtalgen.errors import XtalgenError
    from xtalgen.models.oneshot.vae import VAEGenerator, score_trajectories, success_rates
    from xtalgen.models.registry import GENERATORS, load_generator

    if threads > 0:
        torch.set_num_threads(threads)
    if generator in GENERATORS:
        raise XtalgenError(f"{generator} is a search method; latent optimisation needs a VAE checkpoint")
    gen = load_generator(generator, n_steps=decoder_steps)
    if not isinstance(gen, VAEGenerator):
        raise XtalgenError(f"{generator} is not a VAE checkpoint; latent optimisation needs one")
    starts = None
    if start != "prior":
        from xtalgen.data import load_dataset

        name, _, split = start.partition(":")
        starts = list(load_dataset(name, split or "test"))[:n]
    trajectories = gen.optimize(n, prop=prop or None, steps=steps, lr=lr, seed=seed,
                                starts=starts, n_decoded=n_decoded, maximize=maximize)
    cfg = gen.config
    scores = None
    if score:
        from xtalgen.properties.trained import is_predictor_spec, load_predictor

        if not is_predictor_spec(cfg.property_name):
            typer.echo(f"note: no shipped predictor of {cfg.property_name}; not scored", err=True)
        else:
            scores = score_trajectories(trajectories, load_predictor(cfg.property_name))
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, traj in enumerate(trajectories):
        decoded = [c for c in traj.crystals if c is not None]
        if decoded:
            xio.write(decoded, out / f"trajectory_{traj.index:03d}.extxyz")
        for j, (step, value, crystal) in enumerate(zip(traj.steps, traj.predicted, traj.crystals)):
            rows.append({"trajectory": traj.index, "step": step, "start": traj.start or "prior",
                         f"head_{cfg.property_name}": value,
                         "formula": crystal.formula if crystal else "",
                         "num_sites": crystal.num_sites if crystal else 0,
                         **({f"predicted_{cfg.property_name}": scores[i][j]} if scores else {})})
    with (out / "trajectories.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    first = sum(t.predicted[0] for t in trajectories) / len(trajectories)
    last = sum(t.predicted[-1] for t in trajectories) / len(trajectories)
    typer.echo(f"{len(trajectories)} trajectories, {steps} steps: mean head {cfg.property_name} "
               f"{first:.4g} -> {last:.4g} {cfg.property_units}")
    if scores:
        q = (95, 90, 85) if maximize else (5, 10, 15)
        thresholds = {f"SR{min(p, 100 - p)}": cfg.percentile(p) for p in q}
        rates = success_rates(scores, thresholds, maximize=maximize)
        typer.echo("success (independent predictor; thresholds: training percentiles "
                   + ", ".join(f"{v:.4g}" for v in thresholds.values()) + "): "
                   + ", ".join(f"{k} {v:.1%}" for k, v in rates.items()))
    typer.echo(f"-> {out / 'trajectories.csv'}, {out}/trajectory_*.extxyz")
