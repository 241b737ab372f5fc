"""Shared pieces of the search generators: compositions, budgets, symmetry, provenance.

Conventions: compositions are pymatgen ``Composition`` objects of one cell; a requested
composition such as ``"Li2MnO3"`` fixes the ratio, and the cell holds ``formula_units`` copies
of the reduced formula. Space groups by number (1-230) from spglib with ``symprec=0.1``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError

__all__ = [
    "SYMPREC",
    "BudgetTracker",
    "SearchBudget",
    "apply_overrides",
    "cell_composition",
    "detect_spacegroup",
    "distinct",
    "formula_unit_choices",
    "min_distance_ok",
    "parse_composition",
    "validate_spacegroup",
]

SYMPREC = 0.1
"""spglib tolerance (angstrom) for the detected space group written into provenance."""



def apply_overrides(config: Any, overrides: Mapping[str, Any], generator: str) -> Any:
    """A copy of the dataclass ``config`` with keyword ``overrides``; unknown keys are an error."""
    import dataclasses

    known = {field.name for field in dataclasses.fields(config)}
    for key in overrides:
        if key not in known:
            raise XtalgenError(f"unknown {generator} setting {key!r}")
    return dataclasses.replace(config, **overrides)

def parse_composition(composition: str | Mapping[str, float]) -> Any:
    """A pymatgen ``Composition`` from ``"Li2MnO3"`` or ``{"Li": 2, "Mn": 1, "O": 3}``.

    Raises XtalgenError for an unreadable formula, unknown elements or fractional amounts.
    """
    from pymatgen.core import Composition, Element

    try:
        comp = Composition(composition)
    except Exception as exc:
        raise XtalgenError(f"cannot read composition {composition!r}: {exc}") from None
    if comp.num_atoms <= 0:
        raise XtalgenError(f"composition {composition!r} has no atoms")
    for element, amount in comp.items():
        if not isinstance(element, Element) or element.symbol in {"D", "T"}:
            raise XtalgenError(f"composition {composition!r} has an unknown element {element}")
        if abs(amount - round(amount)) > 1e-6 or amount < 0.5:
            raise XtalgenError(
                f"composition {composition!r} needs whole atom counts, got {element}={amount}"
            )
    return comp


def validate_spacegroup(spacegroup: int | None) -> int | None:
    """``spacegroup`` as an int in 1-230 (or None); XtalgenError otherwise."""
    if spacegroup is None:
        return None
    if not 1 <= int(spacegroup) <= 230:
        raise XtalgenError(f"space group must be 1-230, got {spacegroup}")
    return int(spacegroup)


def formula_unit_choices(
    composition: Any, formula_units: Sequence[int] | None, max_atoms: int
) -> list[int]:
    """Allowed numbers of reduced formula units per cell.

    ``formula_units`` fixes them; otherwise every Z with ``Z * atoms_per_formula <= max_atoms``.
    """
    reduced, _ = composition.get_reduced_composition_and_factor()
    per_fu = round(reduced.num_atoms)
    if formula_units:
        return [int(z) for z in formula_units]
    choices = [z for z in range(1, max_atoms // per_fu + 1)]
    if not choices:
        raise XtalgenError(
            f"{reduced.reduced_formula} has {per_fu} atoms per formula unit, more than "
            f"max_atoms={max_atoms}"
        )
    return choices


def cell_composition(composition: Any, z: int) -> tuple[list[str], list[int]]:
    """(element symbols, counts) of a cell holding ``z`` reduced formula units."""
    reduced, _ = composition.get_reduced_composition_and_factor()
    symbols = [el.symbol for el in reduced.elements]
    counts = [round(reduced[el]) * int(z) for el in reduced.elements]
    return symbols, counts


@dataclass(frozen=True)
class SearchBudget:
    """Limits of one ``generate`` call: potential evaluations and/or wall time (seconds).

    ``None`` means unlimited. A search stops drawing or relaxing candidates once either
    limit is reached and returns what it has (with a warning if fewer than requested).
    """

    max_potential_calls: int | None = None
    max_wall_time: float | None = None


class BudgetTracker:
    """Counts potential calls and wall time against a :class:`SearchBudget`."""

    def __init__(self, budget: SearchBudget | None) -> None:
        self.budget = budget or SearchBudget()
        self.start = time.perf_counter()
        self.potential_calls = 0

    def add_calls(self, n: int) -> None:
        self.potential_calls += int(n)

    @property
    def elapsed(self) -> float:
        """Seconds since the tracker started."""
        return time.perf_counter() - self.start

    def exhausted(self) -> bool:
        """True once either limit is reached."""
        b = self.budget
        if b.max_potential_calls is not None and self.potential_calls >= b.max_potential_calls:
            return True
        return b.max_wall_time is not None and self.elapsed >= b.max_wall_time

    def remaining_calls(self) -> int | None:
        """Potential calls left (None when unlimited)."""
        if self.budget.max_potential_calls is None:
            return None
        return max(0, self.budget.max_potential_calls - self.potential_calls)


def detect_spacegroup(crystal: Crystal, symprec: float = SYMPREC) -> tuple[int, str]:
    """(space-group number, international symbol) by spglib; (1, "P1") when it fails."""
    import spglib

    cell = (np.asarray(crystal.lattice), np.asarray(crystal.frac_coords), np.asarray(crystal.species))
    try:
        dataset = spglib.get_symmetry_dataset(cell, symprec=symprec)
    except Exception:
        dataset = None
    if dataset is None:
        return 1, "P1"
    return int(dataset.number), str(dataset.international)


_RADII: dict[int, float] = {}


def _covalent_radius(z: int) -> float:
    if not _RADII:
        from ase.data import covalent_radii

        _RADII.update({i: float(r) for i, r in enumerate(covalent_radii)})
    return _RADII.get(int(z), 1.5)


def min_distance_ok(crystal: Crystal, factor: float = 0.6) -> bool:
    """True when no two atoms are closer than ``factor`` x the sum of their covalent radii."""
    if crystal.num_sites < 2 and crystal.volume > 1.0:
        lengths = np.linalg.norm(crystal.lattice, axis=1)
        return bool(lengths.min() >= factor * 2 * _covalent_radius(crystal.species[0]))
    structure = crystal.to_pymatgen()
    dist = structure.distance_matrix
    radii = np.array([_covalent_radius(z) for z in crystal.species])
    limit = factor * (radii[:, None] + radii[None, :])
    np.fill_diagonal(dist, np.inf)
    if not np.all(dist >= limit):
        return False
    # self-images: a lattice vector shorter than an atom's diameter
    lengths = np.linalg.norm(crystal.lattice, axis=1)
    return bool(lengths.min() >= factor * 2 * radii.min())


def distinct(
    crystals: Iterable[Crystal],
    n: int | None = None,
    matcher: Any = None,
    key: Callable[[Crystal], Hashable] | None = None,
) -> list[Crystal]:
    """Greedy first-occurrence de-duplication (pymatgen ``StructureMatcher`` defaults).

    Keeps input order, so pass crystals sorted best-first; stops after ``n`` distinct ones
    (``crystals`` may be a lazy iterable: nothing after the ``n``-th distinct one is drawn).
    Only crystals with equal ``key`` (default: the reduced formula) are compared.
    """
    if matcher is None:
        from pymatgen.analysis.structure_matcher import StructureMatcher

        matcher = StructureMatcher()
    key = key or (lambda c: c.formula)
    kept: list[Crystal] = []
    buckets: dict[Hashable, list[Any]] = {}
    for crystal in crystals:
        structure = crystal.to_pymatgen()
        bucket = buckets.setdefault(key(crystal), [])
        if any(matcher.fit(structure, other) for other in bucket):
            continue
        kept.append(crystal)
        bucket.append(structure)
        if n is not None and len(kept) >= n:
            break
    return kept
