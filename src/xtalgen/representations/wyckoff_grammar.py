"""The Wyckoff token grammar: one generation order over space group, composition, Wyckoff sites
and lattice, with the rules that make every sequence a legal crystal.

A sequence (tokens of :class:`xtalgen.representations.tokens.WyckoffTokenizer`) reads::

    <bos> SG62 | Li N4 Mn N4 O N8 <sep> | WYK_a Li | WYK_c Mn X12 X25 | ... <stop> | LEN.. LEN.. LEN..

the space group; the composition of the primitive cell (elements in increasing atomic number,
each with its count); the Wyckoff sites in ITA letter order (letter, element, then the free
coordinates of the site's representative); then only the lattice parameters the crystal system
leaves free (cubic: a; tetragonal, trigonal, hexagonal: a, c; orthorhombic: a, b, c;
monoclinic: a, b, c, beta; triclinic: all six; conventional cell, angstrom and degrees).

Every token has a *slot*, the kind of token it is (``SLOT_*``); a model sees the slot of the
token it must predict. :class:`SequenceState` runs the grammar for one sequence being sampled:

* Wyckoff letters only of the chosen space group, in non-decreasing ITA order, so a special
  position (no free coordinate) is never used twice;
* site elements only from the composition, and a letter or element only when every element's
  remaining atoms can still be completed by the multiplicities of the letters that remain
  (conventional-cell counts, so the sites add up to the composition exactly);
* ``<stop>`` only when the composition is complete; at most ``max_atoms`` atoms in the primitive
  cell and ``max_elements`` elements;
* the lattice constrained to the crystal system by construction.

The same grammar serves the autoregressive transformer and the GFlowNet environment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from xtalgen.crystal import atomic_number, element_symbol
from xtalgen.errors import XtalgenError
from xtalgen.representations import wyckoff as W
from xtalgen.representations.tokens import WyckoffTokenizer

__all__ = [
    "CENTRING",
    "LATTICE_SLOTS",
    "NUM_SLOTS",
    "SequenceState",
    "SpaceGroupTable",
    "VocabIndex",
    "completable",
    "from_sequence",
    "primitive_composition",
    "realizable",
    "realizable_counts",
    "sg_table",
    "to_sequence",
]

(SLOT_NONE, SLOT_SG, SLOT_COMP_EL, SLOT_COMP_N, SLOT_LETTER, SLOT_SITE_EL, SLOT_X, SLOT_Y,
 SLOT_Z, SLOT_A, SLOT_B, SLOT_C, SLOT_ALPHA, SLOT_BETA, SLOT_GAMMA) = range(15)
NUM_SLOTS = 15

MAX_CONVENTIONAL = 1024
"""Largest conventional-cell atom count of one element the feasibility tables cover."""

CENTRING = {"P": 1, "A": 2, "B": 2, "C": 2, "I": 2, "F": 4, "R": 3}
"""Lattice points per conventional cell by the first letter of the Hermann-Mauguin symbol."""

LATTICE_SLOTS: dict[str, tuple[int, ...]] = {
    "triclinic": (SLOT_A, SLOT_B, SLOT_C, SLOT_ALPHA, SLOT_BETA, SLOT_GAMMA),
    "monoclinic": (SLOT_A, SLOT_B, SLOT_C, SLOT_BETA),
    "orthorhombic": (SLOT_A, SLOT_B, SLOT_C),
    "tetragonal": (SLOT_A, SLOT_C),
    "trigonal": (SLOT_A, SLOT_C),
    "hexagonal": (SLOT_A, SLOT_C),
    "cubic": (SLOT_A,),
}
"""The free lattice parameters of each crystal system, in sequence order."""


@dataclass(frozen=True)
class SpaceGroupTable:
    """The Wyckoff positions of a space group, in ITA order ('a' first)."""

    number: int
    letters: tuple[str, ...]
    multiplicities: tuple[int, ...]
    """Conventional-cell multiplicity of each letter."""
    free_axes: tuple[tuple[int, ...], ...]
    """The free coordinates (0 = x, 1 = y, 2 = z) of each letter's representative."""
    centring: int

    def has_free(self, index: int) -> bool:
        return bool(self.free_axes[index])

    def next_start(self, index: int) -> int:
        """The first letter index still allowed after a site on letter ``index``."""
        return index if self.has_free(index) else index + 1

    @cache  # noqa: B019 - tables are few and live for the process
    def reachable(self, start: int) -> np.ndarray:
        """(MAX_CONVENTIONAL + 1,) bool: which conventional atom counts the letters
        ``start..`` can hold (a letter with free coordinates any number of times, a special
        one at most once)."""
        cap = MAX_CONVENTIONAL
        ok = np.zeros(cap + 1, dtype=bool)
        ok[0] = True
        for index in range(start, len(self.letters)):
            m = self.multiplicities[index]
            if m > cap:
                continue
            if self.has_free(index):  # unbounded: ascending sweep
                for total in range(m, cap + 1):
                    ok[total] |= ok[total - m]
            else:  # at most once
                ok[m:] |= ok[: cap + 1 - m].copy()
        return ok

    def can_hold(self, count: int, start: int) -> bool:
        """Can the letters ``start..`` hold ``count`` conventional-cell atoms of one element?"""
        return 0 <= count <= MAX_CONVENTIONAL and bool(self.reachable(start)[count])


@cache
def sg_table(spacegroup: int) -> SpaceGroupTable:
    """The :class:`SpaceGroupTable` of a space group (pyxtal's tables, standard setting)."""
    W.crystal_system(spacegroup)  # checks 1-230
    group = W._group(spacegroup)
    letters = W.wyckoff_letters(spacegroup)
    positions = [W._wyckoff_position(spacegroup, letter) for letter in letters]
    free = tuple(tuple(a for a in range(3) if a not in set(p.get_frozen_axis())) for p in positions)
    return SpaceGroupTable(
        number=int(spacegroup),
        letters=letters,
        multiplicities=tuple(int(p.multiplicity) for p in positions),
        free_axes=free,
        centring=CENTRING[group.symbol[0]],
    )


def primitive_composition(rep: W.WyckoffRepresentation) -> dict[int, int]:
    """Atoms per element (atomic number -> count) in the primitive cell of ``rep``."""
    centring = sg_table(rep.spacegroup).centring
    counts: dict[int, int] = {}
    for site in rep.sites:
        counts[site.atomic_number] = counts.get(site.atomic_number, 0) + site.multiplicity
    if any(c % centring for c in counts.values()):
        raise XtalgenError(f"site multiplicities of {rep.compact} are not multiples of the centring")
    return {z: c // centring for z, c in sorted(counts.items())}


def realizable(spacegroup: int, composition: Mapping[int, int]) -> bool:
    """Can Wyckoff sites of ``spacegroup`` hold ``composition`` (primitive-cell counts) exactly?"""
    return realizable_counts(spacegroup, tuple(sorted(int(c) for c in composition.values())))


def realizable_counts(spacegroup: int, counts: tuple[int, ...]) -> bool:
    """``realizable`` for primitive-cell counts (which element holds which count is irrelevant)."""
    centring = sg_table(spacegroup).centring
    return completable(spacegroup, 0, tuple(sorted(c * centring for c in counts)))


@cache
def completable(spacegroup: int, start: int, counts: tuple[int, ...]) -> bool:
    """Can the letters ``start..`` of ``spacegroup`` hold ``counts`` exactly (conventional-cell
    atoms per element, sorted, no zeros), a special position at most once for all elements?

    An exact search over the letters in order, memoised on (letter, remaining counts).
    """
    if not counts:
        return True
    table = sg_table(spacegroup)
    if start >= len(table.letters) or not all(table.can_hold(c, start) for c in counts):
        return False
    m, nxt = table.multiplicities[start], table.next_start(start)
    for r in sorted(set(counts)):
        if r >= m:
            rest = list(counts)
            rest.remove(r)
            after = tuple(sorted([*rest, r - m] if r > m else rest))
            if completable(spacegroup, nxt, after):
                return True
    return completable(spacegroup, start + 1, counts)


def _lattice_values(rep: W.WyckoffRepresentation) -> list[float]:
    a, b, c, alpha, beta, gamma = rep.lattice_params
    by_slot = {SLOT_A: a, SLOT_B: b, SLOT_C: c, SLOT_ALPHA: alpha, SLOT_BETA: beta, SLOT_GAMMA: gamma}
    return [by_slot[s] for s in LATTICE_SLOTS[rep.crystal_system]]


def to_sequence(rep: W.WyckoffRepresentation, tokenizer: WyckoffTokenizer) -> tuple[list[str], list[int]]:
    """Tokens of ``rep`` in the grammar's order, and the slot of each token."""
    table = sg_table(rep.spacegroup)
    order = {letter: i for i, letter in enumerate(table.letters)}
    tokens, slots = ["<bos>", f"SG{rep.spacegroup}"], [SLOT_NONE, SLOT_SG]
    for z, count in primitive_composition(rep).items():
        if count > tokenizer.config.max_count:
            raise XtalgenError(f"{count} atoms of one element exceed the tokenizer's max_count")
        tokens += [element_symbol(z), f"N{count}"]
        slots += [SLOT_COMP_EL, SLOT_COMP_N]
    tokens.append("<sep>")
    slots.append(SLOT_COMP_EL)
    for site in sorted(rep.sites, key=lambda s: (order[s.letter], s.atomic_number, s.free_params)):
        index = order[site.letter]
        tokens += [f"WYK_{site.letter}", site.element]
        slots += [SLOT_LETTER, SLOT_SITE_EL]
        for axis, x in zip(table.free_axes[index], site.free_params):
            tokens.append(tokenizer.coord_token(x))
            slots.append(SLOT_X + axis)
    tokens.append("<stop>")
    slots.append(SLOT_LETTER)
    for slot, value in zip(LATTICE_SLOTS[rep.crystal_system], _lattice_values(rep)):
        tokens.append(tokenizer.length_token(value) if slot <= SLOT_C else tokenizer.angle_token(value))
        slots.append(slot)
    return tokens, slots


def from_sequence(tokens: Sequence[str], tokenizer: WyckoffTokenizer) -> W.WyckoffRepresentation:
    """The Wyckoff representation of a complete sequence (inverse of :func:`to_sequence`)."""
    toks = [t for t in tokens if t not in ("<bos>", "<pad>")]
    try:
        spacegroup = int(toks[0].removeprefix("SG"))
        table = sg_table(spacegroup)
        i = toks.index("<sep>") + 1
        sites = []
        while toks[i] != "<stop>":
            letter = toks[i].removeprefix("WYK_")
            index = table.letters.index(letter)
            element = toks[i + 1]
            atomic_number(element)
            n_free = len(table.free_axes[index])
            free = tuple(tokenizer.token_value(t) for t in toks[i + 2: i + 2 + n_free])
            sites.append(W.WyckoffSite(element, letter, table.multiplicities[index], free))
            i += 2 + n_free
        system = W.crystal_system(spacegroup)
        values = [tokenizer.token_value(t) for t in toks[i + 1: i + 1 + len(LATTICE_SLOTS[system])]]
    except (IndexError, ValueError) as exc:
        raise XtalgenError(f"incomplete or malformed Wyckoff sequence: {exc}") from None
    if len(values) != len(LATTICE_SLOTS[system]):
        raise XtalgenError("Wyckoff sequence ends before its lattice parameters")
    params = dict(zip(LATTICE_SLOTS[system], values))
    a = params[SLOT_A]
    b = params.get(SLOT_B, a)
    c = params.get(SLOT_C, a)
    gamma = 120.0 if system in ("trigonal", "hexagonal") else params.get(SLOT_GAMMA, 90.0)
    lattice = (a, b, c, params.get(SLOT_ALPHA, 90.0), params.get(SLOT_BETA, 90.0), gamma)
    return W.WyckoffRepresentation(spacegroup, lattice, tuple(sites))  # type: ignore[arg-type]


class VocabIndex:
    """Token ids of the grammar's token kinds, for building masks."""

    def __init__(self, tokenizer: WyckoffTokenizer) -> None:
        ids = tokenizer.token_to_id
        cfg = tokenizer.config
        self.size = tokenizer.vocab_size
        self.tokenizer = tokenizer
        self.sg = np.array([ids[f"SG{n}"] for n in range(1, 231)])  # index n - 1
        self.element = {z: ids[element_symbol(z)] for z in range(1, 119) if element_symbol(z) in ids}
        self.count = np.array([ids[f"N{k}"] for k in range(1, cfg.max_count + 1)])  # index k - 1
        self.letter = {c: ids[f"WYK_{c}"] for c in "abcdefghijklmnopqrstuvwxyzA"}
        self.coord = np.array([ids[f"X{k}"] for k in range(cfg.coord_bins)])
        self.length = np.array([ids[f"LEN{k}"] for k in range(1, tokenizer.num_length_bins)])
        self.angle = np.array([ids[f"ANG{k}"] for k in range(1, tokenizer.num_angle_bins)])
        self.sep, self.stop, self.bos, self.pad = ids["<sep>"], ids["<stop>"], ids["<bos>"], ids["<pad>"]
        self.id_to_token = tokenizer.vocab

    def slot_masks(self) -> np.ndarray:
        """(NUM_SLOTS, V) bool: the tokens each slot may hold (no context)."""
        mask = np.zeros((NUM_SLOTS, self.size), dtype=bool)
        mask[SLOT_SG, self.sg] = True
        mask[SLOT_COMP_EL, list(self.element.values())] = True
        mask[SLOT_COMP_EL, self.sep] = True
        mask[SLOT_COMP_N, self.count] = True
        mask[SLOT_LETTER, list(self.letter.values())] = True
        mask[SLOT_LETTER, self.stop] = True
        mask[SLOT_SITE_EL, list(self.element.values())] = True
        for slot in (SLOT_X, SLOT_Y, SLOT_Z):
            mask[slot, self.coord] = True
        for slot in (SLOT_A, SLOT_B, SLOT_C):
            mask[slot, self.length] = True
        for slot in (SLOT_ALPHA, SLOT_BETA, SLOT_GAMMA):
            mask[slot, self.angle] = True
        mask[SLOT_NONE, self.pad] = True
        return mask

    def letter_mask(self, spacegroup: int) -> np.ndarray:
        """(V,) bool: the letters of a space group and <stop>."""
        mask = np.zeros(self.size, dtype=bool)
        mask[[self.letter[c] for c in sg_table(spacegroup).letters]] = True
        mask[self.stop] = True
        return mask


class SequenceState:
    """The grammar of one sequence being generated: legal next tokens, slot, progress.

    Args:
        vocab: token ids.
        elements: atomic numbers allowed in a composition (the training elements).
        max_atoms: most atoms in the primitive cell.
        max_elements: most distinct elements.
        spacegroups: space groups allowed (None: all 230).
        spacegroup: a forced space group.
        composition: a forced composition (atomic number -> primitive-cell count).
    """

    def __init__(self, vocab: VocabIndex, *, elements: Sequence[int], max_atoms: int,
                 max_elements: int, spacegroups: Sequence[int] | None = None,
                 spacegroup: int | None = None, composition: Mapping[int, int] | None = None) -> None:
        self.vocab = vocab
        self.elements = sorted(set(elements))
        self.max_atoms, self.max_elements = max_atoms, max_elements
        self.spacegroups = sorted(spacegroups) if spacegroups is not None else list(range(1, 231))
        self.forced_sg = spacegroup
        self.forced_comp = dict(sorted(composition.items())) if composition is not None else None
        self.slot = SLOT_SG
        self.table: SpaceGroupTable | None = None
        self.comp: dict[int, int] = {}
        self.remaining: dict[int, int] = {}
        self.start = 0  # first letter index still allowed
        self.letter_index = -1
        self._last_element = 0
        self.pending_axes: list[int] = []
        self.lattice_slots: list[int] = []
        self.tokens: list[str] = ["<bos>"]
        self.done = False
        self.failed: str | None = None

    # -- what may come next --------------------------------------------------------------------
    def allowed(self) -> np.ndarray:
        """(V,) bool mask of the next token."""
        v, mask = self.vocab, np.zeros(self.vocab.size, dtype=bool)
        if self.done:
            mask[v.pad] = True
        elif self.slot == SLOT_SG:
            if self.forced_sg is not None:
                mask[v.sg[self.forced_sg - 1]] = True
            else:
                mask[v.sg[np.array(self.spacegroups) - 1]] = True
        elif self.slot == SLOT_COMP_EL:
            self._composition_elements(mask)
        elif self.slot == SLOT_COMP_N:
            self._composition_counts(mask)
        elif self.slot == SLOT_LETTER:
            self._letters(mask)
        elif self.slot == SLOT_SITE_EL:
            for z in self._site_elements(self.letter_index):
                mask[v.element[z]] = True
        elif self.slot in (SLOT_X, SLOT_Y, SLOT_Z):
            mask[v.coord] = True
        elif self.slot in (SLOT_A, SLOT_B, SLOT_C):
            mask[v.length] = True
        else:
            mask[v.angle] = True
        return mask

    def _composition_elements(self, mask: np.ndarray) -> None:
        v = self.vocab
        if self.forced_comp is not None:
            todo = [z for z in self.forced_comp if z not in self.comp]
            mask[v.element[todo[0]] if todo else v.sep] = True
            return
        if self.comp:  # the prefix is realisable by construction (see the counts)
            mask[v.sep] = True
        if len(self.comp) < self.max_elements and self._counts_for_new_element():
            last = max(self.comp, default=0)
            for z in self.elements:
                if z > last and z in v.element:
                    mask[v.element[z]] = True

    def _counts_for_new_element(self) -> list[int]:
        """Counts a further element may take: the atom limit kept and the composition still
        realisable in the space group (which does not depend on the element)."""
        counts = tuple(self.comp.values())
        room = min(self.max_atoms - sum(counts), len(self.vocab.count))
        number = self.table.number
        return [c for c in range(1, room + 1)
                if realizable_counts(number, tuple(sorted((*counts, c))))]

    def _composition_counts(self, mask: np.ndarray) -> None:
        v = self.vocab
        if self.forced_comp is not None:
            mask[v.count[self.forced_comp[self._last_element] - 1]] = True
            return
        mask[v.count[np.array(self._counts_for_new_element(), dtype=int) - 1]] = True

    def _feasible_after(self, index: int, z: int) -> bool:
        """Can the composition still be completed after a site of element z on letter index?"""
        table = self.table
        m, nxt = table.multiplicities[index], table.next_start(index)
        if self.remaining.get(z, 0) < m:
            return False
        left = (r - m if e == z else r for e, r in self.remaining.items())
        return completable(table.number, nxt, tuple(sorted(c for c in left if c > 0)))

    def _site_elements(self, index: int) -> list[int]:
        return [z for z in self.remaining if self._feasible_after(index, z)]

    def _letters(self, mask: np.ndarray) -> None:
        v, table = self.vocab, self.table
        if not any(self.remaining.values()):
            mask[v.stop] = True
            return
        for index in range(self.start, len(table.letters)):
            if self._site_elements(index):
                mask[v.letter[table.letters[index]]] = True

    # -- consume a token -------------------------------------------------------------------------
    def advance(self, token_id: int) -> None:
        if self.done:
            return
        if token_id < 0:
            self.done, self.failed = True, f"no legal token at {self._slot_name()}"
            return
        v = self.vocab
        token = v.id_to_token[token_id]
        self.tokens.append(token)
        if self.slot == SLOT_SG:
            self.table = sg_table(int(token.removeprefix("SG")))
            self.slot = SLOT_COMP_EL
        elif self.slot == SLOT_COMP_EL:
            if token_id == v.sep:
                self.remaining = {z: c * self.table.centring for z, c in self.comp.items()}
                self.slot = SLOT_LETTER
            else:
                self._last_element = atomic_number(token)
                self.slot = SLOT_COMP_N
        elif self.slot == SLOT_COMP_N:
            self.comp[self._last_element] = int(token.removeprefix("N"))
            self.slot = SLOT_COMP_EL
        elif self.slot == SLOT_LETTER:
            if token_id == v.stop:
                self.lattice_slots = list(LATTICE_SLOTS[W.crystal_system(self.table.number)])
                self.slot = self.lattice_slots.pop(0)
            else:
                self.letter_index = self.table.letters.index(token.removeprefix("WYK_"))
                self.start = self.table.next_start(self.letter_index)
                self.slot = SLOT_SITE_EL
        elif self.slot == SLOT_SITE_EL:
            z = atomic_number(token)
            self.remaining[z] -= self.table.multiplicities[self.letter_index]
            self.pending_axes = list(self.table.free_axes[self.letter_index])
            self._next_coordinate()
        elif self.slot in (SLOT_X, SLOT_Y, SLOT_Z):
            self._next_coordinate()
        elif self.lattice_slots:
            self.slot = self.lattice_slots.pop(0)
        else:
            self.done, self.slot = True, SLOT_NONE

    def _next_coordinate(self) -> None:
        self.slot = SLOT_X + self.pending_axes.pop(0) if self.pending_axes else SLOT_LETTER

    def _slot_name(self) -> str:
        names = ("end", "space group", "composition element", "atom count", "Wyckoff letter",
                 "site element", "x", "y", "z", "a", "b", "c", "alpha", "beta", "gamma")
        return names[self.slot]
