"""The forward policy P_F(action | state) on the shared transformer core.

A state is its token sequence; the core reads it (each position's input: the token plus the
embedding of the *slot* of the token that comes next, as the Wyckoff transformer uses slots) and
its last position's logits, masked to the environment's legal actions, are P_F. Sampling runs
all rows in lockstep through the core's one sampler (key/value cache, one new position per step); ``log_prob`` recomputes
the summed log P_F of whole trajectories in one pass, with gradients, from the masks recorded
while sampling (or rebuilt by replaying the actions, for the replay buffer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from xtalgen.models.gflownet.env import CrystalEnv
from xtalgen.nn.transformer import TransformerConfig, TransformerCore, sample_sequences
from xtalgen.representations import wyckoff_grammar as G

__all__ = ["ForwardPolicy", "Trajectory"]


class _Recorder:
    """The :class:`~xtalgen.nn.transformer.Grammar` of a batch of environment states, which
    records each row's actions, slots and legal-action masks (the trajectory) as it goes."""

    def __init__(self, env: CrystalEnv, states: Sequence[G.SequenceState]) -> None:
        self.env, self.states = env, states
        self.ids = [[env.vocab.bos] for _ in states]
        self.slot_ids: list[list[int]] = [[] for _ in states]
        self.masks: list[list[np.ndarray]] = [[] for _ in states]
        self._mask: np.ndarray | None = None

    @property
    def done(self) -> torch.Tensor:
        return torch.tensor([s.done for s in self.states])

    def allowed(self) -> torch.Tensor:
        self._mask = np.stack([self.env.allowed(s) for s in self.states])
        return torch.from_numpy(self._mask)

    def slots(self) -> torch.Tensor:
        return torch.tensor([s.slot for s in self.states])

    def advance(self, tokens: torch.Tensor) -> None:
        for i, (state, token) in enumerate(zip(self.states, tokens.tolist())):
            if state.done:
                continue
            if token >= 0:
                self.ids[i].append(token)
                self.slot_ids[i].append(state.slot)
                self.masks[i].append(self._mask[i])
            self.env.step(state, token)


@dataclass
class Trajectory:
    """One trajectory: token ids (<bos> and the T actions), the slot and the (T, V) legal
    actions before each action, and the final state (None when rebuilt from a buffer)."""

    ids: list[int]
    slots: list[int]
    masks: np.ndarray
    state: G.SequenceState | None = None

    @property
    def key(self) -> tuple[int, ...]:
        return tuple(self.ids)


class ForwardPolicy(nn.Module):
    """P_F on a :class:`TransformerCore` (``config.vocab_size`` and ``num_slots`` set)."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.core = TransformerCore(config)

    @torch.no_grad()
    def sample(
        self,
        env: CrystalEnv,
        states: Sequence[G.SequenceState],
        *,
        epsilon: float = 0.0,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> list[Trajectory]:
        """Run ``states`` (fresh from ``env.new_state``) to the end, in place, through the
        core's one sampler (:func:`~xtalgen.nn.transformer.sample_sequences`).

        Each action is drawn from P_F (at ``temperature``, among the ``top_k`` most likely),
        or, with probability ``epsilon``, uniformly among the legal actions (exploration). A
        state with no legal action fails (``state.failed``); one still running after
        ``max_len`` tokens is left unfinished (``env.decode`` says so).
        """
        device = self.core.token_embedding.weight.device
        recorder = _Recorder(env, states)
        first = torch.full((len(states),), env.vocab.bos, dtype=torch.long, device=device)
        sample_sequences(self.core, recorder, first, temperature=temperature, top_k=top_k,
                         generator=generator, pad_id=env.vocab.pad, epsilon=epsilon)
        empty = np.zeros((0, env.vocab.size), dtype=bool)
        return [Trajectory(recorder.ids[i], recorder.slot_ids[i],
                           np.array(recorder.masks[i]) if recorder.masks[i] else empty, state)
                for i, state in enumerate(states)]

    def log_prob(self, trajectories: Sequence[Trajectory], pad_id: int) -> torch.Tensor:
        """(B,) summed log P_F of each trajectory's actions, with gradients."""
        device = self.core.token_embedding.weight.device
        batch = len(trajectories)
        length = max(1, max(len(t.slots) for t in trajectories))
        vocab_size = self.core.config.vocab_size
        tokens = np.full((batch, length), pad_id, dtype=np.int64)
        targets = np.full((batch, length), pad_id, dtype=np.int64)
        slots = np.zeros((batch, length), dtype=np.int64)
        masks = np.ones((batch, length, vocab_size), dtype=bool)  # padding: all legal, no NaN
        valid = np.zeros((batch, length), dtype=bool)
        for row, t in enumerate(trajectories):
            steps = len(t.slots)
            tokens[row, :steps] = t.ids[:steps]
            targets[row, :steps] = t.ids[1:steps + 1]
            slots[row, :steps] = t.slots
            masks[row, :steps] = t.masks
            valid[row, :steps] = True

        def put(array: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(array).to(device)

        logits = self.core(put(tokens), put(slots)).float()
        logits = logits.masked_fill(~put(masks), float("-inf"))
        logp = torch.log_softmax(logits, -1).gather(-1, put(targets)[..., None]).squeeze(-1)
        return torch.where(put(valid), logp, torch.zeros_like(logp)).sum(-1)
