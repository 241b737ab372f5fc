"""``xtalgen gflownet train``: a GFlowNet over the Wyckoff grammar in one chemical system.

Thin over the public API: a :class:`~xtalgen.models.gflownet.model.GFlowNetConfig` trained by
the one training loop (:func:`xtalgen.train.train`, through the family's ``train_step``).
Sample the result with ``xtalgen sample OUT/last.pt --n 1000``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xtalgen.errors import XtalgenError

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
    reward: Annotated[str, typer.Option("--reward", help="formation-energy (CHGNet single point against the hull's elemental references), e-hull (CHGNet E_hull after a short relaxation), toy (analytic, instant) or package.module:Class.")] = "formation-energy",
    steps: Annotated[int, typer.Option("--steps", help="Training steps (one batch of trajectories each).")] = 2000,
    beta: Annotated[float | None, typer.Option("--beta", help="Reward exp(-beta E), per eV/atom (default: the reward's: formation-energy 5, e-hull 10, toy 3).")] = None,
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
    import torch

    from xtalgen.models.checkpoint import git_commit
    from xtalgen.models.gflownet.env import CrystalEnvConfig, chemical_system, system_name
    from xtalgen.models.gflownet.model import TRAINING_PLACEHOLDER, GFlowNetConfig
    from xtalgen.models.gflownet.rewards import make_reward
    from xtalgen.nn.transformer import TransformerConfig
    from xtalgen.train import TrainConfig, train

    elements = chemical_system(system)
    for name, value in (("--steps", steps), ("--batch-size", batch_size), ("--max-atoms", max_atoms)):
        if value < 1:
            raise XtalgenError(f"{name} must be at least 1, got {value}")
    if not 0 <= epsilon <= 1 or not 0 <= replay_fraction < 1:
        raise XtalgenError("--epsilon must be in [0, 1] and --replay-fraction in [0, 1)")
    if hidden_dim % 32:
        raise XtalgenError(f"--hidden-dim must be a multiple of 32, got {hidden_dim}")
    if threads > 0:
        torch.set_num_threads(threads)
    options: dict[str, float | int] = {} if beta is None else {"beta": beta}
    if reward == "e-hull":
        options["relax_steps"] = relax_steps
    scorer = make_reward(reward, **options)  # fails here, before training, on bad input
    check = getattr(scorer, "check_system", None)
    if check is not None:
        check(elements)
    env = CrystalEnvConfig(elements=elements, max_atoms=max_atoms,
                           max_elements=max_elements or len(elements),
                           spacegroups=_spacegroups(spacegroups))
    model_config = GFlowNetConfig(
        env=env,
        transformer=TransformerConfig(d_model=hidden_dim, num_layers=num_layers,
                                      num_heads=hidden_dim // 32, dropout=0.0),
        reward=reward, reward_options=options, epsilon=epsilon, replay_fraction=replay_fraction,
        n_examples=max(batch_size, 1))
    config = TrainConfig(max_steps=steps, max_time_s=max_time or None, batch_size=batch_size,
                         lr=lr, warmup_steps=min(100, max(1, steps // 10)), grad_clip=10.0,
                         ema_decay=0.99, checkpoint_every_s=checkpoint_every, seed=seed,
                         device=device, num_threads=threads or None, log_every=10)
    provenance = {"system": system_name(elements), "reward": reward, "reward_options": options,
                  "git_commit": git_commit()}
    path = train(model_config, TRAINING_PLACEHOLDER, None, config, out, provenance=provenance,
                 resume=resume)
    typer.echo(f"checkpoint: {path}")


def _spacegroups(spec: str) -> list[int]:
    """Space groups of ``"12,62,225"`` / ``"195-230"`` / ``""`` (all: an empty list)."""
    groups: set[int] = set()
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        try:
            low, _, high = part.partition("-")
            groups.update(range(int(low), int(high or low) + 1))
        except ValueError:
            raise XtalgenError(f"--spacegroups: cannot read {part!r} (e.g. 12,62,225 or 195-230)") from None
    if any(not 1 <= g <= 230 for g in groups):
        raise XtalgenError(f"--spacegroups must lie in 1-230, got {spec!r}")
    return [] if len(groups) == 230 else sorted(groups)
