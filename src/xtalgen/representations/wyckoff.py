"""Wyckoff representation: space group, conventional lattice parameters and Wyckoff sites.

A crystal is described by its space group number (1-230, standard ITA setting as in pyxtal:
hexagonal axes for rhombohedral groups, origin choice 2 where there are two), the parameters of
its conventional cell (angstrom, degrees) and one entry per symmetry-distinct site: element,
Wyckoff letter with multiplicity, and the free coordinates (x, y and/or z, fractional, in [0, 1))
of the site's representative position, i.e. the first coordinate triplet listed for that Wyckoff
position. ``decode`` rebuilds the conventional cell by applying the Wyckoff position's symmetry
operations to the representative; ``encode`` finds the symmetry with pyxtal (``from_seed``,
spglib underneath) at ``symprec`` = 0.1 angstrom, the field's usual tolerance.

Compact string form (the "Wyckoff label", without the continuous parameters)::

    225 | Na 4a | Cl 4b

Full string form (round-trips through ``WyckoffRepresentation.from_string``)::

    225 | 5.64 5.64 5.64 90 90 90 | Na 4a | Cl 4b
"""

from __future__ import annotations

import contextlib
import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from xtalgen.crystal import Crystal, atomic_number, element_symbol
from xtalgen.errors import XtalgenError

__all__ = [
    "FALLBACK_SYMPRECS",
    "PRIMITIVE_SYMPREC",
    "WyckoffRepresentation",
    "WyckoffSite",
    "crystal_system",
    "decode",
    "detected_spacegroup",
    "encode",
    "encode_many",
    "num_free_params",
    "round_trip_matches",
    "site_orbit",
    "symmetrize_lattice_params",
    "to_primitive",
    "wyckoff_letters",
    "wyckoff_multiplicity",
]

PRIMITIVE_SYMPREC = 1e-4
"""Tolerance (angstrom) of ``to_primitive``: only exact centring translations are removed."""

_LABEL = re.compile(r"(\d+)([a-zA-Z])")

FALLBACK_SYMPRECS: tuple[float, ...] = (0.01, 1e-3, 1e-4)
"""Tolerances (angstrom) tried in order when the first ``symprec`` fails (see ``encode``)."""

_SYSTEMS = (
    (2, "triclinic"),
    (15, "monoclinic"),
    (74, "orthorhombic"),
    (142, "tetragonal"),
    (167, "trigonal"),
    (194, "hexagonal"),
    (230, "cubic"),
)


def detected_spacegroup(crystal: Crystal, symprec: float = 0.1, angle_tolerance: float = 5.0) -> int:
    """spglib's space-group number (1-230) at ``symprec`` (angstrom) and ``angle_tolerance``
    (degrees); 0 when spglib fails (it raises on degenerate cells in recent versions)."""
    import spglib

    cell = (crystal.lattice, crystal.frac_coords, crystal.species)
    try:
        dataset = spglib.get_symmetry_dataset(cell, symprec=symprec, angle_tolerance=angle_tolerance)
    except Exception:
        return 0
    return 0 if dataset is None else int(dataset.number)


def crystal_system(spacegroup: int) -> str:
    """Crystal system of a space group number (1-230)."""
    _check_spacegroup(spacegroup)
    return next(name for last, name in _SYSTEMS if spacegroup <= last)


def _check_spacegroup(spacegroup: int) -> None:
    if not 1 <= int(spacegroup) <= 230:
        raise XtalgenError(f"space group number must be in 1-230, got {spacegroup}")


@cache
def _group(spacegroup: int):  # -> pyxtal.symmetry.Group
    from pyxtal.symmetry import Group

    return Group(int(spacegroup))


@cache
def wyckoff_letters(spacegroup: int) -> tuple[str, ...]:
    """Wyckoff letters of a space group in ITA order ('a' first; group 47 ends with 'A')."""
    _check_spacegroup(spacegroup)
    return tuple(wp.letter for wp in reversed(_group(spacegroup).Wyckoff_positions))


@cache
def _wyckoff_position(spacegroup: int, letter: str):  # -> pyxtal Wyckoff_position
    if letter not in wyckoff_letters(spacegroup):
        raise XtalgenError(f"space group {spacegroup} has no Wyckoff position {letter!r}")
    index = wyckoff_letters(spacegroup)[::-1].index(letter)
    return _group(spacegroup).Wyckoff_positions[index]


def _num_free(wp) -> int:
    return 3 - len(wp.get_frozen_axis())


def wyckoff_multiplicity(spacegroup: int, letter: str) -> int:
    """Multiplicity of a Wyckoff position in the conventional cell."""
    return int(_wyckoff_position(spacegroup, letter).multiplicity)


def num_free_params(spacegroup: int, letter: str) -> int:
    """Number of free coordinates (0-3) of a Wyckoff position's representative."""
    return _num_free(_wyckoff_position(spacegroup, letter))


def symmetrize_lattice_params(spacegroup: int, params: Sequence[float]) -> tuple[float, ...]:
    """Project (a, b, c, alpha, beta, gamma) onto the constraints of the space group's system.

    Cubic: a = b = c (mean), right angles; tetragonal: a = b; hexagonal and trigonal (hexagonal
    axes): a = b, gamma = 120; orthorhombic: right angles; monoclinic (unique axis b):
    alpha = gamma = 90; triclinic: unchanged.
    """
    a, b, c, alpha, beta, gamma = (float(x) for x in params)
    system = crystal_system(spacegroup)
    if system == "cubic":
        a = b = c = (a + b + c) / 3
    elif system in ("tetragonal", "hexagonal", "trigonal"):
        a = b = (a + b) / 2
    if system in ("cubic", "tetragonal", "orthorhombic"):
        alpha = beta = gamma = 90.0
    elif system in ("hexagonal", "trigonal"):
        alpha, beta, gamma = 90.0, 90.0, 120.0
    elif system == "monoclinic":
        alpha = gamma = 90.0
    return (a, b, c, alpha, beta, gamma)


@dataclass(frozen=True)
class WyckoffSite:
    """One symmetry-distinct site: element, Wyckoff position and free fractional coordinates."""

    element: str
    letter: str
    multiplicity: int
    free_params: tuple[float, ...] = ()

    @property
    def label(self) -> str:
        """Multiplicity and letter, e.g. ``'4a'``."""
        return f"{self.multiplicity}{self.letter}"

    @property
    def atomic_number(self) -> int:
        return atomic_number(self.element)


@dataclass(frozen=True)
class WyckoffRepresentation:
    """Space group (1-230), conventional lattice parameters and Wyckoff sites."""

    spacegroup: int
    lattice_params: tuple[float, float, float, float, float, float]
    sites: tuple[WyckoffSite, ...]

    def __post_init__(self) -> None:
        _check_spacegroup(self.spacegroup)
        object.__setattr__(self, "spacegroup", int(self.spacegroup))
        params = tuple(float(x) for x in self.lattice_params)
        if len(params) != 6 or not all(math.isfinite(x) for x in params):
            raise XtalgenError(f"lattice_params must be 6 finite numbers, got {params}")
        object.__setattr__(self, "lattice_params", params)
        sites = tuple(self.sites)
        if not sites:
            raise XtalgenError("a Wyckoff representation needs at least one site")
        object.__setattr__(self, "sites", sites)

    @property
    def crystal_system(self) -> str:
        return crystal_system(self.spacegroup)

    @property
    def num_sites(self) -> int:
        """Number of atoms in the conventional cell."""
        return sum(site.multiplicity for site in self.sites)

    @property
    def compact(self) -> str:
        """The Wyckoff label without continuous parameters, e.g. ``'225 | Na 4a | Cl 4b'``."""
        return " | ".join([str(self.spacegroup), *(f"{s.element} {s.label}" for s in self.sites)])

    def __str__(self) -> str:
        return self.compact

    def to_string(self, digits: int | None = None) -> str:
        """Full one-line form with lattice and free parameters (``from_string`` inverts it).

        ``digits=None`` writes floats exactly (shortest repr); an int rounds to that many
        significant digits, for display.
        """

        def fmt(x: float) -> str:
            return repr(float(x)) if digits is None else f"{x:.{digits}g}"

        parts = [str(self.spacegroup), " ".join(fmt(x) for x in self.lattice_params)]
        for s in self.sites:
            parts.append(" ".join([s.element, s.label, *(fmt(x) for x in s.free_params)]))
        return " | ".join(parts)

    @classmethod
    def from_string(cls, text: str) -> WyckoffRepresentation:
        """Parse the full form written by ``to_string``."""
        parts = [p.strip() for p in text.split("|")]
        try:
            spacegroup = int(parts[0])
            params = tuple(float(x) for x in parts[1].split())
            sites = []
            for part in parts[2:]:
                element, label, *free = part.split()
                match = _LABEL.fullmatch(label)
                if match is None:
                    raise ValueError(label)
                multiplicity, letter = int(match[1]), match[2]
                sites.append(WyckoffSite(element, letter, multiplicity, tuple(map(float, free))))
        except (ValueError, IndexError):
            raise XtalgenError(f"not a Wyckoff representation string: {text!r}") from None
        return cls(spacegroup, params, tuple(sites))  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        return {
            "spacegroup": self.spacegroup,
            "lattice_params": list(self.lattice_params),
            "sites": [
                {
                    "element": s.element,
                    "letter": s.letter,
                    "multiplicity": s.multiplicity,
                    "free_params": list(s.free_params),
                }
                for s in self.sites
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WyckoffRepresentation:
        """Inverse of ``to_dict``."""
        try:
            sites = tuple(
                WyckoffSite(
                    str(s["element"]),
                    str(s["letter"]),
                    int(s["multiplicity"]),
                    tuple(float(x) for x in s.get("free_params", ())),
                )
                for s in data["sites"]
            )
            return cls(int(data["spacegroup"]), tuple(data["lattice_params"]), sites)
        except (KeyError, TypeError, ValueError) as exc:
            raise XtalgenError(f"not a Wyckoff representation dict: {exc}") from None


# -- encode ---------------------------------------------------------------------------------------
def _encode_once(crystal: Crystal, symprec: float, angle_tolerance: float) -> WyckoffRepresentation:
    from pyxtal import pyxtal

    xtal = pyxtal()
    with contextlib.redirect_stdout(io.StringIO()):  # pyxtal prints its failures
        xtal.from_seed(crystal.to_pymatgen(), tol=symprec, a_tol=angle_tolerance)
    if not getattr(xtal, "valid", False) or not xtal.atom_sites:
        raise XtalgenError("pyxtal could not analyse the structure")
    spacegroup = int(xtal.group.number)
    order = {letter: i for i, letter in enumerate(wyckoff_letters(spacegroup))}
    sites = []
    for atom_site in xtal.atom_sites:
        wp = atom_site.wp
        free = np.asarray(wp.get_free_xyzs(atom_site.position), dtype=np.float64)
        free = np.where(np.isclose(free, 1.0, atol=1e-10), 0.0, free)
        specie = atom_site.specie
        element = specie if isinstance(specie, str) else element_symbol(int(specie))
        sites.append(
            WyckoffSite(element, wp.letter, int(wp.multiplicity), tuple(float(x) for x in free))
        )
    sites.sort(key=lambda s: (s.atomic_number, order[s.letter], s.free_params))
    params = symmetrize_lattice_params(spacegroup, xtal.lattice.get_para(degree=True))
    return WyckoffRepresentation(spacegroup, params, tuple(sites))  # type: ignore[arg-type]


def round_trip_matches(crystal: Crystal, rep: WyckoffRepresentation) -> bool:
    """Does ``rep`` decode to ``crystal``? (pymatgen ``StructureMatcher()``, default tolerances)

    The conventional cell is tried first, then the primitive one: StructureMatcher reduces
    both structures with pymatgen's ``get_primitive_structure``, which depends on the cell it
    starts from for pseudo-symmetric crystals (it may merge a near-translation in one cell
    and not in another), so the same crystal can fail to match in one of the two cells.
    """
    from pymatgen.analysis.structure_matcher import StructureMatcher

    matcher, target = StructureMatcher(), crystal.to_pymatgen()
    conventional = decode(rep)
    if matcher.fit(target, conventional.to_pymatgen()):
        return True
    primitive = to_primitive(conventional)
    return primitive is not conventional and bool(matcher.fit(target, primitive.to_pymatgen()))


def encode(
    crystal: Crystal,
    symprec: float = 0.1,
    angle_tolerance: float = 5.0,
    *,
    verify: bool = False,
    fallback_symprecs: Sequence[float] = FALLBACK_SYMPRECS,
) -> WyckoffRepresentation:
    """Wyckoff representation of an ordered crystal (symmetry by pyxtal/spglib).

    Args:
        crystal: an ordered crystal.
        symprec: distance tolerance in angstrom (0.1, the field's usual value).
        angle_tolerance: angle tolerance in degrees.
        verify: also check that the representation decodes to the same structure
            (``round_trip_matches``, ~5 ms); if not, try the next tolerance.
        fallback_symprecs: smaller tolerances tried in order when the analysis fails (or, with
            ``verify``, when the round trip does not match). Pass ``()`` for no fallback.

    Raises:
        XtalgenError: disordered crystal, or no tolerance gives a usable representation.
    """
    if not isinstance(crystal, Crystal):
        raise XtalgenError(f"expected a Crystal, got {type(crystal).__name__}")
    if not crystal.is_ordered:
        raise XtalgenError("Wyckoff encoding needs an ordered crystal (this one has partial sites)")
    problems = []
    for tol in (symprec, *(t for t in fallback_symprecs if t < symprec)):
        try:
            rep = _encode_once(crystal, tol, angle_tolerance)
        except Exception as exc:  # pyxtal/spglib raise many kinds of errors
            problems.append(f"symprec={tol:g}: {type(exc).__name__}: {exc}")
            continue
        if not verify or round_trip_matches(crystal, rep):
            return rep
        problems.append(f"symprec={tol:g}: decoded structure does not match")
    raise XtalgenError(
        f"cannot find the Wyckoff representation of {crystal.formula}: " + "; ".join(problems)
    )


# -- decode ---------------------------------------------------------------------------------------
def site_orbit(spacegroup: int, site: WyckoffSite) -> np.ndarray:
    """(multiplicity, 3) fractional coordinates in [0, 1) of a Wyckoff site's orbit."""
    wp = _wyckoff_position(spacegroup, site.letter)
    if int(wp.multiplicity) != site.multiplicity:
        raise XtalgenError(
            f"Wyckoff position {site.letter} of space group {spacegroup} has multiplicity "
            f"{wp.multiplicity}, not {site.multiplicity}"
        )
    if len(site.free_params) != _num_free(wp):
        raise XtalgenError(
            f"Wyckoff position {site.label} of space group {spacegroup} has {_num_free(wp)} free "
            f"parameters, got {len(site.free_params)}"
        )
    position = wp.get_position_from_free_xyzs(np.asarray(site.free_params, dtype=np.float64))
    orbit = np.asarray(wp.apply_ops(position), dtype=np.float64)
    return orbit - np.floor(orbit)


def decode(rep: WyckoffRepresentation, primitive: bool = False) -> Crystal:
    """The crystal of a Wyckoff representation.

    Returns the conventional cell (``rep.num_sites`` atoms, lattice in pymatgen's orientation),
    or with ``primitive=True`` its primitive cell (spglib, tolerance ``PRIMITIVE_SYMPREC``, so
    only exact centring translations are removed). Lattice parameters are first projected onto
    the space group's constraints (``symmetrize_lattice_params``), so approximate parameters
    from a model decode cleanly.
    """
    from xtalgen.representations.lattice import params_to_matrix

    lattice = params_to_matrix(symmetrize_lattice_params(rep.spacegroup, rep.lattice_params))
    coords, species = [], []
    for site in rep.sites:
        orbit = site_orbit(rep.spacegroup, site)
        coords.append(orbit)
        species.extend([site.atomic_number] * len(orbit))
    crystal = Crystal(lattice=lattice, frac_coords=np.concatenate(coords), species=species)
    return to_primitive(crystal) if primitive else crystal


def to_primitive(crystal: Crystal, symprec: float | None = None) -> Crystal:
    """Primitive cell of an ordered crystal (spglib, positions not idealised).

    The default tolerance ``PRIMITIVE_SYMPREC`` (1e-4 angstrom) removes only exact lattice
    translations, unlike pymatgen's ``get_primitive_structure`` (0.25 angstrom), which also
    merges pseudo-translations. Returns ``crystal`` unchanged when spglib finds nothing smaller.
    """
    import spglib

    tol = PRIMITIVE_SYMPREC if symprec is None else symprec
    cell = (crystal.lattice, crystal.frac_coords, crystal.species)
    result = spglib.standardize_cell(cell, to_primitive=True, no_idealize=True, symprec=tol)
    if result is None or len(result[2]) >= crystal.num_sites:
        return crystal
    lattice, frac_coords, species = result
    return Crystal(lattice, frac_coords, species, properties=dict(crystal.properties))


# -- many crystals ---------------------------------------------------------------------------------
ENCODE_CACHE_VERSION = 1
"""Bump when ``encode`` changes what it returns, so cached encodings are recomputed."""


def _encode_or_none(task: tuple[Crystal, float]) -> dict[str, Any] | None:
    crystal, symprec = task
    try:
        return encode(crystal, symprec).to_dict()
    except XtalgenError:
        return None


def _crystals_digest(crystals: Sequence[Crystal], symprec: float) -> str:
    import hashlib

    digest = hashlib.sha256(f"wyckoff-v{ENCODE_CACHE_VERSION}-{symprec!r}".encode())
    for c in crystals:
        for array in (c.lattice, c.frac_coords, np.asarray(c.species)):
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def encode_many(
    crystals: Sequence[Crystal],
    symprec: float = 0.1,
    *,
    n_jobs: int | None = None,
    progress: bool = True,
    cache: bool = True,
) -> list[WyckoffRepresentation | None]:
    """``encode`` of every crystal (None where it fails), over worker processes.

    With ``cache``, the result is stored under ``$XTALGEN_CACHE/wyckoff/`` keyed by the
    crystals' arrays and ``symprec``, so a training set is analysed once (about 40 ms per
    MP-20 crystal).
    """
    import json

    from xtalgen.data.cache import cache_dir
    from xtalgen.parallel import parallel_map

    path = cache_dir() / "wyckoff" / f"{_crystals_digest(crystals, symprec)}.json"
    if cache and path.is_file():
        try:
            dicts = json.loads(path.read_text())
        except ValueError:
            dicts = None
        if isinstance(dicts, list) and len(dicts) == len(crystals):
            return [None if d is None else WyckoffRepresentation.from_dict(d) for d in dicts]
    dicts = parallel_map(_encode_or_none, [(c, symprec) for c in crystals], n_jobs=n_jobs,
                         desc="Wyckoff encoding", progress=progress, chunksize=16)
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(dicts))
        tmp.replace(path)
    return [None if d is None else WyckoffRepresentation.from_dict(d) for d in dicts]
