"""``xtalgen gflownet train``: a GFlowNet over the Wyckoff grammar in one chemical system.

Thin over the public API: :func:`xtalgen.pipelines.gflownet.train_gflownet` (a
:class:`~xtalgen.models.gflownet.model.GFlowNetConfig` trained by the one training loop,
:func:`xtalgen.train.train`, through the family's ``train_step``).
Sample the result with ``xtalgen sample OUT/last.pt --n 1000``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

gflownet_app = typer.Typer(
    help="GFlowNet: complete crystals of a chemical system sampled in proportion to a reward.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(gflownet_app, name="gflownet")


@gflownet_app.command("train")
def train_command(
    system: Annotated[str, typer.Option("--system", help="Chemical system, e.g. Li-Mn-O (compositions use these elements and their subsets).")],
    out: Annotated[Path, typer.Option("--out", help="Run folder (checkpoints, log.jsonl).")],
    reward: Annotated[str, typer.Option("--reward", help="formation-energy (the trained predictor mp20-formation-energy, eV/atom), chgnet-formation-energy (CHGNet single point against the hull's elemental references), e-hull (CHGNet E_hull after a short relaxation), toy (analytic, instant) or package.module:Class.")] = "formation-energy",
    steps: Annotated[int, typer.Option("--steps", help="Training steps (one batch of trajectories each).")] = 2000,
    max_reward_evaluations: Annotated[int, typer.Option("--max-reward-evaluations", help="Stop once this many crystals were passed to the reward (0: no limit; counted across resumes).")] = 0,
    beta: Annotated[float | None, typer.Option("--beta", help="Reward exp(-beta E), per eV/atom (default: the reward's: formation-energy 5, chgnet-formation-energy 5, e-hull 10, toy 3).")] = None,
    relax_steps: Annotated[int, typer.Option("--relax-steps", help="e-hull: FIRE steps of the short relaxation.")] = 50,
    max_atoms: Annotated[int, typer.Option("--max-atoms", help="Most atoms in the primitive cell.")] = 12,
    max_elements: Annotated[int, typer.Option("--max-elements", help="Most elements in a composition (0: all of the system).")] = 0,
    spacegroups: Annotated[str, typer.Option("--spacegroups", help="Allowed space groups, e.g. 1-230 or 12,62,225 ('' or 1-230: all).")] = "",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Trajectories per step.")] = 32,
    epsilon: Annotated[float, typer.Option("--epsilon", help="Exploration: probability of a uniform legal action.")] = 0.05,
    replay_fraction: Annotated[float, typer.Option("--replay-fraction", help="Share of each batch replayed from the best terminals.")] = 0.25,
    lr: Annotated[float, typer.Option("--lr", help="Peak AdamW learning rate (log Z learns 10x faster).")] = 1e-3,
    hidden_dim: Annotated[int, typer.Option("--hidden-dim", help="Transformer d_model (heads of 32).")] = 128,
    num_layers: Annotated[int, typer.Option("--num-layers")] = 3,
    max_time: Annotated[float, typer.Option("--max-time", help="Stop after this many seconds (0: no limit).")] = 0.0,
    checkpoint_every: Annotated[float, typer.Option("--checkpoint-every", help="Seconds between checkpoints.")] = 300.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    device: Annotated[str, typer.Option("--device")] = "cpu",
    threads: Annotated[int, typer.Option("--threads", help="torch CPU threads, CHGNet included (0: torch default).")] = 1,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Continue from OUT/last.pt.")] = True,
) -> None:
    """Train a GFlowNet; interrupt at any time and rerun the same command to resume."""
    from xtalgen.pipelines.gflownet import train_gflownet

    path = train_gflownet(
        system, out, reward=reward, steps=steps, max_reward_evaluations=max_reward_evaluations,
        beta=beta, relax_steps=relax_steps, max_atoms=max_atoms, max_elements=max_elements,
        spacegroups=spacegroups, batch_size=batch_size, epsilon=epsilon,
        replay_fraction=replay_fraction, lr=lr, hidden_dim=hidden_dim, num_layers=num_layers,
        max_time=max_time, checkpoint_every=checkpoint_every, seed=seed, device=device,
        threads=threads, resume=resume)
    typer.echo(f"checkpoint: {path}")
