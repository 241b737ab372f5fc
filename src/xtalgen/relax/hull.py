"""Energy above the convex hull, in formation-energy space, per chemical system.

A relaxed crystal's potential energy is corrected (MP2020 by default), turned into a formation
energy against the reference's elemental chemical potentials and placed on pymatgen's
``PhaseDiagram`` of the reference entries of its chemical system and **all** its subsystems;
``get_e_above_hull(allow_negative=True)``, so a structure below the hull gets a negative value.
Elements the reference does not cover give ``error = "no reference for element X"`` (E_hull NaN).
Chemical systems of more than :data:`MAX_PHASE_DIAGRAM_ELEMENTS` elements (a generated crystal
can hold ten) skip the phase diagram, whose facet enumeration grows combinatorially with the
dimension: the hull energy at the composition is then the linear programme min sum_i w_i E_i
subject to sum_i w_i x_i = x, w >= 0 over the same entries (the lower convex envelope at x,
exact; solved by scipy's HiGHS). Units: eV/atom throughout.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from xtalgen.crystal import Crystal
from xtalgen.relax.correction import corrected_energy
from xtalgen.relax.reference import HullReference, load_reference

if TYPE_CHECKING:
    from pymatgen.analysis.phase_diagram import PhaseDiagram
    from pymatgen.core import Composition

__all__ = ["MAX_PHASE_DIAGRAM_ELEMENTS", "ConvexHull", "HullResult", "e_above_hull"]

MAX_PHASE_DIAGRAM_ELEMENTS = 6
"""Largest chemical system placed on a pymatgen ``PhaseDiagram``; larger ones use the LP."""


@dataclass(frozen=True)
class HullResult:
    """E_hull of one structure. ``decomposition``: material id -> phase fraction of the hull
    phases below it; ``error``: None or why E_hull could not be computed."""

    e_above_hull: float = math.nan
    formation_energy_per_atom: float = math.nan
    corrected_energy_per_atom: float = math.nan
    correction_per_atom: float = math.nan
    decomposition: dict[str, float] = field(default_factory=dict)
    error: str | None = None


class ConvexHull:
    """The reference hull; phase diagrams are built lazily per chemical system and cached."""

    def __init__(self, reference: HullReference | None = None) -> None:
        self.reference = reference or load_reference()
        self._by_chemsys: dict[frozenset[str], list[int]] = defaultdict(list)
        self._compositions: list[Composition] = []
        from pymatgen.core import Composition

        for i, formula in enumerate(self.reference.formulas):
            comp = Composition(formula)
            self._compositions.append(comp)
            self._by_chemsys[frozenset(el.symbol for el in comp.elements)].append(i)
        self._diagrams: dict[frozenset[str], PhaseDiagram] = {}

    def missing_elements(self, composition: Composition) -> list[str]:
        """Elements of ``composition`` without an elemental reference."""
        mu = self.reference.elemental_energy_per_atom
        return sorted(el.symbol for el in composition.elements if el.symbol not in mu)

    def _entries(self, chemsys: frozenset[str]) -> list[int]:
        """Indices of the reference entries in ``chemsys`` and all its subsystems (finite
        formation energies only)."""
        elements = sorted(chemsys)
        found = []
        for k in range(1, len(elements) + 1):
            for subset in itertools.combinations(elements, k):
                found += [i for i in self._by_chemsys.get(frozenset(subset), ())
                          if math.isfinite(self.reference.formation_energy_per_atom[i])]
        return found

    def phase_diagram(self, chemsys: frozenset[str]) -> PhaseDiagram:
        """PhaseDiagram (formation-energy space) of ``chemsys`` and all its subsystems."""
        if chemsys not in self._diagrams:
            from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
            from pymatgen.core import Composition

            entries = [PDEntry(Composition({el: 1}), 0.0, attribute=el) for el in sorted(chemsys)]
            for i in self._entries(chemsys):
                comp = self._compositions[i]
                energy = self.reference.formation_energy_per_atom[i] * comp.num_atoms
                entries.append(PDEntry(comp, energy, attribute=self.reference.ids[i]))
            self._diagrams[chemsys] = PhaseDiagram(entries)
        return self._diagrams[chemsys]

    def hull_energy_lp(self, composition: Composition) -> tuple[float, dict[str, float]]:
        """Hull formation energy (eV/atom) at ``composition`` and the decomposition (id or
        element -> phase fraction), by linear programming over the entries of its system."""
        import numpy as np
        from scipy.optimize import linprog

        elements = sorted(el.symbol for el in composition.elements)
        chemsys = frozenset(elements)
        indices = self._entries(chemsys)
        names = elements + [self.reference.ids[i] for i in indices]
        fractions = np.zeros((len(elements), len(names)))
        fractions[:, : len(elements)] = np.eye(len(elements))  # the elements, E_f = 0
        energies = np.zeros(len(names))
        for j, i in enumerate(indices, start=len(elements)):
            comp = self._compositions[i]
            fractions[:, j] = [comp.get_atomic_fraction(el) for el in elements]
            energies[j] = self.reference.formation_energy_per_atom[i]
        target = [composition.get_atomic_fraction(el) for el in elements]
        solution = linprog(energies, A_eq=fractions, b_eq=target, bounds=(0, None),
                           method="highs")
        if not solution.success:
            raise RuntimeError(f"hull LP failed: {solution.message}")
        decomposition = {names[j]: round(float(w), 6) for j, w in enumerate(solution.x)
                         if w > 1e-9}
        return float(solution.fun), decomposition

    def formation_energy_per_atom(self, composition: Composition, energy_per_atom: float) -> float:
        """Formation energy (eV/atom) of a corrected energy per atom against the references."""
        mu = self.reference.elemental_energy_per_atom
        return energy_per_atom - sum(
            composition.get_atomic_fraction(el) * mu[el.symbol] for el in composition.elements
        )

    def e_above_hull_of_formation(
        self, composition: Composition, formation_energy_per_atom: float
    ) -> HullResult:
        """E_hull of a composition with a known formation energy per atom (eV/atom)."""
        from pymatgen.analysis.phase_diagram import PDEntry

        missing = self.missing_elements(composition)
        if missing:
            return HullResult(error=f"no reference for element {', '.join(missing)}")
        if not math.isfinite(formation_energy_per_atom):
            return HullResult(error="energy is NaN")
        chemsys = frozenset(el.symbol for el in composition.elements)
        if len(chemsys) > MAX_PHASE_DIAGRAM_ELEMENTS:
            hull_energy, decomposition = self.hull_energy_lp(composition)
            return HullResult(e_above_hull=float(formation_energy_per_atom - hull_energy),
                              formation_energy_per_atom=float(formation_energy_per_atom),
                              decomposition=decomposition)
        diagram = self.phase_diagram(chemsys)
        entry = PDEntry(composition, formation_energy_per_atom * composition.num_atoms)
        decomp, e_hull = diagram.get_decomp_and_e_above_hull(entry, allow_negative=True)
        return HullResult(
            e_above_hull=float(e_hull),
            formation_energy_per_atom=float(formation_energy_per_atom),
            decomposition={
                str(e.attribute or e.name): round(float(x), 6) for e, x in decomp.items()
            },
        )

    def evaluate(
        self, crystal: Crystal, energy_per_atom: float, correction: str = "MP2020"
    ) -> HullResult:
        """E_hull of ``crystal`` with potential energy ``energy_per_atom`` (eV/atom).

        ``correction``: the scheme applied to the energy before it meets the reference (which
        is MP2020-corrected): ``Potential.correction`` ("none" for CHGNet, "MP2020" for
        potentials trained on raw MP energies).
        """
        composition = crystal.composition
        missing = self.missing_elements(composition)
        if missing:
            return HullResult(error=f"no reference for element {', '.join(missing)}")
        if not math.isfinite(energy_per_atom):
            return HullResult(error="energy is NaN")
        n = crystal.num_sites
        try:
            corrected = corrected_energy(crystal, energy_per_atom * n, correction) / n
        except Exception as exc:  # MP2020 rejects some entries (unknown oxidation states, ...)
            return HullResult(error=f"correction failed: {type(exc).__name__}: {exc}"[:200])
        if not math.isfinite(corrected):
            return HullResult(error=f"{correction} correction does not apply")
        e_form = self.formation_energy_per_atom(composition, corrected)
        result = self.e_above_hull_of_formation(composition, e_form)
        return HullResult(
            e_above_hull=result.e_above_hull,
            formation_energy_per_atom=result.formation_energy_per_atom,
            corrected_energy_per_atom=corrected,
            correction_per_atom=corrected - energy_per_atom,
            decomposition=result.decomposition,
            error=result.error,
        )


_DEFAULT: ConvexHull | None = None


def e_above_hull(
    crystals: Sequence[Crystal],
    energies_per_atom: Sequence[float],
    *,
    hull: ConvexHull | None = None,
    correction: str = "MP2020",
) -> list[HullResult]:
    """E_hull (eV/atom) of relaxed crystals with raw potential energies (eV/atom).

    ``hull`` defaults to the bundled MP-20 reference (loaded once per process); ``correction``
    as in :meth:`ConvexHull.evaluate` (pass ``potential.correction``).
    """
    global _DEFAULT
    if hull is None:
        if _DEFAULT is None:
            _DEFAULT = ConvexHull()
        hull = _DEFAULT
    return [hull.evaluate(c, e, correction) for c, e in zip(crystals, energies_per_atom)]
