"""Shared pieces of the file readers and writers: formats, errors, warnings, checks."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xtalgen.crystal import MAX_Z, Crystal
from xtalgen.errors import XtalgenError

if TYPE_CHECKING:
    from pymatgen.core import Structure

FORMATS: tuple[str, ...] = ("cif", "poscar", "extxyz", "json")
"""Supported format names (``fmt`` arguments); aliases: ``vasp`` = poscar, ``xyz`` = extxyz."""

EXTENSIONS = {
    ".cif": "cif",
    ".vasp": "poscar",
    ".poscar": "poscar",
    ".extxyz": "extxyz",
    ".xyz": "extxyz",
    ".json": "json",
}
WRITE_SUFFIX = {"cif": ".cif", "poscar": ".vasp", "extxyz": ".extxyz", "json": ".json"}
FORMAT_NAMES = {"cif": "CIF", "poscar": "POSCAR", "extxyz": "extxyz", "json": "JSON"}
_ALIASES = {"vasp": "poscar", "contcar": "poscar", "xyz": "extxyz"}

MIN_SITE_DISTANCE = 0.5
"""Sites closer than this (angstrom, periodic images included) trigger an overlap warning."""


class StructureFileError(XtalgenError):
    """A structure file that cannot be read or written. Message: ``"<path>: <reason>"``."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = one_line(reason)
        super().__init__(f"{self.path}: {self.reason}")


class StructureFileWarning(UserWarning):
    """Something suspicious but readable in a structure file; the message names the file."""


class OverlappingSitesWarning(StructureFileWarning):
    """Two sites (or a site and a periodic image) closer than :data:`MIN_SITE_DISTANCE`."""


class FormatError(Exception):
    """Internal: a file's content is wrong; :func:`xtalgen.io.read` adds the path."""


def one_line(text: object) -> str:
    """Collapse whitespace and newlines, so that a message fits on one line."""
    return " ".join(str(text).split()) or "unknown error"


def is_poscar_name(path: Path) -> bool:
    """``POSCAR``, ``CONTCAR``, and names like ``POSCAR_1``, ``CONTCAR.relax`` (not ``poscars``)."""
    return re.match(r"(POSCAR|CONTCAR)(?![A-Za-z])", path.name, flags=re.IGNORECASE) is not None


COMPRESSIONS = (".gz", ".bz2", ".xz")
"""Compressed files (``x.cif.gz``, ``CONTCAR.bz2``) are read and written transparently."""


def compression(path: Path) -> str | None:
    """``".gz"``, ``".bz2"``, ``".xz"`` for a compressed file name, else None."""
    suffix = path.suffix.lower()
    return suffix if suffix in COMPRESSIONS else None


def detect_format(path: str | Path) -> str:
    """Format name of ``path`` from its extension (or a ``POSCAR``/``CONTCAR`` file name).

    A compression suffix is looked through: ``x.cif.gz`` is CIF.
    """
    path = Path(path)
    inner = path.with_suffix("") if compression(path) else path
    suffix = inner.suffix.lower()
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    if is_poscar_name(inner):
        return "poscar"
    supported = ", ".join([*EXTENSIONS, "POSCAR*", "CONTCAR*"])
    shown = f"extension {suffix!r}" if suffix else "no extension"
    reason = f"unsupported file type ({shown}); supported: {supported} (optionally .gz/.bz2/.xz)"
    raise StructureFileError(path, reason)


def normalise_format(fmt: str) -> str:
    """Canonical format name of ``fmt`` (case and a leading dot ignored; aliases resolved)."""
    name = fmt.lower().lstrip(".")
    name = _ALIASES.get(name, name)
    if name not in FORMATS:
        raise XtalgenError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return name


def plain(value: Any) -> Any:
    """Numpy arrays and scalars as plain Python lists and numbers."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def from_structure(structure: Structure) -> Crystal:
    """Crystal from a parsed pymatgen Structure, refusing dummy (unknown) species."""
    from pymatgen.core import DummySpecies

    for site in structure:
        for sp in site.species:
            if isinstance(sp, DummySpecies) or not 1 <= getattr(sp, "Z", 0) <= MAX_Z:
                raise FormatError(f"unknown element symbol {sp.symbol!r}")
    return Crystal.from_pymatgen(structure)


def close_pairs(crystal: Crystal, cutoff: float = MIN_SITE_DISTANCE) -> tuple[np.ndarray, ...]:
    """(i, j, distance) of the site pairs closer than ``cutoff`` angstrom, periodic images
    included (i <= j; i == j is a site and its own image); pymatgen's neighbour search."""
    from pymatgen.optimization.neighbors import find_points_in_spheres

    cart = np.ascontiguousarray(crystal.cart_coords)
    lattice = np.ascontiguousarray(crystal.lattice)
    pbc = np.ones(3, dtype=np.int64)
    i, j, images, dist = find_points_in_spheres(cart, cart, float(cutoff), pbc, lattice)
    keep = (i < j) | ((i == j) & np.any(images != 0, axis=1))
    return i[keep], j[keep], dist[keep]


def warn_overlaps(crystal: Crystal, where: str, stacklevel: int = 2) -> None:
    """Warn when two sites (or a site and its own image) are closer than MIN_SITE_DISTANCE."""
    i, j, dist = close_pairs(crystal)
    if not len(dist):
        return
    k = int(np.argmin(dist))
    a, b = int(i[k]), int(j[k])
    sym = crystal.symbols
    warnings.warn(
        f"{where}: {len(dist)} site pair(s) closer than {MIN_SITE_DISTANCE} A (overlapping atoms);"
        f" closest: site {a} ({sym[a]}) and site {b} ({sym[b]}) at {dist[k]:.3f} A",
        OverlappingSitesWarning,
        stacklevel=stacklevel + 1,
    )
