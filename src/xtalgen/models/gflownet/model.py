"""The GFlowNet family: complete crystals sampled in proportion to a reward, trained by
trajectory balance through the one training loop's ``train_step`` hook.

``GFlowNet`` holds the forward policy (the shared transformer core over Wyckoff-grammar
tokens, :mod:`.policy`), the learned log Z, the environment of one chemical system
(:mod:`.env`) and a replay buffer of the best terminals. Its training step:

1. samples a batch of on-policy trajectories, each action drawn from P_F or, with probability
   ``epsilon``, uniformly among the legal ones (exploration);
2. scores their terminals (``reward``, cached by sequence; invalid terminals get the floor);
3. adds the valid ones to the replay buffer (the ``replay_size`` best distinct terminals) and
   mixes ``replay_fraction`` of the batch from it: a terminal's trajectory is its own token
   sequence (the state space is a tree), re-scored under the current policy;
4. minimises the trajectory-balance loss (:mod:`.losses`; P_B = 1 on a tree) with one
   optimiser step.

With ``max_reward_evaluations`` set, :meth:`GFlowNet.training_done` stops the loop once that
many crystals have been passed to the reward (the ``reward_evaluations`` buffer, saved in
checkpoints, so resumed runs count on).

A GFlowNet learns from its reward, not from data. The training loop still draws dataset
indices, so :meth:`GFlowNet.prepare` returns ``n_examples`` placeholder examples whatever the
crystals, and :meth:`GFlowNet.collate` turns a draw into its size: ``TrainConfig.batch_size``
is the number of trajectories per step. Pass any non-empty crystal list, e.g.
:data:`TRAINING_PLACEHOLDER`, as the training set, and no validation set.

``GFlowNetGenerator.generate(n)`` samples from the trained policy (no exploration). Invalid
terminals (overlapping atoms, degenerate cells) are counted in ``last_report`` and drawn again,
never silently dropped.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.models.gflownet.env import CrystalEnv, CrystalEnvConfig, system_name
from xtalgen.models.gflownet.losses import trajectory_balance
from xtalgen.models.gflownet.policy import ForwardPolicy, Trajectory
from xtalgen.models.gflownet.rewards import Reward, make_reward
from xtalgen.models.learned import LearnedGenerator
from xtalgen.nn.transformer import TransformerConfig
from xtalgen.representations import wyckoff_grammar as G

__all__ = ["TRAINING_PLACEHOLDER", "GFlowNet", "GFlowNetConfig", "GFlowNetGenerator", "ReplayBuffer"]

TRAINING_PLACEHOLDER: list[Crystal] = [Crystal(np.eye(3) * 3.0, [[0.0, 0.0, 0.0]], [1])]
"""A one-crystal training set for :func:`xtalgen.train.train`, which needs a non-empty one; the
GFlowNet ignores it."""


def _default_transformer() -> TransformerConfig:
    return TransformerConfig(d_model=128, num_layers=3, num_heads=4, dropout=0.0)


@dataclass
class GFlowNetConfig:
    """Everything needed to rebuild a GFlowNet; saved inside every checkpoint."""

    family: ClassVar[str] = "gflownet"
    env: CrystalEnvConfig = field(default_factory=CrystalEnvConfig)
    transformer: TransformerConfig = field(default_factory=_default_transformer)
    reward: str = "formation-energy"
    """A key of :data:`xtalgen.models.gflownet.rewards.REWARDS` or ``"package.module:Class"``."""
    reward_options: dict[str, Any] = field(default_factory=dict)
    """Keyword options of the reward (``beta``, ...)."""
    epsilon: float = 0.05
    """Exploration: probability of a uniform legal action instead of P_F's, per action."""
    replay_size: int = 1000
    """Best distinct valid terminals kept for replay (0: no replay)."""
    replay_fraction: float = 0.25
    """Share of each batch drawn from the replay buffer (once it holds terminals)."""
    log_z_scale: float = 10.0
    """log Z = log_z_scale * parameter, so log Z learns ``log_z_scale`` times faster than
    the policy under the one learning rate of the training loop."""
    n_examples: int = 4096
    """Placeholder examples from ``prepare``: the largest batch of trajectories."""
    max_reward_evaluations: int = 0
    """Training is done (``training_done``) once this many crystals were passed to the reward,
    resumed runs included (0: no limit)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GFlowNetConfig:
        data = dict(data)
        return cls(env=CrystalEnvConfig(**data.pop("env", {})),
                   transformer=TransformerConfig(**data.pop("transformer", {})), **data)

    def fit_statistics(self, crystals: Sequence[Crystal]) -> GFlowNetConfig:
        """Nothing to fit: a GFlowNet learns from its reward (the crystals are ignored). Sets
        the transformer's vocabulary, slots and length from the environment."""
        env = CrystalEnv(self.env)
        self.transformer.vocab_size = env.tokenizer.vocab_size
        self.transformer.num_slots = G.NUM_SLOTS
        self.transformer.max_len = env.max_len
        return self


class ReplayBuffer:
    """The ``capacity`` best distinct terminals seen (token ids -> log-reward); replayed
    uniformly."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._heap: list[tuple[float, tuple[int, ...]]] = []
        self._keys: set[tuple[int, ...]] = set()

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, key: tuple[int, ...], log_reward: float) -> None:
        if self.capacity <= 0 or key in self._keys:
            return
        if len(self._heap) < self.capacity:
            heapq.heappush(self._heap, (log_reward, key))
            self._keys.add(key)
        elif log_reward > self._heap[0][0]:
            _, old = heapq.heapreplace(self._heap, (log_reward, key))
            self._keys.discard(old)
            self._keys.add(key)

    def sample(self, n: int, rng: random.Random) -> list[tuple[tuple[int, ...], float]]:
        """``n`` (token ids, log-reward) pairs, uniformly with replacement."""
        return [(key, value) for value, key in (rng.choice(self._heap) for _ in range(n))]

    def best(self, n: int = 1) -> list[tuple[tuple[int, ...], float]]:
        return [(key, value) for value, key in heapq.nlargest(n, self._heap)]


class GFlowNet(nn.Module):
    """Forward policy, log Z and environment; ``train_step`` for the training loop."""

    ddp_find_unused_parameters = False

    def __init__(self, config: GFlowNetConfig) -> None:
        super().__init__()
        self.config = config
        self.env = CrystalEnv(config.env)
        if config.transformer.vocab_size != self.env.tokenizer.vocab_size:
            config.transformer.vocab_size = self.env.tokenizer.vocab_size
            config.transformer.num_slots = G.NUM_SLOTS
        if config.transformer.max_len < self.env.max_len:
            config.transformer.max_len = self.env.max_len
        self.policy = ForwardPolicy(config.transformer)
        self.log_z_param = nn.Parameter(torch.zeros(()))
        # crystals passed to the reward while training, resumed runs included (saved; the
        # environment's n_reward_evaluations counts this process only)
        self.register_buffer("reward_evaluations", torch.zeros((), dtype=torch.long))
        self.replay = ReplayBuffer(config.replay_size)
        self._reward: Reward | None = None
        self._rng = random.Random(0)

    # -- pieces -----------------------------------------------------------------------------------
    @property
    def log_z(self) -> torch.Tensor:
        """The learned log-partition function (natural log of the total reward)."""
        return self.config.log_z_scale * self.log_z_param

    @property
    def reward(self) -> Reward:
        """The reward of ``config.reward`` (built on first use), or the one set by
        :meth:`set_reward`."""
        if self._reward is None:
            self._reward = make_reward(self.config.reward, **self.config.reward_options)
            check = getattr(self._reward, "check_system", None)
            if check is not None:
                check(self.config.env.elements)
        return self._reward

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # checkpoints written before the evaluation counter existed load with a count of 0
        state_dict.setdefault(prefix + "reward_evaluations", torch.zeros((), dtype=torch.long))
        super()._load_from_state_dict(state_dict, prefix, *args)

    def training_done(self) -> bool:
        """True once ``config.max_reward_evaluations`` (when set) have been spent: the training
        loop then stops."""
        budget = self.config.max_reward_evaluations
        return bool(budget) and int(self.reward_evaluations) >= budget

    def set_reward(self, reward: Reward) -> None:
        """Use ``reward`` (any :class:`Reward`) instead of ``config.reward``; not saved."""
        self._reward = reward

    @property
    def device(self) -> torch.device:
        return self.log_z_param.device

    # -- the training contract ------------------------------------------------------------------
    def prepare(self, crystals: Sequence[Crystal]) -> list[int]:
        """``n_examples`` placeholder examples, whatever ``crystals`` holds (see the module)."""
        return list(range(self.config.n_examples))

    def collate(self, examples: Sequence[int], device: torch.device | str = "cpu") -> int:
        """The number of trajectories of the step."""
        return len(examples)

    def sample(self, n: int, *, epsilon: float = 0.0, temperature: float = 1.0,
               top_k: int | None = None, spacegroup: int | None = None,
               generator: torch.Generator | None = None) -> list[Trajectory]:
        """``n`` trajectories from P_F (see :meth:`ForwardPolicy.sample`)."""
        states = [self.env.new_state(spacegroup) for _ in range(n)]
        return self.policy.sample(self.env, states, epsilon=epsilon, temperature=temperature,
                                  top_k=top_k, generator=generator)

    def _replayed(self, n: int) -> tuple[list[Trajectory], list[float]]:
        trajectories, values = [], []
        for key, value in self.replay.sample(n, self._rng):
            _, slots, masks = self.env.replay(key)
            trajectories.append(Trajectory(list(key), slots, masks))
            values.append(value)
        return trajectories, values

    def tb_losses(self, n: int, initialise_log_z: bool = False) -> dict[str, torch.Tensor]:
        """Trajectory-balance loss of ``n`` trajectories (on-policy with exploration, and
        replayed), with statistics of the on-policy ones. ``initialise_log_z``: first set log
        Z to the batch's mean of log R - log P_F (its TB optimum for this batch)."""
        cfg = self.config
        n_replay = min(round(cfg.replay_fraction * n), n - 1) if len(self.replay) else 0
        trajectories = self.sample(n - n_replay, epsilon=cfg.epsilon)
        before = self.env.n_reward_evaluations
        scored = self.env.score([t.ids for t in trajectories], self.reward,
                                states=[t.state for t in trajectories])
        self.reward_evaluations += self.env.n_reward_evaluations - before
        for t, value, reason in zip(trajectories, scored.log_rewards, scored.reasons):
            if not reason:
                self.replay.add(t.key, float(value))
        replayed, replay_values = self._replayed(n_replay) if n_replay else ([], [])
        log_r = torch.tensor([*scored.log_rewards, *replay_values], dtype=torch.float32,
                             device=self.device)
        log_pf = self.policy.log_prob([*trajectories, *replayed], self.env.vocab.pad)
        if initialise_log_z:  # start log Z at the batch's estimate instead of 0
            with torch.no_grad():
                self.log_z_param.fill_(float((log_r - log_pf).mean()) / self.config.log_z_scale)
        loss = trajectory_balance(self.log_z, log_pf, log_r)
        on_policy = torch.from_numpy(scored.log_rewards).float()
        stats = {
            "log_z": self.log_z.detach(),
            "mean_log_reward": on_policy.mean(),
            "max_log_reward": on_policy.max(),
            "valid_fraction": torch.tensor(float(scored.valid.mean())),
            "mean_log_pf": log_pf[: len(trajectories)].detach().mean(),
            "replay_size": torch.tensor(float(len(self.replay))),
            "reward_evaluations": self.reward_evaluations.detach().float(),
        }
        return {"loss": loss, **stats}

    def loss(self, batch: int) -> dict[str, torch.Tensor]:
        """Trajectory-balance loss of ``batch`` trajectories (``collate``'s count)."""
        return self.tb_losses(int(batch))

    def forward(self, batch: int) -> dict[str, torch.Tensor]:
        return self.loss(batch)

    def train_step(self, batch: int, optimizer: torch.optim.Optimizer, step: int,
                   grad_clip: float) -> dict[str, torch.Tensor]:
        """One GFlowNet step for :func:`xtalgen.train.train`: sample, score, replay,
        trajectory balance, one optimiser step; returns the losses with ``"grad_norm"``. At
        step 0 log Z starts from the first batch's estimate."""
        if torch.distributed.is_available() and torch.distributed.is_initialized() \
                and torch.distributed.get_world_size() > 1:
            raise XtalgenError("GFlowNet training runs in one process (no torchrun)")
        self._rng.seed(step)
        losses = self.tb_losses(int(batch), initialise_log_z=step == 0)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.parameters(), grad_clip)
        optimizer.step()
        return {**losses, "loss": losses["loss"].detach(), "grad_norm": grad_norm}


class GFlowNetGenerator(LearnedGenerator):
    """Samples complete crystals of the GFlowNet's chemical system from its forward policy."""

    family = "gflownet"
    model_class = GFlowNet
    config_class = GFlowNetConfig
    half_precision_prefixes = ("policy.",)

    def __init__(self, model: GFlowNet, *, temperature: float = 1.0, top_k: int | None = None,
                 max_rounds: int = 3, with_reward: bool = False, **kwargs: Any) -> None:
        """``temperature`` and ``top_k`` reshape P_F (1 and None: samples in proportion to the
        reward, as trained). ``with_reward``: score every sample with the model's reward
        (``log_reward`` property; costs a reward evaluation each). Invalid terminals are
        counted in ``last_report`` and drawn again, up to ``max_rounds`` times."""
        kwargs.pop("n_steps", None)  # an iterative-model option; accepted and ignored here
        super().__init__(model, **kwargs)
        self.temperature = temperature
        self.top_k = top_k
        self.max_rounds = max_rounds
        self.with_reward = with_reward
        self.name = "gflownet"
        self.last_report: dict[str, Any] = {}

    @property
    def min_distance(self) -> float | None:
        """Terminals with atoms closer than this (angstrom) are invalid (the environment's)."""
        return self.model.env.config.min_distance or None

    @min_distance.setter
    def min_distance(self, value: float | None) -> None:
        self.model.env.config.min_distance = float(value or 0.0)

    @property
    def system(self) -> str:
        return system_name(self.model.config.env.elements)

    def generate(
        self,
        n: int,
        *,
        composition: str | Mapping[str, float] | None = None,
        spacegroup: int | None = None,
        condition: Mapping[str, float] | None = None,
        seed: int | None = None,
    ) -> list[Crystal]:
        """``n`` crystals of the chemical system, in proportion to the reward (``spacegroup``:
        within that group, which the policy then starts from). Fewer when some fail
        ``max_rounds`` times (see ``last_report``)."""
        if condition:
            raise XtalgenError(f"{self.name} does not support property conditions")
        if composition is not None:
            raise XtalgenError(f"{self.name} samples compositions of its chemical system "
                               f"({self.system}); it takes no --composition")
        if n < 1:
            raise XtalgenError(f"n must be at least 1, got {n}")
        env = self.model.env
        if spacegroup is not None and int(spacegroup) not in env.spacegroups:
            raise XtalgenError(f"{self.name}: space group {spacegroup} is not in its action space")
        seed = 0 if seed is None else int(seed)
        device = self.model.device
        generator = torch.Generator(device=device).manual_seed(seed)

        def draw(chunk: list[int]) -> list[tuple[Crystal | None, str]]:
            trajectories = self.model.sample(len(chunk), temperature=self.temperature,
                                             top_k=self.top_k, spacegroup=spacegroup,
                                             generator=generator)
            decoded = [env.decode(t.state) for t in trajectories]
            log_rewards: list[float | None] = [env.cached(t.ids) for t in trajectories]
            if self.with_reward:
                good = [k for k, (c, _) in enumerate(decoded) if c is not None]
                scored = env.score([trajectories[k].ids for k in good], self.model.reward,
                                   states=[trajectories[k].state for k in good])
                for k, value, reason in zip(good, scored.log_rewards, scored.reasons):
                    log_rewards[k] = float(value)
                    if reason:  # a hard validity term of the reward
                        decoded[k] = (None, reason)
            out: list[tuple[Crystal | None, str]] = []
            for i, (crystal, reason), log_r in zip(chunk, decoded, log_rewards):
                if crystal is None:
                    out.append((None, reason))
                    continue
                props = {"generator": self.name, "checkpoint": self.checkpoint, "seed": seed,
                         "index": i, "system": self.system, "reward": self.model.config.reward,
                         "wyckoff": crystal.properties.get("wyckoff"),
                         "spacegroup_requested": spacegroup, "log_reward": log_r}
                out.append((crystal.with_properties(**{k: v for k, v in props.items()
                                                       if v is not None}), ""))
            return out

        return self.sample_in_rounds(n, draw)
