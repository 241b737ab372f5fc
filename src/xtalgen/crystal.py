"""The Crystal record: one canonical, immutable description of a periodic crystal.

Conventions (used everywhere in xtalgen):

* ``lattice``: (3, 3) float64 array in angstrom; **rows** are the lattice vectors a, b, c.
* ``frac_coords``: (N, 3) float64 fractional coordinates, wrapped to [0, 1).
* ``species``: (N,) int64 atomic numbers (1-118). For a disordered site this is the
  majority species; the full occupancy is in ``site_occupancies``.
* ``properties``: a read-only mapping of JSON-friendly values (dataset columns such as
  ``formation_energy_per_atom`` in eV/atom, provenance of generated samples, ...).
* ``site_occupancies``: ``None`` for an ordered crystal, otherwise one entry per site:
  ``None`` for an ordered site or a tuple of ``(Z, occupancy)`` pairs for a disordered one.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from xtalgen.errors import XtalgenError

if TYPE_CHECKING:
    from ase import Atoms
    from pymatgen.core import Structure

__all__ = [
    "MAX_Z", "Crystal", "CrystalError", "SiteOccupancy", "atomic_number", "crystals_sha256",
    "element_symbol", "perturb",
]

MAX_Z = 118
"""Largest atomic number accepted in a Crystal."""

SiteOccupancy = tuple[tuple[int, float], ...]
"""Occupancy of one disordered site: ``((Z, occupancy), ...)``, occupancies summing to <= 1."""

MIN_VOLUME = 1e-6
"""Smallest cell volume (cubic angstrom) accepted as non-degenerate."""


class CrystalError(XtalgenError, ValueError):
    """A crystal description that cannot be a periodic crystal (bad lattice, species, ...)."""


def _symbols() -> tuple[str, ...]:
    from pymatgen.core.periodic_table import Element

    return tuple(Element.from_Z(z).symbol for z in range(1, MAX_Z + 1))


_SYMBOLS: tuple[str, ...] | None = None


def element_symbol(z: int) -> str:
    """Chemical symbol of atomic number ``z`` (1-118)."""
    global _SYMBOLS
    if _SYMBOLS is None:
        _SYMBOLS = _symbols()
    if not 1 <= int(z) <= MAX_Z:
        raise CrystalError(f"atomic number {z} is outside 1-{MAX_Z}")
    return _SYMBOLS[int(z) - 1]


def atomic_number(symbol: str) -> int:
    """Atomic number of a chemical symbol; raises CrystalError for an unknown element."""
    global _SYMBOLS
    if _SYMBOLS is None:
        _SYMBOLS = _symbols()
    try:
        return _SYMBOLS.index(symbol.strip().capitalize()) + 1
    except ValueError:
        raise CrystalError(f"unknown element symbol {symbol!r}") from None


def wrap_frac_coords(frac_coords: np.ndarray) -> np.ndarray:
    """Wrap fractional coordinates into [0, 1) (values that round to 1.0 become 0.0)."""
    wrapped = np.mod(frac_coords, 1.0)
    wrapped[wrapped >= 1.0] = 0.0
    return wrapped


def _readonly(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class Crystal:
    """An immutable periodic crystal. See the module docstring for units and conventions."""

    lattice: np.ndarray
    frac_coords: np.ndarray
    species: np.ndarray
    properties: Mapping[str, Any] = field(default_factory=dict)
    site_occupancies: tuple[SiteOccupancy | None, ...] | None = None

    def __post_init__(self) -> None:
        lattice = np.array(self.lattice, dtype=np.float64)
        if lattice.shape != (3, 3):
            raise CrystalError(f"lattice must be 3x3, got shape {lattice.shape}")
        if not np.all(np.isfinite(lattice)):
            raise CrystalError("lattice contains NaN or infinite values")
        volume = abs(float(np.linalg.det(lattice)))
        if volume < MIN_VOLUME:
            raise CrystalError(f"lattice has zero volume ({volume:.3g} A^3)")

        frac = np.array(self.frac_coords, dtype=np.float64).reshape(-1, 3)
        if not np.all(np.isfinite(frac)):
            raise CrystalError("frac_coords contain NaN or infinite values")
        species = np.array(self.species, dtype=np.int64).reshape(-1)
        if len(species) != len(frac):
            raise CrystalError(f"{len(species)} species for {len(frac)} sites")
        if len(species) == 0:
            raise CrystalError("a crystal needs at least one site")
        if species.min() < 1 or species.max() > MAX_Z:
            raise CrystalError(f"atomic numbers must be in 1-{MAX_Z}, got {sorted(set(species))}")

        occupancies = self.site_occupancies
        if occupancies is not None:
            occupancies = tuple(
                None if occ is None else tuple((int(z), float(o)) for z, o in occ)
                for occ in occupancies
            )
            if len(occupancies) != len(species):
                raise CrystalError("site_occupancies must have one entry per site")
            for i, occ in enumerate(occupancies):
                if occ is not None:
                    _check_site_occupancy(i, occ)
            if all(occ is None for occ in occupancies):
                occupancies = None

        object.__setattr__(self, "lattice", _readonly(lattice))
        object.__setattr__(self, "frac_coords", _readonly(wrap_frac_coords(frac)))
        object.__setattr__(self, "species", _readonly(species))
        object.__setattr__(self, "properties", MappingProxyType(dict(self.properties)))
        object.__setattr__(self, "site_occupancies", occupancies)

    # -- pickling (MappingProxyType itself is not picklable) ---------------------------------
    def __reduce__(self) -> tuple[Any, ...]:
        return (
            Crystal,
            (self.lattice, self.frac_coords, self.species, dict(self.properties), self.site_occupancies),
        )

    # -- basic derived quantities --------------------------------------------------------------
    @property
    def num_sites(self) -> int:
        """Number of sites in the cell."""
        return len(self.species)

    def __len__(self) -> int:
        return self.num_sites

    @property
    def volume(self) -> float:
        """Cell volume in cubic angstrom."""
        return abs(float(np.linalg.det(self.lattice)))

    @property
    def cart_coords(self) -> np.ndarray:
        """Cartesian coordinates (N, 3) in angstrom."""
        return self.frac_coords @ self.lattice

    @property
    def lattice_parameters(self) -> tuple[float, float, float, float, float, float]:
        """(a, b, c) in angstrom and (alpha, beta, gamma) in degrees."""
        a, b, c = (float(np.linalg.norm(v)) for v in self.lattice)
        va, vb, vc = self.lattice

        def angle(u: np.ndarray, v: np.ndarray) -> float:
            cos = float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)))
            return math.degrees(math.acos(max(-1.0, min(1.0, cos))))

        return a, b, c, angle(vb, vc), angle(va, vc), angle(va, vb)

    @property
    def is_ordered(self) -> bool:
        """True when every site is fully occupied by one species."""
        return self.site_occupancies is None

    @property
    def symbols(self) -> list[str]:
        """Chemical symbol of each site (majority species for disordered sites)."""
        return [element_symbol(z) for z in self.species]

    @property
    def formula(self) -> str:
        """Reduced chemical formula, e.g. ``'LiMnO2'``."""
        return self.composition.reduced_formula

    @property
    def composition(self):  # -> pymatgen.core.Composition
        """pymatgen Composition (occupancy-weighted for disordered sites)."""
        from pymatgen.core import Composition

        counts: dict[str, float] = {}
        for i, z in enumerate(self.species):
            occ = self.site_occupancies[i] if self.site_occupancies is not None else None
            for zz, o in occ if occ is not None else ((int(z), 1.0),):
                sym = element_symbol(zz)
                counts[sym] = counts.get(sym, 0.0) + o
        return Composition(counts)

    def replace(self, **changes: Any) -> Crystal:
        """A copy with some fields changed (``properties`` are merged, not replaced)."""
        fields = {
            "lattice": self.lattice,
            "frac_coords": self.frac_coords,
            "species": self.species,
            "properties": dict(self.properties),
            "site_occupancies": self.site_occupancies,
        }
        if "properties" in changes:
            fields["properties"].update(changes.pop("properties"))
        fields.update(changes)
        return Crystal(**fields)

    def with_properties(self, **properties: Any) -> Crystal:
        """A copy with ``properties`` updated."""
        return self.replace(properties=properties)

    def __repr__(self) -> str:
        a, b, c, al, be, ga = self.lattice_parameters
        return (
            f"Crystal({self.formula}, {self.num_sites} sites, "
            f"abc=({a:.3f}, {b:.3f}, {c:.3f}), angles=({al:.1f}, {be:.1f}, {ga:.1f}))"
        )

    def allclose(self, other: Crystal, atol: float = 1e-6) -> bool:
        """Same sites in the same order, same lattice and occupancies, up to ``atol``."""
        if self.num_sites != other.num_sites or not np.array_equal(self.species, other.species):
            return False
        if not np.allclose(self.lattice, other.lattice, atol=atol):
            return False
        diff = self.frac_coords - other.frac_coords
        diff -= np.round(diff)  # periodic comparison
        if not np.allclose(diff, 0.0, atol=atol):
            return False
        return _occupancies_close(self.site_occupancies, other.site_occupancies, atol)

    # -- conversions -------------------------------------------------------------------------
    def to_pymatgen(self) -> Structure:
        """pymatgen ``Structure`` (disordered sites become partial-occupancy species)."""
        from pymatgen.core import Lattice, Structure

        if self.site_occupancies is None:
            species: list[Any] = [int(z) for z in self.species]
        else:
            species = [
                int(z) if occ is None else {element_symbol(zz): o for zz, o in occ}
                for z, occ in zip(self.species, self.site_occupancies)
            ]
        return Structure(
            Lattice(self.lattice),
            species,
            self.frac_coords,
            coords_are_cartesian=False,
            properties=_jsonable(dict(self.properties)),
        )

    @classmethod
    def from_pymatgen(
        cls, structure: Structure, properties: Mapping[str, Any] | None = None
    ) -> Crystal:
        """Build from a pymatgen ``Structure`` (oxidation states are dropped; disorder kept)."""
        species: list[int] = []
        occupancies: list[SiteOccupancy | None] = []
        for site in structure:
            comp = site.species
            items = [(int(sp.Z), float(occ)) for sp, occ in comp.items()]
            merged: dict[int, float] = {}
            for z, occ in items:
                merged[z] = merged.get(z, 0.0) + occ
            if len(merged) == 1 and abs(next(iter(merged.values())) - 1.0) < 1e-8:
                species.append(next(iter(merged)))
                occupancies.append(None)
            else:
                species.append(max(merged, key=lambda z: merged[z]))
                occupancies.append(tuple(sorted(merged.items())))
        props = dict(getattr(structure, "properties", None) or {})
        props.update(properties or {})
        return cls(
            lattice=structure.lattice.matrix,
            frac_coords=structure.frac_coords,
            species=species,
            properties=props,
            site_occupancies=tuple(occupancies),
        )

    def to_ase(self) -> Atoms:
        """ASE ``Atoms`` with pbc=True; properties go to ``atoms.info``.

        Disordered sites are written with their majority species and the full occupancies
        are kept in ``atoms.info['site_occupancies']`` so that ``from_ase`` restores them.
        """
        from ase import Atoms

        atoms = Atoms(
            numbers=self.species,
            cell=self.lattice,
            scaled_positions=self.frac_coords,
            pbc=True,
        )
        atoms.info.update(dict(self.properties))
        if self.site_occupancies is not None:
            atoms.info["site_occupancies"] = [
                None if occ is None else [list(pair) for pair in occ]
                for occ in self.site_occupancies
            ]
        return atoms

    @classmethod
    def from_ase(cls, atoms: Atoms, properties: Mapping[str, Any] | None = None) -> Crystal:
        """Build from ASE ``Atoms`` (needs a 3D cell)."""
        info = dict(atoms.info)
        raw_occ = info.pop("site_occupancies", None)
        occupancies = None
        if raw_occ is not None:
            occupancies = tuple(
                None if occ is None else tuple((int(z), float(o)) for z, o in occ)
                for occ in raw_occ
            )
        info.update(properties or {})
        cell = np.asarray(atoms.cell[:], dtype=np.float64)
        return cls(
            lattice=cell,
            frac_coords=atoms.get_scaled_positions(wrap=False) if len(atoms) else np.zeros((0, 3)),
            species=atoms.numbers,
            properties=info,
            site_occupancies=occupancies,
        )


def _check_site_occupancy(index: int, occupancy: SiteOccupancy) -> None:
    """Atomic numbers in 1-118, occupancies in (0, 1] summing to at most 1 (pymatgen's limit)."""
    if not occupancy:
        raise CrystalError(f"site {index} has an empty occupancy (use None for an ordered site)")
    for z, o in occupancy:
        if not 1 <= z <= MAX_Z:
            raise CrystalError(f"site {index}: atomic number {z} is outside 1-{MAX_Z}")
        if not 0.0 < o <= 1.0:
            raise CrystalError(f"site {index}: occupancy {o} of Z={z} is not in (0, 1]")
    total = sum(o for _, o in occupancy)
    if total > 1.0 + 1e-8:
        raise CrystalError(f"site {index}: occupancies sum to {total:.6g} > 1")


def _occupancies_close(
    a: tuple[SiteOccupancy | None, ...] | None,
    b: tuple[SiteOccupancy | None, ...] | None,
    atol: float,
) -> bool:
    if a is None or b is None:
        return a is None and b is None
    for occ_a, occ_b in zip(a, b):
        if (occ_a is None) != (occ_b is None):
            return False
        if occ_a is None or occ_b is None:
            continue
        da, db = dict(occ_a), dict(occ_b)
        if set(da) != set(db) or any(abs(da[z] - db[z]) > atol for z in da):
            return False
    return True


def _jsonable(value: Any) -> Any:
    """Numpy scalars and arrays to plain Python, so properties serialise to JSON."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def perturb(
    crystal: Crystal, rng: np.random.Generator, *, frac_noise: float = 0.02, strain: float = 0.03
) -> Crystal:
    """A shaken copy for sanity checks and benchmarks (not a physical distortion).

    Each lattice vector is scaled by ``1 + U(-strain, strain)`` and ``N(0, frac_noise)`` is added
    to every fractional coordinate (wrapped back into [0, 1)). Draws the 3 uniforms first, then
    the normals, so a seeded ``rng`` gives the same copies on every machine.
    """
    lattice = crystal.lattice @ np.diag(1 + rng.uniform(-strain, strain, 3))
    frac_coords = crystal.frac_coords + rng.normal(0, frac_noise, crystal.frac_coords.shape)
    return crystal.replace(lattice=lattice, frac_coords=frac_coords)


def crystals_sha256(crystals: Sequence[Crystal]) -> str:
    """sha256 over the lattices, coordinates and species of ``crystals`` (order matters)."""
    digest = hashlib.sha256()
    for c in crystals:
        for array in (c.lattice, c.frac_coords, c.species):
            digest.update(np.ascontiguousarray(array).tobytes())
        digest.update(b"|")
    return digest.hexdigest()
