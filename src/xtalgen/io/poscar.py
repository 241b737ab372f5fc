"""VASP POSCAR/CONTCAR (VASP 5, with the element symbols line): one ordered structure."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from xtalgen.crystal import Crystal
from xtalgen.io.base import FormatError, from_structure


def read_poscar(text: str) -> list[Crystal]:
    """The crystal of a POSCAR text (pymatgen ``Poscar``; velocities are ignored)."""
    from pymatgen.io.vasp import Poscar

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        poscar = Poscar.from_str(text, read_velocities=False)
    for record in caught:
        # pymatgen then names the species H, He, Li, ...: refuse rather than guess
        if "Elements in POSCAR cannot be determined" in str(record.message):
            raise FormatError("no element symbols line (VASP 4 format): species are unknown")
        warnings.warn_explicit(record.message, record.category, record.filename, record.lineno)
    return [from_structure(poscar.structure)]


def write_poscar(crystals: Sequence[Crystal]) -> str:
    """POSCAR text (direct coordinates, 16 significant figures) of exactly one ordered crystal."""
    from pymatgen.io.vasp import Poscar

    if len(crystals) != 1:
        raise FormatError(
            f"a POSCAR holds one structure, got {len(crystals)}: "
            "write to a folder or another format"
        )
    if not crystals[0].is_ordered:
        raise FormatError("POSCAR cannot hold partial occupancies; use CIF, JSON or extxyz")
    return Poscar(crystals[0].to_pymatgen(), comment=crystals[0].formula).get_str()
