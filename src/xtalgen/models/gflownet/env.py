"""The GFlowNet environment: complete crystals built token by token under the Wyckoff grammar.

A *state* is a partial sequence of :mod:`xtalgen.representations.wyckoff_grammar` (the grammar
the Wyckoff transformer samples under; one grammar, not two), run by a
:class:`~xtalgen.representations.wyckoff_grammar.SequenceState` restricted to the user's chemical
system. An *action* appends one token; the legal actions are the grammar's mask
(``SequenceState.allowed()``), which already enforces

* the space group (optionally one of ``spacegroups``);
* the composition from the chemical system's elements (increasing atomic number), at most
  ``max_atoms`` atoms in the primitive cell and ``max_elements`` elements, and realisable by
  the group's Wyckoff multiplicities;
* the Wyckoff sites in ITA letter order, each a letter of the group and an element of the
  composition, only while the composition can still be completed exactly (stoichiometry);
* the free coordinates of each site and the lattice parameters the crystal system leaves free,

and the environment adds two rules of its own:

* the continuous values stay in their physical range (``length_range`` angstrom,
  ``angle_range`` degrees);
* the minimum interatomic distance where it can be checked before the lattice exists
  (``mask_coincident``): at a site's last free coordinate, a value that puts two atoms on the
  same fractional position (the site's orbit collapsing onto itself, as at a special value, or
  meeting an earlier site's orbit) is masked, since those atoms are 0 angstrom apart whatever
  the lattice. Continuous values are the tokenizer's
fine bins (a coordinate on a 1/``coord_bins`` grid, a length on a ``length_step`` angstrom
grid, an angle on an ``angle_step`` degree grid).

The terminal state (after the last lattice parameter) is decoded to the primitive ``Crystal``
through the Wyckoff decoder; a terminal with two atoms closer than ``min_distance`` angstrom,
a degenerate cell, or a grammar dead end is *invalid*: it gets the log-reward floor
``min_log_reward`` and is counted by reason (:attr:`CrystalEnv.invalid`), never dropped.

Every sequence is built left to right, so each state has exactly one parent: the state space
is a tree, the backward policy is trivially P_B = 1, and a terminal's trajectory is its own
token sequence.
"""

from __future__ import annotations

import math
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from xtalgen.crystal import Crystal, CrystalError, atomic_number, element_symbol
from xtalgen.errors import XtalgenError
from xtalgen.io.base import close_pairs
from xtalgen.representations import wyckoff as W
from xtalgen.representations import wyckoff_grammar as G
from xtalgen.representations.tokens import TokenizerConfig, WyckoffTokenizer

if TYPE_CHECKING:
    from xtalgen.models.gflownet.rewards import Reward

__all__ = ["CrystalEnv", "CrystalEnvConfig", "Scored", "chemical_system", "system_name"]

CACHE_SIZE = 200_000
"""Terminal sequences whose log-reward the environment keeps (least recently used go first)."""


_COORD_SLOTS = (G.SLOT_X, G.SLOT_Y, G.SLOT_Z)
_SAME = 1e-4
"""Fractional distance under which two positions are one."""


@cache
def _affine(spacegroup: int, index: int) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """(K, 3, 3) rotations, (K, 3) translations and free axes of a Wyckoff position's
    operations (the letter at ``index`` in ITA order), as ``representations.wyckoff`` uses them."""
    table = G.sg_table(spacegroup)
    wp = W._wyckoff_position(spacegroup, table.letters[index])
    matrices = np.array([op.affine_matrix for op in wp.ops], dtype=np.float64)
    return matrices[:, :3, :3], matrices[:, :3, 3], table.free_axes[index]


def _orbits(spacegroup: int, index: int, free: np.ndarray) -> np.ndarray:
    """(C, K, 3) orbits in [0, 1) of C representatives given by their (C, n_free) free
    coordinates (the vectorised ``representations.wyckoff.site_orbit``)."""
    rotations, translations, axes = _affine(spacegroup, index)
    position = np.zeros((len(free), 3))
    if axes:
        position[:, list(axes)] = free
    position = position @ rotations[0].T + translations[0]
    position -= np.floor(position)
    orbit = np.einsum("kij,cj->cki", rotations, position) + translations[None]
    return orbit - np.floor(orbit)


def _candidates(partial: Sequence[float], bins: int) -> np.ndarray:
    """(bins, n_free) free coordinates: ``partial`` then every value of the last one."""
    last = np.arange(bins, dtype=np.float64)[:, None] / bins
    return np.concatenate([np.tile(np.asarray(partial, dtype=np.float64), (bins, 1)), last], axis=1)


@cache
def _collapsing(spacegroup: int, index: int, partial: tuple[float, ...], bins: int) -> np.ndarray:
    """(bins,) bool: values of the last free coordinate whose orbit holds one point twice."""
    orbits = _orbits(spacegroup, index, _candidates(partial, bins))
    diff = orbits[:, :, None, :] - orbits[:, None, :, :]
    diff -= np.round(diff)
    same = (np.abs(diff) < _SAME).all(-1)
    k = orbits.shape[1]
    same[:, np.arange(k), np.arange(k)] = False
    return same.any(-1).any(-1)


def chemical_system(spec: str | Iterable[str | int]) -> list[int]:
    """Atomic numbers (sorted, distinct) of a chemical system: ``"Li-Mn-O"``, ``"Li,Mn,O"``,
    ``"Li Mn O"`` or a list of symbols / atomic numbers. An empty system or an unknown
    element is one clear :class:`XtalgenError`."""
    if isinstance(spec, str):
        parts = [p.strip() for p in spec.replace(",", "-").replace(" ", "-").split("-")]
        items: list[str | int] = [p for p in parts if p]
    else:
        items = list(spec)
    if not items:
        raise XtalgenError(f"chemical system {spec!r} names no element (e.g. Li-Mn-O)")
    zs = []
    for item in items:
        try:
            z = int(item) if isinstance(item, int) else atomic_number(str(item))
            element_symbol(z)
        except (XtalgenError, ValueError, IndexError):
            raise XtalgenError(f"chemical system {spec!r}: unknown element {item!r}") from None
        zs.append(z)
    return sorted(set(zs))


def system_name(elements: Sequence[int]) -> str:
    """``"Li-Mn-O"``: the chemical system's symbols in alphabetical order (pymatgen's
    ``chemical_system`` convention)."""
    return "-".join(sorted(element_symbol(z) for z in set(elements)))


@dataclass
class CrystalEnvConfig:
    """The action space: chemical system, limits, value ranges and bins; saved in checkpoints."""

    elements: list[int] = field(default_factory=list)
    """Atomic numbers of the chemical system; compositions use these (and their subsets)."""
    max_atoms: int = 12
    """Most atoms in the primitive cell."""
    max_elements: int = 3
    """Most distinct elements in a composition."""
    spacegroups: list[int] = field(default_factory=list)
    """Space groups allowed (empty: all 230)."""
    tokenizer: TokenizerConfig = field(default_factory=lambda: TokenizerConfig(
        coord_bins=48, length_step=0.1, max_length=16.0, angle_step=1.0, max_count=12))
    """The bins of the continuous values (``max_count`` is raised to ``max_atoms``)."""
    length_range: list[float] = field(default_factory=lambda: [2.0, 16.0])
    """Conventional lattice lengths allowed, angstrom (inclusive)."""
    angle_range: list[float] = field(default_factory=lambda: [60.0, 120.0])
    """Free lattice angles allowed, degrees (inclusive)."""
    min_distance: float = 0.5
    """A terminal with two atoms (or an atom and its image) closer than this, angstrom, is
    invalid."""
    min_volume_per_atom: float = 1.0
    """A terminal cell with less volume per atom than this, cubic angstrom, is invalid."""
    mask_coincident: bool = True
    """Mask coordinates that put two atoms on one fractional position (see the module)."""
    min_log_reward: float = -20.0
    """The log-reward floor: invalid terminals get it and lower log-rewards are raised to it."""

    def __post_init__(self) -> None:
        if isinstance(self.tokenizer, dict):
            self.tokenizer = TokenizerConfig(**self.tokenizer)
        self.elements = [int(z) for z in self.elements]
        self.spacegroups = [int(g) for g in self.spacegroups]
        self.length_range = [float(x) for x in self.length_range]
        self.angle_range = [float(x) for x in self.angle_range]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Scored:
    """Log-rewards of terminal sequences, with the decoded crystals (None where invalid or
    served from the cache) and the reason each invalid one failed ("" where valid)."""

    log_rewards: np.ndarray
    crystals: list[Crystal | None]
    reasons: list[str]

    @property
    def valid(self) -> np.ndarray:
        return np.array([not r for r in self.reasons], dtype=bool)


class CrystalEnv:
    """The environment of one chemical system: states, legal actions, decoding and rewards.

    Args:
        config: the action space.
        tokenizer: the tokenizer of ``config.tokenizer`` (built when not given).
    """

    def __init__(self, config: CrystalEnvConfig, tokenizer: WyckoffTokenizer | None = None) -> None:
        if not config.elements:
            raise XtalgenError("the GFlowNet environment needs a chemical system (elements)")
        if config.max_atoms < 1 or config.max_elements < 1:
            raise XtalgenError("max_atoms and max_elements must be at least 1")
        bad = [g for g in config.spacegroups if not 1 <= g <= 230]
        if bad:
            raise XtalgenError(f"space groups must be in 1-230, got {bad}")
        if config.tokenizer.max_count < config.max_atoms:
            config.tokenizer = TokenizerConfig(**{**asdict(config.tokenizer),
                                                  "max_count": config.max_atoms})
        self.config = config
        self.tokenizer = tokenizer or WyckoffTokenizer(config.tokenizer)
        self.vocab = G.VocabIndex(self.tokenizer)
        missing = [z for z in config.elements if z not in self.vocab.element]
        if missing:
            raise XtalgenError(f"elements {missing} are not in the tokenizer's vocabulary")
        self.spacegroups = sorted(config.spacegroups) or list(range(1, 231))
        self._value_masks = self._value_ranges()
        self._cache: OrderedDict[tuple[int, ...], tuple[float, str]] = OrderedDict()
        self.invalid: Counter[str] = Counter()
        """Invalid terminals by reason (cache hits not counted again)."""
        self.n_terminals = 0
        """Distinct terminal sequences scored (cache misses)."""
        self.n_reward_evaluations = 0
        """Crystals passed to the reward (valid cache misses)."""

    # -- the action space -------------------------------------------------------------------------
    @property
    def max_len(self) -> int:
        """Most tokens in a sequence (<bos> included): space group, composition and <sep>,
        at most ``max_atoms`` sites of letter, element and three coordinates, <stop> and six
        lattice parameters (in a centred group every multiplicity is a multiple of the
        centring, so there are never more sites than primitive-cell atoms)."""
        cfg = self.config
        return 2 + 2 * min(cfg.max_elements, len(cfg.elements)) + 1 + 5 * cfg.max_atoms + 1 + 6

    def _value_ranges(self) -> dict[int, np.ndarray]:
        v, cfg, tok = self.vocab, self.config, self.tokenizer
        lo, hi = cfg.length_range
        lengths = np.arange(1, tok.num_length_bins) * tok.config.length_step
        ok_len = np.zeros(v.size, dtype=bool)
        ok_len[v.length[(lengths >= lo - 1e-9) & (lengths <= hi + 1e-9)]] = True
        lo_a, hi_a = cfg.angle_range
        angles = np.arange(1, tok.num_angle_bins) * tok.config.angle_step
        ok_ang = np.zeros(v.size, dtype=bool)
        ok_ang[v.angle[(angles >= lo_a - 1e-9) & (angles <= hi_a + 1e-9)]] = True
        if not ok_len.any():
            raise XtalgenError(f"no lattice-length bin lies in {cfg.length_range} A "
                               f"(bins of {tok.config.length_step} A up to {tok.config.max_length} A)")
        if not ok_ang.any():
            raise XtalgenError(f"no lattice-angle bin lies in {cfg.angle_range} degrees")
        masks = {slot: ok_len for slot in (G.SLOT_A, G.SLOT_B, G.SLOT_C)}
        masks.update({slot: ok_ang for slot in (G.SLOT_ALPHA, G.SLOT_BETA, G.SLOT_GAMMA)})
        return masks

    def new_state(self, spacegroup: int | None = None) -> G.SequenceState:
        """The initial state (only <bos>); ``spacegroup`` forces the first action."""
        cfg = self.config
        return G.SequenceState(self.vocab, elements=cfg.elements, max_atoms=cfg.max_atoms,
                               max_elements=min(cfg.max_elements, len(cfg.elements)),
                               spacegroups=self.spacegroups, spacegroup=spacegroup)

    def allowed(self, state: G.SequenceState) -> np.ndarray:
        """(V,) bool: the legal actions of ``state`` (the grammar's, lattice values in range,
        no coincident atoms)."""
        mask = state.allowed()
        if state.done:
            return mask
        value = self._value_masks.get(state.slot)
        if value is not None:
            return mask & value
        if (self.config.mask_coincident and state.slot in _COORD_SLOTS
                and not state.pending_axes):
            mask[self.vocab.coord[self._coincident(state)]] = False
        return mask

    def _coincident(self, state: G.SequenceState) -> np.ndarray:
        """(coord_bins,) bool: the values of the current site's last free coordinate that put
        two atoms on one fractional position."""
        table = state.table
        tokens = state.tokens
        sites: list[tuple[int, list[float]]] = []
        i = tokens.index("<sep>") + 1
        while i < len(tokens):
            index = table.letters.index(tokens[i].removeprefix("WYK_"))
            n_free = len(table.free_axes[index])
            values = [self.tokenizer.token_value(t) for t in tokens[i + 2: i + 2 + n_free]]
            sites.append((index, values))
            i += 2 + n_free
        *earlier, (index, partial) = sites
        bad = _collapsing(table.number, index, tuple(partial), self.tokenizer.config.coord_bins)
        if earlier:
            occupied = np.concatenate([
                _orbits(table.number, j, np.array([values], dtype=np.float64))[0]
                for j, values in earlier])
            orbits = _orbits(table.number, index, _candidates(partial, self.tokenizer.config.coord_bins))
            diff = orbits[:, :, None, :] - occupied[None, None, :, :]
            diff -= np.round(diff)
            bad = bad | (np.abs(diff) < _SAME).all(-1).any(-1).any(-1)
        return bad

    def step(self, state: G.SequenceState, action: int) -> None:
        """Apply ``action`` (a token id; -1: no legal action, the state fails) in place."""
        state.advance(int(action))

    def replay(self, ids: Sequence[int], spacegroup: int | None = None
               ) -> tuple[G.SequenceState, list[int], np.ndarray]:
        """Run the actions of ``ids`` (<bos> first) from the initial state: the final state,
        the slot before each action and the (T, V) legal-action masks (T = len(ids) - 1)."""
        state = self.new_state(spacegroup)
        slots, masks = [], []
        for token in ids[1:]:
            slots.append(state.slot)
            mask = self.allowed(state)
            if not mask[token]:
                raise XtalgenError(f"token {self.vocab.id_to_token[token]!r} is not a legal action "
                                   f"after {state.tokens}")
            masks.append(mask)
            self.step(state, token)
        return state, slots, np.array(masks, dtype=bool).reshape(len(masks), self.vocab.size)

    def terminals(self, limit: int = 100_000) -> list[tuple[int, ...]]:
        """Every complete sequence of the action space (depth-first, in token order): for
        environments small enough to enumerate (tests, the toy); raises past ``limit``."""
        out: list[tuple[int, ...]] = []
        stack: list[tuple[int, ...]] = [(self.vocab.bos,)]
        while stack:
            prefix = stack.pop()
            state = self.replay(prefix)[0]
            if state.done:
                out.append(prefix)
                if len(out) > limit:
                    raise XtalgenError(f"the environment has more than {limit} terminal states")
                continue
            for action in np.flatnonzero(self.allowed(state))[::-1]:
                stack.append((*prefix, int(action)))
        return out

    # -- terminals --------------------------------------------------------------------------------
    def decode(self, state_or_ids: G.SequenceState | Sequence[int]) -> tuple[Crystal | None, str]:
        """The primitive cell of a terminal state (or its token ids) and "" , or None and the
        reason it is invalid."""
        if isinstance(state_or_ids, G.SequenceState):
            state = state_or_ids
            if state.failed or not state.done:
                return None, state.failed or "sequence not finished"
            tokens = state.tokens
        else:
            tokens = [self.vocab.id_to_token[i] for i in state_or_ids]
        try:
            rep = G.from_sequence(tokens, self.tokenizer)
            crystal = W.decode(rep, primitive=True)
        except (XtalgenError, CrystalError, ValueError) as exc:
            return None, f"decode: {type(exc).__name__}"
        volume = crystal.volume
        if not math.isfinite(volume) or volume / crystal.num_sites < self.config.min_volume_per_atom:
            return None, "degenerate cell"
        if self.config.min_distance and len(close_pairs(crystal, self.config.min_distance)[2]):
            return None, f"atoms closer than {self.config.min_distance:g} A"
        return crystal.with_properties(wyckoff=rep.compact), ""

    def cached(self, ids: Sequence[int]) -> float | None:
        """The cached log-reward of a terminal sequence, or None."""
        hit = self._cache.get(tuple(ids))
        return None if hit is None else hit[0]

    def score(self, sequences: Sequence[Sequence[int]], reward: Reward,
              states: Sequence[G.SequenceState | None] | None = None) -> Scored:
        """Log-rewards of terminal sequences (token ids, <bos> first): the reward's for valid
        crystals (raised to the floor ``min_log_reward``), the floor for invalid ones.

        Cached by sequence (the sequence determines the crystal), so a terminal is decoded and
        rewarded once. A reward may expose ``invalid_reasons(crystals) -> list[str | None]``
        (hard validity terms such as charge neutrality): those crystals are not rewarded but
        floored and counted. A NaN reward counts as ``"reward is NaN"``.
        """
        floor = self.config.min_log_reward
        n = len(sequences)
        log_r = np.full(n, floor, dtype=np.float64)
        crystals: list[Crystal | None] = [None] * n
        reasons = [""] * n
        todo: list[int] = []
        for i, ids in enumerate(sequences):
            key = tuple(int(t) for t in ids)
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                log_r[i], reasons[i] = hit
                continue
            state = states[i] if states is not None else None
            crystal, reason = self.decode(state if state is not None else key)
            self.n_terminals += 1
            if crystal is None:
                reasons[i] = reason
                self.invalid[reason] += 1
                self._remember(key, floor, reason)
            else:
                crystals[i] = crystal
                todo.append(i)
        check = getattr(reward, "invalid_reasons", None)
        if todo and check is not None:
            for i, why in zip(list(todo), check([crystals[i] for i in todo])):
                if why:
                    reasons[i] = why
                    self.invalid[why] += 1
                    self._remember(tuple(int(t) for t in sequences[i]), floor, why)
                    todo.remove(i)
        if todo:
            values = np.asarray(reward([crystals[i] for i in todo]), dtype=np.float64)
            self.n_reward_evaluations += len(todo)
            for i, value in zip(todo, values):
                if not math.isfinite(value):
                    reasons[i] = "reward is NaN"
                    self.invalid[reasons[i]] += 1
                else:
                    log_r[i] = max(float(value), floor)
                self._remember(tuple(int(t) for t in sequences[i]), float(log_r[i]), reasons[i])
        return Scored(log_r, crystals, reasons)

    def _remember(self, key: tuple[int, ...], log_reward: float, reason: str) -> None:
        self._cache[key] = (log_reward, reason)
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
