"""The enumerable toy: a GFlowNet environment small enough to list every terminal state, where
the sampled distribution can be compared with the exact normalised reward.

Na-Cl, at most 2 atoms, groups P4mm (99) and Pm-3m (221), coordinates on a 1/2 grid, lattice
lengths 3.0 or 3.5 angstrom and the analytic :class:`~xtalgen.models.gflownet.rewards.ToyReward`
(beta 3): every kind of action, 192 complete sequences. The test suite
(``tests/test_models_gflownet.py``) and ``benchmarks/bench_gflownet.py`` both build it from here
and train it with :func:`xtalgen.pipelines.gflownet.train_toy` (the one training loop, which
sits above this package).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np

from xtalgen.models.gflownet.env import CrystalEnvConfig
from xtalgen.representations.tokens import TokenizerConfig

if TYPE_CHECKING:
    from xtalgen.models.gflownet.model import GFlowNet, GFlowNetConfig

__all__ = ["TOY_BETA", "sampled_vs_reward", "toy_config", "toy_env_config"]

TOY_BETA = 3.0
"""Inverse temperature of the toy's reward."""


def toy_env_config(**changes: Any) -> CrystalEnvConfig:
    """The toy's action space (see the module); ``changes`` override its fields."""
    settings: dict[str, Any] = dict(
        elements=[11, 17], max_atoms=2, max_elements=2, spacegroups=[99, 221],
        tokenizer=TokenizerConfig(coord_bins=2, length_step=0.5, max_length=4.0,
                                  angle_step=30.0, max_count=2),
        length_range=[3.0, 3.5], min_log_reward=-10.0)
    return CrystalEnvConfig(**{**settings, **changes})


def toy_config(d_model: int = 32) -> GFlowNetConfig:
    """A GFlowNet of the toy: one small transformer layer, the toy reward at :data:`TOY_BETA`."""
    from xtalgen.models.gflownet.model import GFlowNetConfig
    from xtalgen.nn.transformer import TransformerConfig

    return GFlowNetConfig(env=toy_env_config(),
                          transformer=TransformerConfig(d_model=d_model, num_layers=1,
                                                        num_heads=2, dropout=0.0),
                          reward="toy", reward_options={"beta": TOY_BETA}, epsilon=0.05,
                          n_examples=32)


def sampled_vs_reward(model: GFlowNet, n: int = 4000, seed: int = 1) -> dict[str, Any]:
    """Sample ``n`` trajectories from ``model`` (a GFlowNet of an enumerable environment, at
    temperature 1) and compare each terminal's sampled frequency with its normalised reward
    R(x) / sum R.

    Returns ``terminals`` (token ids), ``frequency`` and ``target`` (arrays over them),
    ``correlation`` (Pearson, frequency vs target), ``outside`` (samples that are not a terminal
    of the enumeration: 0 for a correct environment), ``log_z`` (learned) and ``log_total``
    (log sum R, exact), and ``n_samples``.
    """
    import torch

    env = model.env
    terminals = env.terminals(limit=100_000)
    crystals = [env.decode(ids)[0] for ids in terminals]
    log_r = np.full(len(terminals), env.config.min_log_reward, dtype=np.float64)
    valid = [i for i, c in enumerate(crystals) if c is not None]
    if valid:
        values = np.asarray(model.reward([crystals[i] for i in valid]), dtype=np.float64)
        log_r[valid] = np.maximum(values, env.config.min_log_reward)
    target = np.exp(log_r - log_r.max())
    target /= target.sum()
    with torch.no_grad():
        samples = model.sample(n, generator=torch.Generator().manual_seed(seed))
    counts = Counter(tuple(t.ids) for t in samples)
    frequency = np.array([counts.get(ids, 0) for ids in terminals], dtype=np.float64) / n
    return {
        "terminals": terminals,
        "frequency": frequency,
        "target": target,
        "correlation": float(np.corrcoef(frequency, target)[0, 1]),
        "outside": int(n - sum(counts.get(ids, 0) for ids in terminals)),
        "log_z": float(model.log_z.detach()),
        "log_total": float(log_r.max() + np.log(np.exp(log_r - log_r.max()).sum())),
        "n_samples": n,
    }
