"""Read and write crystal structure files: CIF, POSCAR/CONTCAR, extxyz and pymatgen JSON.

The format is chosen by file name:

* ``*.cif``: CIF, one structure per data block (pymatgen; sites come back sorted by
  electronegativity; P1 with 8 significant figures when written).
* ``POSCAR*``, ``CONTCAR*``, ``*.vasp``, ``*.poscar``: VASP 5 POSCAR, one ordered structure.
* ``*.extxyz``, ``*.xyz``: extended XYZ (ASE), one structure per frame; needs ``Lattice=``.
* ``*.json``: a pymatgen ``Structure.as_dict()`` or a list of them.

Any of these may be compressed (``.gz``, ``.bz2``, ``.xz``: ``x.cif.gz``, ``CONTCAR.bz2``).

Every crystal read from a file records ``properties["source"]``: the file name (the path
relative to the folder for :func:`read_many`), plus ``#<index>`` (0-based) when the file holds
several structures. Properties and partial occupancies survive the CIF, extxyz and JSON round
trips (CIF: in a ``_xtalgen_properties_json`` field). Bad input raises :class:`StructureFileError` with the one-line
message ``"<path>: <what is wrong>"``; sites closer than :data:`MIN_SITE_DISTANCE` angstrom
give an :class:`OverlappingSitesWarning`.

>>> from xtalgen import io
>>> crystals = io.read("NaCl.cif")                   # doctest: +SKIP
>>> io.write(crystals, "out/", fmt="poscar")         # doctest: +SKIP
"""

from __future__ import annotations

from xtalgen.io.base import (
    FORMATS,
    MIN_SITE_DISTANCE,
    OverlappingSitesWarning,
    StructureFileError,
    StructureFileWarning,
    detect_format,
)
from xtalgen.io.readwrite import ReadResult, read, read_many, write

__all__ = [
    "FORMATS",
    "MIN_SITE_DISTANCE",
    "OverlappingSitesWarning",
    "ReadResult",
    "StructureFileError",
    "StructureFileWarning",
    "detect_format",
    "read",
    "read_many",
    "write",
]
