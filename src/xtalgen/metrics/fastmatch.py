"""StructureMatcher without the repeated work: reduce each structure once, prefilter pairs.

pymatgen's ``fit`` / ``get_rms_dist`` re-derive the Niggli-reduced primitive cell of *both*
structures for every pair. :class:`PreparedMatcher` does that once per structure and then
runs pymatgen's own matching on the reduced cells, so every answer is the one pymatgen gives
(a test compares both paths). Pairs that pymatgen would reject before any lattice search are
rejected here from a cached key:

* presets without supercells or subsets need equal compositions of the reduced cells
  (pymatgen's comparator hash plus its site-count check);
* :class:`~xtalgen.matching.DisorderedStructureMatcher` follows its own ``fit`` with
  the ordered and the Hume-Rothery-disordered cells of each structure cached.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure

from xtalgen.matching import (
    FORMULA_ATOL,
    FORMULA_RTOL,
    DisorderedStructureMatcher,
    disorder_structure,
    get_matcher,
    substitution_cliques,
)

__all__ = ["PreparedMatcher", "PreparedStructure"]


@dataclass
class PreparedStructure:
    """A structure with its cached reduced cell(s) and cheap comparison keys."""

    raw: Structure
    reduced: Structure
    key: tuple
    _disordered: Structure | None = field(default=None, repr=False)
    _disordered_done: bool = field(default=False, repr=False)


class PreparedMatcher:
    """Same answers as ``get_matcher(preset).fit`` / ``.get_rms_dist``, with cached reductions."""

    def __init__(self, preset: str) -> None:
        self.preset = preset
        self.matcher: StructureMatcher = get_matcher(preset)
        self._disordered = isinstance(self.matcher, DisorderedStructureMatcher)
        # the ordered matcher runs first for the disordered preset; both reduce cells alike
        self._base: StructureMatcher = (
            self.matcher._ordered if self._disordered else self.matcher  # type: ignore[attr-defined]
        )
        self._strict = not self._base._subset and not self._base._supercell

    # -- preparation ---------------------------------------------------------------------------
    def prepare(self, structure: Structure) -> PreparedStructure:
        """Reduce ``structure`` once (Niggli, then primitive) the way the preset does."""
        raw = structure.copy()
        if self._disordered:
            raw.remove_oxidation_states()
        (processed,) = self._base._process_species([raw])
        reduced = self._base._get_reduced_structure(processed, self._base._primitive_cell, True)
        key = (len(reduced), reduced.composition) if self._strict else ()
        return PreparedStructure(raw=raw, reduced=reduced, key=key)

    def _disordered_cell(self, item: PreparedStructure) -> Structure | None:
        if not item._disordered_done:
            cliques = substitution_cliques(item.raw)
            if cliques:
                item._disordered = self._reduce(disorder_structure(item.raw, cliques))
            item._disordered_done = True
        return item._disordered

    def _reduce(self, structure: Structure) -> Structure:
        (processed,) = self.matcher._process_species([structure])
        return self.matcher._get_reduced_structure(processed, self.matcher._primitive_cell, True)

    # -- pair queries --------------------------------------------------------------------------
    def fit(self, a: PreparedStructure, b: PreparedStructure) -> bool:
        """``matcher.fit(a, b)`` on the prepared structures."""
        if self._disordered:
            return self._fit_disordered(a, b)
        if self._strict and a.key != b.key:
            return False
        return self._plain_fit(a.reduced, b.reduced)

    def _plain_fit(self, s1: Structure, s2: Structure) -> bool:
        # pymatgen's own fit (not the disordered subclass's) on already reduced cells
        return bool(StructureMatcher.fit(self.matcher, s1, s2, skip_structure_reduction=True))

    def rms_dist(self, a: PreparedStructure, b: PreparedStructure) -> tuple[float, float] | None:
        """``matcher.get_rms_dist(a, b)``: (normalised rms, max distance) or None."""
        if self._disordered:
            raise ValueError("rms_dist is defined for the plain presets only")
        if self._strict and a.key != b.key:
            return None
        m = self.matcher
        s1, s2 = m._process_species([a.reduced, b.reduced])
        s1, s2, fu, s1_supercell = m._preprocess(s1, s2, skip_structure_reduction=True)
        match = m._match(s1, s2, fu, s1_supercell, use_rms=True, break_on_match=False)
        if match is None:
            return None
        return match[0], max(match[1])

    def _fit_disordered(self, a: PreparedStructure, b: PreparedStructure) -> bool:
        s1, s2 = a.raw, b.raw
        if s1 == s2:
            return True
        if s1.is_ordered and s2.is_ordered:
            if s1.composition.reduced_formula != s2.composition.reduced_formula:
                return False
            if a.key == b.key and self._base.fit(a.reduced, b.reduced, skip_structure_reduction=True):
                return True
            disordered = self._disordered_cell(a)
            if disordered is None:
                return False
            return self._plain_fit(disordered, b.reduced)
        if not s1.composition.fractional_composition.almost_equals(
            s2.composition.fractional_composition, atol=FORMULA_ATOL, rtol=FORMULA_RTOL
        ):
            return False
        return self._plain_fit(a.reduced, b.reduced)
