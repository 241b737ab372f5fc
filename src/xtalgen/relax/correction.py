"""Materials Project 2020 energy corrections for potential energies.

Potentials trained on MPtrj (CHGNet, MACE-MP, SevenNet, MatterSim) reproduce *raw* MP GGA/GGA+U
energies; MP's phase diagrams use them after ``MaterialsProject2020Compatibility`` (anion,
sulfide and GGA/GGA+U mixing corrections). As MatterGen does (``VasprunLike``), the entry is
labelled with the Hubbard U values MPRelaxSet would have used, so the corrections that apply to
a real calculation apply here. Units: eV (total) and eV/atom.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import TYPE_CHECKING

from xtalgen.crystal import Crystal

if TYPE_CHECKING:
    from pymatgen.entries.compatibility import MaterialsProject2020Compatibility
    from pymatgen.entries.computed_entries import ComputedStructureEntry

__all__ = ["CORRECTION_SCHEMES", "corrected_energy", "mp2020_entry"]

CORRECTION_SCHEMES = ("MP2020", "none")
"""Accepted values of ``correction``: MP2020 (default) or no correction."""


@lru_cache(maxsize=1)
def _compatibility() -> MaterialsProject2020Compatibility:
    from pymatgen.entries.compatibility import MaterialsProject2020Compatibility

    return MaterialsProject2020Compatibility(check_potcar=False)


def mp2020_entry(crystal: Crystal, energy: float) -> ComputedStructureEntry:
    """A ComputedStructureEntry of total ``energy`` (eV) labelled as an MPRelaxSet calculation."""
    from pymatgen.entries.computed_entries import ComputedStructureEntry

    structure = crystal.to_pymatgen()
    composition = structure.composition
    elements = sorted(composition.elements, key=lambda el: el.X)
    u_values = _compatibility().u_settings.get(elements[-1].symbol, {})
    hubbards = {el.symbol: u_values[el.symbol] for el in elements if el.symbol in u_values}
    parameters = {
        "run_type": "GGA+U" if hubbards else "GGA",
        "is_hubbard": bool(hubbards),
        "hubbards": hubbards,
        "software": "xtalgen",  # no POTCAR check: the energy comes from a potential
    }
    return ComputedStructureEntry(structure, energy, parameters=parameters)


def corrected_energy(crystal: Crystal, energy: float, correction: str = "MP2020") -> float:
    """Total energy (eV) after the correction scheme; NaN when MP2020 rejects the entry."""
    if correction == "none":
        return float(energy)
    if correction != "MP2020":
        raise ValueError(f"unknown correction {correction!r}; use one of {CORRECTION_SCHEMES}")
    entry = mp2020_entry(crystal, energy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        processed = _compatibility().process_entry(entry)
    return float("nan") if processed is None else float(processed.energy)
