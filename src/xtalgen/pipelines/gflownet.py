"""Train a GFlowNet in one chemical system: the function behind ``xtalgen gflownet train``
(and the enumerable toy's training).

:func:`train_gflownet` checks its input (system, reward, limits) before any work, builds the
:class:`~xtalgen.models.gflownet.model.GFlowNetConfig` and runs the one training loop
(:func:`xtalgen.train.train`, through the family's ``train_step``). The command line and
``benchmarks/bench_gflownet.py`` both call it, so a benchmark trains exactly what the command
trains. It lives here, above :mod:`xtalgen.models` and :mod:`xtalgen.train`, because it joins
the two. Training stops at ``steps``, at ``max_time`` seconds, or once the environment has passed
``max_reward_evaluations`` crystals to the reward (the benchmark's common currency; counted across
resumes), whichever comes first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xtalgen.errors import XtalgenError

__all__ = ["parse_spacegroups", "train_gflownet", "train_toy"]


def parse_spacegroups(spec: str) -> list[int]:
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


def train_gflownet(
    system: str,
    out: str | Path,
    *,
    reward: str = "formation-energy",
    steps: int = 2000,
    max_reward_evaluations: int = 0,
    beta: float | None = None,
    relax_steps: int = 50,
    max_atoms: int = 12,
    max_elements: int = 0,
    spacegroups: str = "",
    batch_size: int = 32,
    epsilon: float = 0.05,
    replay_fraction: float = 0.25,
    lr: float = 1e-3,
    min_lr_ratio: float = 0.05,
    hidden_dim: int = 128,
    num_layers: int = 3,
    max_time: float = 0.0,
    checkpoint_every: float = 300.0,
    seed: int = 0,
    device: str = "cpu",
    threads: int = 1,
    resume: bool = True,
    progress: bool = True,
    provenance: dict[str, Any] | None = None,
) -> Path:
    """Train a GFlowNet of ``system`` (e.g. ``"Li-Mn-O"``) into ``out``; returns ``out/last.pt``.

    The options are those of ``xtalgen gflownet train`` (see its help): ``reward`` a name of
    :data:`xtalgen.models.gflownet.rewards.REWARDS` or ``"package.module:Class"``, ``beta``
    its inverse temperature (None: the reward's default), ``max_elements`` 0 for all of the
    system, ``spacegroups`` as :func:`parse_spacegroups` reads it, ``max_time`` and
    ``max_reward_evaluations`` 0 for no limit, ``threads`` 0 for torch's default. The learning
    rate warms up over min(100, steps / 10) steps and follows a cosine to ``lr * min_lr_ratio``
    at ``steps``. With ``resume`` and an existing ``out/last.pt`` the run continues from it
    (its saved model config wins). Bad input is one :class:`XtalgenError`, before any training.
    """
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
    if max_reward_evaluations < 0:
        raise XtalgenError(f"--max-reward-evaluations must be >= 0, got {max_reward_evaluations}")
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
                           spacegroups=parse_spacegroups(spacegroups))
    model_config = GFlowNetConfig(
        env=env,
        transformer=TransformerConfig(d_model=hidden_dim, num_layers=num_layers,
                                      num_heads=hidden_dim // 32, dropout=0.0),
        reward=reward, reward_options=options, epsilon=epsilon, replay_fraction=replay_fraction,
        max_reward_evaluations=max_reward_evaluations, n_examples=max(batch_size, 1))
    config = TrainConfig(max_steps=steps, max_time_s=max_time or None, batch_size=batch_size,
                         lr=lr, warmup_steps=min(100, max(1, steps // 10)), min_lr_ratio=min_lr_ratio,
                         grad_clip=10.0, ema_decay=0.99, checkpoint_every_s=checkpoint_every,
                         seed=seed, device=device, num_threads=threads or None, log_every=10)
    record = {"system": system_name(elements), "reward": reward, "reward_options": options,
              "git_commit": git_commit(), **(provenance or {})}
    return train(model_config, TRAINING_PLACEHOLDER, None, config, out, provenance=record,
                 resume=resume, progress=progress)


def train_toy(out: str | Path, steps: int = 300, seed: int = 0, progress: bool = False) -> Path:
    """Train the enumerable toy GFlowNet (:mod:`xtalgen.models.gflownet.toy`) through the one
    training loop into ``out``; returns ``out/last.pt``. 300 steps reach a correlation > 0.9
    between sampled frequency and normalised reward (seconds on one CPU thread)."""
    from xtalgen.models.gflownet.model import TRAINING_PLACEHOLDER
    from xtalgen.models.gflownet.toy import toy_config
    from xtalgen.train import TrainConfig, train

    config = TrainConfig(max_steps=steps, batch_size=32, lr=5e-3, warmup_steps=20,
                         grad_clip=100.0, ema_decay=0.9, log_every=50, checkpoint_every_s=1e9,
                         seed=seed)
    return train(toy_config(), TRAINING_PLACEHOLDER, None, config, out,
                 provenance={"system": "Na-Cl", "toy": True}, progress=progress)
