"""A space-group-native autoregressive generator over Wyckoff tokens (CrystalFormer / WyFormer
style) on the shared transformer core.

The model reads and writes the sequences of :mod:`xtalgen.representations.wyckoff_grammar`:
space group, primitive-cell composition, Wyckoff sites in letter order (letter, element, free
coordinates), then the free lattice parameters. Every value is a token: discrete heads for the
space group, letters, elements and counts, and fine bins for the continuous values (fractional
coordinates on a 1/``coord_bins`` grid, lengths on a ``length_step`` angstrom grid, angles on an
``angle_step`` degree grid). Training masks the logits of each position to the tokens its slot
allows (the space group's letters, the composition's elements); sampling runs the full grammar,
so every sample is a legal crystal of its space group:

* DNG: the space group is drawn from the model (the training distribution), then the rest;
* space-group-conditioned DNG (``spacegroup=N``): the first token is forced, so every sample has
  N's Wyckoff positions by construction (its detected symmetry is N or, where coordinates
  land on special values, a supergroup);
* CSP (``composition=...``): the composition tokens are forced; the space group is drawn from
  the model's posterior p(G | composition) ∝ p(G) p(composition | G) over the groups whose
  Wyckoff multiplicities can hold the composition, and the sites are masked to add up to it.

A sequence that ends in a dead end of the grammar, or whose representation does not decode to
a valid cell, is counted by reason in ``WyckoffGenerator.last_report`` and retried; it is never
silently dropped.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from xtalgen.crystal import Crystal, CrystalError, element_symbol
from xtalgen.errors import XtalgenError
from xtalgen.io.base import close_pairs
from xtalgen.models.learned import LearnedGenerator, composition_species
from xtalgen.nn.transformer import TransformerConfig, TransformerCore, sample_sequences
from xtalgen.representations import wyckoff as W
from xtalgen.representations import wyckoff_grammar as G
from xtalgen.representations.tokens import TokenizerConfig, WyckoffTokenizer

__all__ = ["WyckoffConfig", "WyckoffGenerator", "WyckoffTransformer"]

CHUNK = 16
"""Sequences per padded chunk of a training batch (sorted by length)."""


@dataclass
class WyckoffConfig:
    """Everything needed to rebuild a Wyckoff transformer; saved inside every checkpoint."""

    family: ClassVar[str] = "wyckoff"
    transformer: TransformerConfig = field(default_factory=TransformerConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    symprec: float = 0.1
    """Tolerance (angstrom) of the Wyckoff analysis of training crystals."""
    max_atoms: int = 20
    """Most atoms in the primitive cell (training maximum)."""
    max_elements: int = 8
    elements: list[int] = field(default_factory=list)
    """Atomic numbers seen in training; compositions use only these."""
    spacegroups: list[int] = field(default_factory=list)
    """Space groups seen in training (DNG draws among them; a forced one may be any)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WyckoffConfig:
        data = dict(data)
        return cls(transformer=TransformerConfig(**data.pop("transformer", {})),
                   tokenizer=TokenizerConfig(**data.pop("tokenizer", {})), **data)

    def fit_statistics(self, crystals: Sequence[Crystal]) -> WyckoffConfig:
        """Elements, space groups, atom and element limits, the length grid's range and the
        longest sequence, from the training crystals (Wyckoff-encoded, cached)."""
        reps = [r for r in W.encode_many(list(crystals), self.symprec) if r is not None]
        if not reps:
            raise XtalgenError("no training crystal could be Wyckoff-encoded")
        comps = [G.primitive_composition(r) for r in reps]
        self.max_atoms = max(sum(c.values()) for c in comps)
        self.max_elements = max(len(c) for c in comps)
        self.elements = sorted({z for c in comps for z in c})
        self.spacegroups = sorted({r.spacegroup for r in reps})
        longest = np.percentile([max(r.lattice_params[:3]) for r in reps], 99.9)
        self.tokenizer = TokenizerConfig(
            coord_bins=self.tokenizer.coord_bins, length_step=self.tokenizer.length_step,
            max_length=float(math.ceil(longest * 1.1)), angle_step=self.tokenizer.angle_step,
            max_count=max(self.max_atoms, 1))
        tokenizer = WyckoffTokenizer(self.tokenizer)
        sequences = [_sequence(r, tokenizer) for r in reps]
        lengths = [len(seq[0]) for seq in sequences if seq is not None]
        self.transformer.vocab_size = tokenizer.vocab_size
        self.transformer.num_slots = G.NUM_SLOTS
        self.transformer.max_len = int(max(lengths) + 8)
        return self


def _sequence(rep: W.WyckoffRepresentation, tokenizer: WyckoffTokenizer) -> tuple[list[int], list[int]] | None:
    """(token ids, slots) of a representation; None when it does not fit the tokenizer."""
    try:
        tokens, slots = G.to_sequence(rep, tokenizer)
    except XtalgenError:
        return None
    return tokenizer.ids_from_tokens(tokens), slots


@dataclass
class WyckoffBatch:
    """Padded training batch: inputs, their next-token slots, targets and context masks."""

    tokens: torch.Tensor  # (B, L) input ids
    slots: torch.Tensor  # (B, L) slot of the token to predict at each position
    targets: torch.Tensor  # (B, L) next ids, pad where there is none
    spacegroups: torch.Tensor  # (B,)
    element_mask: torch.Tensor  # (B, V) the composition's element tokens

    def __len__(self) -> int:
        return self.tokens.shape[0]


class WyckoffTransformer(nn.Module):
    """The transformer core over Wyckoff-grammar sequences; ``loss(batch)`` for training."""

    def __init__(self, config: WyckoffConfig) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = WyckoffTokenizer(config.tokenizer)
        if config.transformer.vocab_size != self.tokenizer.vocab_size:
            config.transformer.vocab_size = self.tokenizer.vocab_size
            config.transformer.num_slots = G.NUM_SLOTS
        self.vocab = G.VocabIndex(self.tokenizer)
        self.core = TransformerCore(config.transformer)
        self.register_buffer("slot_masks", torch.from_numpy(self.vocab.slot_masks()), persistent=False)
        letters = np.stack([np.zeros(self.vocab.size, dtype=bool)]
                           + [self.vocab.letter_mask(n) for n in range(1, 231)])
        self.register_buffer("letter_masks", torch.from_numpy(letters), persistent=False)

    # -- training -------------------------------------------------------------------------------
    def prepare(self, crystals: Sequence[Crystal]) -> list[tuple[list[int], list[int]]]:
        """(ids, slots) of every crystal that encodes and fits the grammar (others are left out)."""
        reps = W.encode_many(list(crystals), self.config.symprec)
        out = []
        for rep in reps:
            seq = None if rep is None else _sequence(rep, self.tokenizer)
            if seq is not None and len(seq[0]) <= self.config.transformer.max_len:
                out.append(seq)
        return out

    def collate(self, examples: Sequence[tuple[list[int], list[int]]],
                device: torch.device | str = "cpu") -> list[WyckoffBatch]:
        """Examples sorted by length and cut into chunks of ``CHUNK`` sequences, each padded
        to its own longest (MP-20 sequences are 25 tokens on average but up to 122, so one
        padded batch would be mostly padding)."""
        ordered = sorted(examples, key=lambda e: len(e[0]))
        return [self._pad(ordered[i: i + CHUNK], device) for i in range(0, len(ordered), CHUNK)]

    def _pad(self, examples: Sequence[tuple[list[int], list[int]]],
             device: torch.device | str) -> WyckoffBatch:
        length = max(len(ids) for ids, _ in examples) - 1
        pad = self.vocab.pad
        tokens = torch.full((len(examples), length), pad, dtype=torch.long)
        targets = torch.full_like(tokens, pad)
        slots = torch.zeros_like(tokens)
        elements = torch.zeros(len(examples), self.vocab.size, dtype=torch.bool)
        spacegroups = torch.zeros(len(examples), dtype=torch.long)
        sep = self.vocab.sep
        for row, (ids, slot) in enumerate(examples):
            n = len(ids) - 1
            tokens[row, :n] = torch.tensor(ids[:-1])
            targets[row, :n] = torch.tensor(ids[1:])
            slots[row, :n] = torch.tensor(slot[1:])
            spacegroups[row] = int(self.tokenizer.vocab[ids[1]].removeprefix("SG"))
            composition = ids[2: ids.index(sep)]
            elements[row, composition[0::2]] = True
        return WyckoffBatch(tokens.to(device), slots.to(device), targets.to(device),
                            spacegroups.to(device), elements.to(device))

    def masked_logits(self, batch: WyckoffBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits of the non-padding positions, (N, V), -inf outside each position's legal
        tokens (its slot's, the space group's letters, the composition's elements), and the
        (B, L) bool mask of those positions."""
        valid = batch.targets != self.vocab.pad
        logits = self.core.head(self.core.features(batch.tokens, batch.slots)[valid])
        slots = batch.slots[valid]
        rows = torch.arange(len(batch), device=slots.device)[:, None].expand_as(valid)[valid]
        mask = self.slot_masks[slots]
        letter = (slots == G.SLOT_LETTER)[:, None]
        mask = torch.where(letter, mask & self.letter_masks[batch.spacegroups[rows]], mask)
        site = (slots == G.SLOT_SITE_EL)[:, None]
        mask = torch.where(site, mask & batch.element_mask[rows], mask)
        return logits.masked_fill(~mask, float("-inf")), valid

    def loss(self, batch: Sequence[WyckoffBatch]) -> dict[str, torch.Tensor]:
        """Mean next-token cross-entropy (nats per token) over the chunks of a batch, and its
        part on each token kind."""
        nll, slots = [], []
        for chunk in batch:
            logits, valid = self.masked_logits(chunk)
            nll.append(F.cross_entropy(logits, chunk.targets[valid], reduction="none"))
            slots.append(chunk.slots[valid])
        nll_all, slots_all = torch.cat(nll), torch.cat(slots)
        out = {"loss": nll_all.mean()}
        kinds = {"sg": (G.SLOT_SG,), "composition": (G.SLOT_COMP_EL, G.SLOT_COMP_N),
                 "sites": (G.SLOT_LETTER, G.SLOT_SITE_EL),
                 "coords": (G.SLOT_X, G.SLOT_Y, G.SLOT_Z),
                 "lattice": tuple(range(G.SLOT_A, G.SLOT_GAMMA + 1))}
        for name, members in kinds.items():
            pick = torch.isin(slots_all, torch.tensor(members, device=slots_all.device))
            if pick.any():
                out[f"loss_{name}"] = nll_all[pick].mean().detach()
        return out

    def forward(self, batch: Sequence[WyckoffBatch]) -> dict[str, torch.Tensor]:
        return self.loss(batch)

    # -- sampling -------------------------------------------------------------------------------
    @torch.no_grad()
    def sequence_log_prob(self, ids: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        """(B,) log-probability of prefixes ``ids`` (B, L) with their ``slots``, each token
        normalised over its slot's tokens as in training (scores space groups for a
        composition; prefixes that end before the sites need no context masks)."""
        logits = self.core(ids[:, :-1], slots[:, 1:])
        logits = logits.float().masked_fill(~self.slot_masks[slots[:, 1:]], float("-inf"))
        logp = torch.log_softmax(logits, -1)
        return logp.gather(-1, ids[:, 1:, None]).squeeze(-1).sum(-1)

    def spacegroup_posterior(self, composition: Mapping[int, int],
                             candidates: Sequence[int]) -> np.ndarray:
        """p(G | composition) over ``candidates`` ∝ p(G) p(composition | G), from the model."""
        tokens = [self.tokenizer.token_to_id["<bos>"], 0]
        slots = [G.SLOT_NONE, G.SLOT_SG]
        for z, count in composition.items():
            tokens += [self.vocab.element[z], self.vocab.count[count - 1]]
            slots += [G.SLOT_COMP_EL, G.SLOT_COMP_N]
        tokens.append(self.vocab.sep)
        slots.append(G.SLOT_COMP_EL)
        ids = torch.tensor(tokens).repeat(len(candidates), 1)
        ids[:, 1] = torch.from_numpy(self.vocab.sg[np.asarray(candidates) - 1])
        device = self.slot_masks.device
        logp = self.sequence_log_prob(ids.to(device), torch.tensor(slots).repeat(len(candidates), 1).to(device))
        probs = torch.softmax(logp, 0).cpu().numpy()
        return probs / probs.sum()


class _BatchGrammar:
    """The :class:`~xtalgen.nn.transformer.Grammar` of a batch: one SequenceState per row."""

    def __init__(self, states: list[G.SequenceState]) -> None:
        self.states = states

    @property
    def done(self) -> torch.Tensor:
        return torch.tensor([s.done for s in self.states])

    def allowed(self) -> torch.Tensor:
        return torch.from_numpy(np.stack([s.allowed() for s in self.states]))

    def slots(self) -> torch.Tensor:
        return torch.tensor([s.slot for s in self.states])

    def advance(self, tokens: torch.Tensor) -> None:
        for state, token in zip(self.states, tokens.tolist()):
            state.advance(int(token))


class WyckoffGenerator(LearnedGenerator):
    """Samples crystals from a :class:`WyckoffTransformer` (DNG, space group, CSP)."""

    family = "wyckoff"
    native_conditions = frozenset({"spacegroup"})
    model_class = WyckoffTransformer
    config_class = WyckoffConfig
    half_precision_prefixes = ("core.",)

    def __init__(self, model: WyckoffTransformer, *, temperature: float = 1.0,
                 top_k: int | None = None, max_rounds: int = 3,
                 enforce_spacegroup: bool = True, min_distance: float | None = 0.5,
                 **kwargs: Any) -> None:
        """``enforce_spacegroup``: when a space group is requested, a sample whose detected
        group (spglib, symprec 0.1) is another one (a supergroup, where coordinates landed on
        special values) is counted in ``last_report`` and drawn again. ``min_distance``
        (angstrom; None: off): a sample with two atoms closer than this (overlapping sites,
        e.g. a coordinate on a special value collapses an orbit) is counted and drawn again.
        Both checks are rejection sampling: ``last_report`` keeps the raw rates."""
        kwargs.pop("n_steps", None)  # an iterative-model option; accepted and ignored here
        super().__init__(model, **kwargs)
        self.temperature = temperature
        self.top_k = top_k
        self.max_rounds = max_rounds
        self.enforce_spacegroup = enforce_spacegroup
        self.min_distance = min_distance
        self.name = "wyckoff-transformer"
        self.last_report: dict[str, Any] = {}

    # -- conditions -----------------------------------------------------------------------------
    def _composition(self, composition: str | Mapping[str, float]) -> dict[int, int]:
        counts = Counter(composition_species(composition))
        config = self.model.config
        unknown = sorted(z for z in counts if z not in set(config.elements))
        if unknown:
            names = ", ".join(element_symbol(z) for z in unknown)
            raise XtalgenError(f"{self.name}: element(s) {names} never occur in its training "
                               "set; it cannot place them")
        if sum(counts.values()) > config.max_atoms:
            raise XtalgenError(f"{self.name}: {composition} has {sum(counts.values())} atoms per "
                               f"cell; the model was trained on at most {config.max_atoms}")
        return dict(sorted(counts.items()))

    def _spacegroups_for(self, composition: dict[int, int], spacegroup: int | None) -> list[int]:
        candidates = [spacegroup] if spacegroup is not None else list(range(1, 231))
        counts = tuple(sorted(composition.values()))
        ok = [g for g in candidates if G.realizable_counts(g, counts)]
        if not ok:
            formula = "".join(f"{element_symbol(z)}{c}" for z, c in composition.items())
            where = f"space group {spacegroup}" if spacegroup is not None else "any space group"
            raise XtalgenError(f"{formula} cannot be realised in {where}: no combination of "
                               "Wyckoff multiplicities adds up to its atom counts")
        return ok

    # -- Generator interface --------------------------------------------------------------------
    def generate(
        self,
        n: int,
        *,
        composition: str | Mapping[str, float] | None = None,
        spacegroup: int | None = None,
        condition: Mapping[str, float] | None = None,
        seed: int | None = None,
    ) -> list[Crystal]:
        """``n`` crystals: de novo, in ``spacegroup``, and/or of ``composition`` (CSP; the
        primitive cell holds the formula as written). Fewer when some fail (see ``last_report``)."""
        if condition:
            raise XtalgenError(f"{self.name} does not support property conditions")
        if n < 1:
            raise XtalgenError(f"n must be at least 1, got {n}")
        if spacegroup is not None and not 1 <= int(spacegroup) <= 230:
            raise XtalgenError(f"space group must be in 1-230, got {spacegroup}")
        seed = 0 if seed is None else int(seed)
        rng = np.random.default_rng(seed)
        extra: dict[str, Any] = {}
        if spacegroup is not None:
            extra["spacegroup_requested"] = int(spacegroup)
        plans: list[tuple[int | None, dict[int, int] | None, dict[str, Any]]]
        if composition is not None:
            comp = self._composition(composition)
            extra["composition"] = composition if isinstance(composition, str) else dict(composition)
            groups = self._spacegroups_for(comp, spacegroup)
            probs = self.model.spacegroup_posterior(comp, groups)
            drawn = rng.choice(groups, size=n, p=probs)
            plans = [(int(g), comp, dict(extra)) for g in drawn]
        else:
            plans = [(spacegroup, None, dict(extra)) for _ in range(n)]
        return self._sample(plans, seed)

    def sample_csp(self, targets: Sequence[Crystal], k: int = 1, *,
                   seed: int | None = None) -> list[Crystal]:
        """``k`` structures per target composition (its cell formula), tagged with the
        target's ``material_id`` and ``sample_index``; targets the model cannot place (unknown
        element, too many atoms) are reported in ``last_report["skipped_targets"]``."""
        seed = 0 if seed is None else int(seed)
        rng = np.random.default_rng(seed)
        plans = []
        skipped: list[str] = []
        for i, target in enumerate(targets):
            mid = target.properties.get("material_id", str(i))
            comp = dict(sorted(Counter(int(z) for z in target.species).items()))
            try:
                self._composition({element_symbol(z): c for z, c in comp.items()})
                groups = self._spacegroups_for(comp, None)
            except XtalgenError:
                skipped.append(str(mid))
                continue
            probs = self.model.spacegroup_posterior(comp, groups)
            for j, g in enumerate(rng.choice(groups, size=k, p=probs)):
                plans.append((int(g), comp, {"material_id": mid, "sample_index": j,
                                             "composition": target.formula}))
        out = self._sample(plans, seed) if plans else []
        self.last_report["skipped_targets"] = skipped
        return out

    # -- sampling -------------------------------------------------------------------------------
    def _state(self, spacegroup: int | None, composition: dict[int, int] | None) -> G.SequenceState:
        config = self.model.config
        return G.SequenceState(self.model.vocab, elements=config.elements, max_atoms=config.max_atoms,
                               max_elements=config.max_elements,
                               spacegroups=config.spacegroups or None,
                               spacegroup=spacegroup, composition=composition)

    def _sample(self, plans: list[tuple[int | None, dict[int, int] | None, dict[str, Any]]],
                seed: int) -> list[Crystal]:
        generator = torch.Generator().manual_seed(seed)
        device = self.model.slot_masks.device
        if device.type != "cpu":
            generator = torch.Generator(device=device).manual_seed(seed)

        def draw(chunk: list[int]) -> list[tuple[Crystal | None, str]]:
            states = [self._state(plans[i][0], plans[i][1]) for i in chunk]
            first = torch.full((len(chunk),), self.model.vocab.bos, device=device)
            sample_sequences(self.model.core, _BatchGrammar(states), first,
                             temperature=self.temperature, top_k=self.top_k,
                             generator=generator, pad_id=self.model.vocab.pad)
            out: list[tuple[Crystal | None, str]] = []
            for i, state in zip(chunk, states):
                crystal, reason = self._decode(state)
                requested = plans[i][2].get("spacegroup_requested")
                if (crystal is not None and requested is not None and self.enforce_spacegroup
                        and W.detected_spacegroup(crystal) != requested):
                    crystal, reason = None, "detected space group differs"
                if crystal is None:
                    out.append((None, reason))
                    continue
                props = {"generator": self.name, "checkpoint": self.checkpoint, "seed": seed,
                         "index": i, "wyckoff": crystal.properties.get("wyckoff"),
                         **plans[i][2]}
                out.append((crystal.with_properties(**{k: v for k, v in props.items()
                                                       if v is not None}), ""))
            return out

        return self.sample_in_rounds(len(plans), draw)

    def _decode(self, state: G.SequenceState) -> tuple[Crystal | None, str]:
        """The primitive cell of a finished sequence, or None and the reason it failed."""
        if state.failed or not state.done:
            return None, state.failed or "sequence too long"
        try:
            rep = G.from_sequence(state.tokens, self.model.tokenizer)
            crystal = W.decode(rep, primitive=True)
        except (XtalgenError, CrystalError, ValueError) as exc:
            return None, f"decode: {type(exc).__name__}"
        if not np.isfinite(crystal.volume) or crystal.volume / crystal.num_sites < 1.0:
            return None, "degenerate cell"
        if self.min_distance and len(close_pairs(crystal, self.min_distance)[2]):
            return None, f"atoms closer than {self.min_distance:g} A"
        return crystal.with_properties(wyckoff=rep.compact), ""
