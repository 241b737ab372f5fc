"""Structure matching: the named ``StructureMatcher`` presets and MatterGen's disordered matcher.

The presets sit here, below the metrics and the relaxation, so that both name the same
tolerances. Nobody passes matcher tolerances around: a caller names its preset, and the
preset's settings are written next to every number in ``metrics.json``. Each factory returns a
fresh, configured pymatgen ``StructureMatcher`` (matchers are cheap to build and not
thread-safe to share across processes).

| preset | ltol | stol | angle_tol | other | used by |
|---|---|---|---|---|---|
| ``csp`` | 0.3 | 0.5 | 10 | pymatgen defaults | CSP match rate / RMSE (CDVAE, DiffCSP, FlowMM) |
| ``ordered`` | 0.2 | 0.3 | 5 | pymatgen defaults | MatterGen ``DefaultOrderedStructureMatcher`` |
| ``disordered`` | 0.2 | 0.3 | 5 | supercell, subset, order-disorder, Hume-Rothery | MatterGen default S.U.N. |
| ``rmsd`` | 0.5 | 0.5 | 10 | scale=False, attempt_supercell=True | MatterGen relaxation RMSD |

:class:`DisorderedStructureMatcher` (MatterGen's default S.U.N. matcher) follows MatterGen
(``evaluation/utils/structure_matcher.py`` at ac9ddd4) in ``fit(s1, s2)``:

1. Oxidation states are stripped; identical structures match.
2. Both ordered: reduced formulas must be equal; then the ordered matcher (ltol=0.2, stol=0.3,
   angle_tol=5, no supercell, no subset) is tried. If it fails and ``s1`` can be read as an
   ordered approximant of an alloy (a modified Hume-Rothery rule: relative atomic-radius
   difference <= 0.3 and Pauling electronegativity difference <= 1.0 for some element pair),
   the substitutable elements of ``s1`` become partial occupancies at their atomic fractions
   and the pair is re-fitted with the disordered settings (``OrderDisorderElementComparator``,
   ``attempt_supercell=True``, ``allow_subset=True``).
3. Either disordered: fractional compositions must agree (atol=1e-2, rtol=1e-1); then the
   disordered settings decide.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations
from typing import Any

from pymatgen.analysis.structure_matcher import (
    OrderDisorderElementComparator,
    StructureMatcher,
)
from pymatgen.core import Composition, Element, Structure

from xtalgen.errors import XtalgenError

__all__ = [
    "MATCHER_PRESETS",
    "MAX_RMSD",
    "DisorderedStructureMatcher",
    "can_substitute",
    "csp_matcher",
    "disorder_structure",
    "disordered_matcher",
    "get_matcher",
    "matcher_settings",
    "ordered_matcher",
    "rmsd_matcher",
    "substitution_cliques",
]

MAX_RMSD = 0.5
"""stol of the RMSD preset; MatterGen's penalty for a failed match (normalised units)."""

RELATIVE_RADIUS_THRESHOLD = 0.3
"""Largest relative atomic-radius difference of two substitutable elements."""

ELECTRONEGATIVITY_THRESHOLD = 1.0
"""Largest Pauling electronegativity difference of two substitutable elements."""

FORMULA_ATOL = 1e-2
FORMULA_RTOL = 1e-1


def can_substitute(el1: Element, el2: Element) -> bool:
    """Modified Hume-Rothery rule: may ``el1`` and ``el2`` share a site in an alloy?

    Elements without a tabulated atomic radius or electronegativity never substitute.
    """
    r1, r2 = el1.atomic_radius, el2.atomic_radius
    if r1 is None or r2 is None:
        return False
    r1, r2 = float(r1), float(r2)
    relative_radius = abs(r1 - r2) / ((r1 + r2) / 2.0)
    delta_x = abs(float(el1.X) - float(el2.X))  # NaN (noble gases) compares False below
    return bool(relative_radius <= RELATIVE_RADIUS_THRESHOLD and delta_x <= ELECTRONEGATIVITY_THRESHOLD)


def substitution_cliques(structure: Structure) -> list[list[Element]]:
    """Groups of mutually substitutable elements (connected components of the pair graph).

    Empty when no pair of the structure's elements can substitute.
    """
    elements = sorted(structure.composition.elements)
    parent = {el: el for el in elements}

    def root(el: Element) -> Element:
        while parent[el] != el:
            el = parent[el]
        return el

    paired: set[Element] = set()
    for el1, el2 in combinations(elements, 2):
        if can_substitute(el1, el2):
            parent[root(el2)] = root(el1)
            paired.update((el1, el2))
    groups: dict[Element, list[Element]] = {}
    for el in elements:
        if el in paired:
            groups.setdefault(root(el), []).append(el)
    return list(groups.values())


def disorder_structure(structure: Structure, cliques: list[list[Element]]) -> Structure:
    """A copy of ``structure`` whose clique elements become one mixed species per clique.

    Each element of a clique is replaced by the clique's composition, weighted by the atomic
    fractions of its elements in the whole structure.
    """
    disordered = structure.copy()
    disordered.remove_oxidation_states()
    composition = disordered.composition
    mapping: dict[Element, Composition] = {}
    for clique in cliques:
        fractions = {el: composition.get_atomic_fraction(el) for el in clique}
        total = sum(fractions.values())
        mixed = Composition({el: f / total for el, f in fractions.items()})
        mapping.update({el: mixed for el in clique})
    disordered.replace_species(mapping)
    return disordered


class DisorderedStructureMatcher(StructureMatcher):
    """MatterGen's ``DefaultDisorderedStructureMatcher``: frozen settings, no arguments."""

    def __init__(self) -> None:
        super().__init__(
            ltol=0.2,
            stol=0.3,
            angle_tol=5.0,
            primitive_cell=True,
            scale=True,
            attempt_supercell=True,
            allow_subset=True,
            comparator=OrderDisorderElementComparator(),
        )
        self._ordered = StructureMatcher(
            ltol=0.2,
            stol=0.3,
            angle_tol=5.0,
            primitive_cell=True,
            scale=True,
            attempt_supercell=False,
            allow_subset=False,
        )

    def fit(  # type: ignore[override]
        self, struct1: Structure, struct2: Structure, symmetric: bool = False
    ) -> bool:
        """True when the two structures are the same material (see the module docstring)."""
        s1 = struct1.copy()
        s1.remove_oxidation_states()
        s2 = struct2.copy()
        s2.remove_oxidation_states()
        if s1 == s2:
            return True
        if s1.is_ordered and s2.is_ordered:
            if s1.composition.reduced_formula != s2.composition.reduced_formula:
                return False
            if self._ordered.fit(s1, s2):
                return True
            cliques = substitution_cliques(s1)
            if not cliques:
                return False
            return super().fit(disorder_structure(s1, cliques), s2)
        if not s1.composition.fractional_composition.almost_equals(
            s2.composition.fractional_composition, atol=FORMULA_ATOL, rtol=FORMULA_RTOL
        ):
            return False
        return super().fit(s1, s2)


def csp_matcher() -> StructureMatcher:
    """CSP / reconstruction matcher: ``StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3)``."""
    return StructureMatcher(ltol=0.3, stol=0.5, angle_tol=10)


def ordered_matcher() -> StructureMatcher:
    """pymatgen defaults (ltol=0.2, stol=0.3, angle_tol=5): MatterGen's ordered preset."""
    return StructureMatcher(
        ltol=0.2,
        stol=0.3,
        angle_tol=5,
        primitive_cell=True,
        scale=True,
        attempt_supercell=False,
        allow_subset=False,
    )


def disordered_matcher() -> StructureMatcher:
    """MatterGen's default S.U.N. matcher (order-disorder aware, Hume-Rothery fallback).

    See :class:`DisorderedStructureMatcher` for the ``fit`` logic.
    """
    return DisorderedStructureMatcher()


def rmsd_matcher() -> StructureMatcher:
    """MatterGen's relaxation-RMSD matcher (loose, unscaled, supercells allowed)."""
    return StructureMatcher(
        ltol=0.5,
        stol=MAX_RMSD,
        angle_tol=10,
        primitive_cell=True,
        scale=False,
        attempt_supercell=True,
        allow_subset=False,
    )


MATCHER_PRESETS: dict[str, Callable[[], StructureMatcher]] = {
    "csp": csp_matcher,
    "ordered": ordered_matcher,
    "disordered": disordered_matcher,
    "rmsd": rmsd_matcher,
}
"""Preset name -> factory."""


def get_matcher(name: str) -> StructureMatcher:
    """The matcher of preset ``name`` (one of :data:`MATCHER_PRESETS`)."""
    try:
        return MATCHER_PRESETS[name]()
    except KeyError:
        known = ", ".join(MATCHER_PRESETS)
        raise XtalgenError(f"unknown matcher preset {name!r}; choose one of: {known}") from None


def matcher_settings(name: str) -> dict[str, Any]:
    """JSON-friendly settings of preset ``name`` (recorded in metrics.json)."""
    matcher = get_matcher(name)
    settings: dict[str, Any] = {
        "preset": name,
        "class": type(matcher).__name__,
        "ltol": matcher.ltol,
        "stol": matcher.stol,
        "angle_tol": matcher.angle_tol,
        "primitive_cell": matcher._primitive_cell,
        "scale": matcher._scale,
        "attempt_supercell": matcher._supercell,
        "allow_subset": matcher._subset,
        "comparator": type(matcher._comparator).__name__,
    }
    return settings
