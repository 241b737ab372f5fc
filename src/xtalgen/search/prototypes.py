"""Prototype retrieval for substitution: anonymous-formula index, species maps, prototype keys.

Two crystals share an anonymous formula when their reduced formulas have the same multiset of
amounts (``Li2MnO3`` and ``Na2TiS3``: ``ABC3`` ... up to ordering). A template's species are
mapped onto the target's element by element within groups of equal amount, either by
Pauling-electronegativity order (the classic naive rule) or by the permutation that changes
the chemistry least (electronegativity and atomic radius, see :func:`element_distance`).
"""

from __future__ import annotations

import functools
import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xtalgen.crystal import Crystal
from xtalgen.disorder import disorder_message

__all__ = [
    "PrototypeIndex",
    "SpeciesMap",
    "element_distance",
    "map_species",
    "prototype_key",
    "reduced_counts",
    "species_maps",
    "substitute",
    "wyckoff_sites",
]

ELECTRONEGATIVITY_SCALE = 0.5
"""Pauling electronegativity difference that counts as one unit of chemical distance."""

RADIUS_SCALE = 0.15
"""Relative atomic-radius difference that counts as one unit of chemical distance."""


@functools.cache
def _element_data(z: int) -> tuple[float, float]:
    """(Pauling electronegativity, atomic radius in angstrom); NaN-free fallbacks."""
    from ase.data import covalent_radii
    from pymatgen.core import Element

    el = Element.from_Z(int(z))
    x = float(el.X) if el.X is not None and math.isfinite(float(el.X)) else 2.0
    radius = el.atomic_radius
    r = float(radius) if radius is not None else float(covalent_radii[int(z)])
    return x, r


def element_distance(z1: int, z2: int) -> float:
    """Chemical distance of two elements: |dX| / 0.5 + relative radius difference / 0.15."""
    if z1 == z2:
        return 0.0
    x1, r1 = _element_data(z1)
    x2, r2 = _element_data(z2)
    return abs(x1 - x2) / ELECTRONEGATIVITY_SCALE + abs(r1 - r2) / (
        0.5 * (r1 + r2) * RADIUS_SCALE
    )


def reduced_counts(species: np.ndarray) -> dict[int, int]:
    """Reduced formula as ``{Z: count}`` (counts divided by their gcd)."""
    zs, counts = np.unique(np.asarray(species), return_counts=True)
    g = int(np.gcd.reduce(counts))
    return {int(z): int(c) // g for z, c in zip(zs, counts)}


def anonymous_key(counts: dict[int, int]) -> tuple[int, ...]:
    """Sorted amounts of a reduced formula, e.g. ``(1, 2, 3)`` for Li2MnO3."""
    return tuple(sorted(counts.values()))


@dataclass(frozen=True)
class SpeciesMap:
    """Template element -> target element, with the chemical distance of the substitution."""

    mapping: dict[int, int]
    distance: float

    def label(self) -> str:
        """``"Sr->Ba,Ti->Zr"``: the elements that change, by template symbol; ``"none"``."""
        from xtalgen.crystal import element_symbol

        pairs = sorted(
            (element_symbol(a), element_symbol(b)) for a, b in self.mapping.items() if a != b
        )
        return ",".join(f"{a}->{b}" for a, b in pairs) or "none"


def map_species(
    template: dict[int, int], target: dict[int, int], mode: str = "similarity"
) -> SpeciesMap:
    """Map template elements onto target elements with the same reduced amounts.

    ``mode="electronegativity"``: within each group of equal amount, elements are paired in
    order of Pauling electronegativity. ``mode="similarity"``: the permutation with the
    smallest summed :func:`element_distance` (groups of more than 5 elements fall back to
    electronegativity order). ``distance`` is the amount-weighted mean distance per atom.
    """
    mapping: dict[int, int] = {}
    total = 0.0
    for amount in sorted(set(target.values())):
        tgt = sorted((z for z, a in target.items() if a == amount), key=_element_data)
        tpl = sorted((z for z, a in template.items() if a == amount), key=_element_data)
        if len(tgt) != len(tpl):
            raise ValueError("template and target have different anonymous formulas")
        best = list(zip(tpl, tgt))
        if mode == "similarity" and 1 < len(tgt) <= 5:
            best = min(
                (list(zip(tpl, perm)) for perm in itertools.permutations(tgt)),
                key=lambda pairs: sum(element_distance(a, b) for a, b in pairs),
            )
        for a, b in best:
            mapping[a] = b
            total += amount * element_distance(a, b)
    return SpeciesMap(mapping, total / sum(target.values()))


def species_maps(
    template: dict[int, int], target: dict[int, int], limit: int = 24
) -> list[SpeciesMap]:
    """Every map of template onto target elements within groups of equal amount (at most
    ``limit`` of them, in enumeration order), closest first."""
    amounts = sorted(set(target.values()))
    tpl = [sorted(z for z, a in template.items() if a == amount) for amount in amounts]
    tgt = [[z for z, a in target.items() if a == amount] for amount in amounts]
    if [len(t) for t in tpl] != [len(t) for t in tgt]:
        raise ValueError("template and target have different anonymous formulas")
    total = sum(target.values())
    out = []
    for perms in itertools.islice(
        itertools.product(*(itertools.permutations(g) for g in tgt)), limit
    ):
        mapping = {a: b for olds, news in zip(tpl, perms) for a, b in zip(olds, news)}
        distance = sum(template[a] * element_distance(a, b) for a, b in mapping.items())
        out.append(SpeciesMap(mapping, distance / total))
    return sorted(out, key=lambda m: m.distance)


def substitute(template: Crystal, species_map: SpeciesMap, rescale_volume: bool = True) -> Crystal:
    """The template with its species replaced; the cell scaled by the atomic-volume ratio.

    Volume rule: V_new = V_template x sum(r_new^3) / sum(r_old^3) over sites (atomic radii).
    """
    new_species = np.array([species_map.mapping[int(z)] for z in template.species])
    lattice = np.asarray(template.lattice)
    if rescale_volume:
        old = sum(_element_data(int(z))[1] ** 3 for z in template.species)
        new = sum(_element_data(int(z))[1] ** 3 for z in new_species)
        lattice = lattice * (new / old) ** (1.0 / 3.0)
    return Crystal(lattice, template.frac_coords, new_species)


def wyckoff_sites(crystal: Crystal, symprec: float = 0.1) -> tuple[int, tuple[tuple[int, str], ...]]:
    """(space group, sorted ``(Z, Wyckoff letter)`` per orbit) by spglib; ``(1, ())`` on failure."""
    import spglib

    cell = (np.asarray(crystal.lattice), np.asarray(crystal.frac_coords), np.asarray(crystal.species))
    try:
        data = spglib.get_symmetry_dataset(cell, symprec=symprec)
    except Exception:
        data = None
    if data is None:
        return 1, ()
    orbits = sorted(
        (int(crystal.species[rep]), str(data.wyckoffs[rep]))
        for rep in sorted({int(e) for e in data.equivalent_atoms})  # one site per orbit
    )
    return int(data.number), tuple(orbits)


def prototype_key(crystal: Crystal, symprec: float = 0.1) -> tuple:
    """(anonymous formula, space group, sorted Wyckoff letters per amount-group) of a crystal.

    Two templates with equal keys are treated as the same prototype (an AFLOW-like label).
    """
    counts = reduced_counts(crystal.species)
    return _prototype_from_sites(counts, *wyckoff_sites(crystal, symprec))


def _prototype_from_sites(
    counts: dict[int, int], number: int, orbits: tuple[tuple[int, str], ...]
) -> tuple:
    if not orbits:
        return (anonymous_key(counts), 1, ())
    groups: dict[int, list[str]] = {}
    for z, letter in orbits:
        groups.setdefault(counts[z], []).append(letter)
    by_amount = tuple((amount, "".join(sorted(ws))) for amount, ws in sorted(groups.items()))
    return (anonymous_key(counts), number, by_amount)


class PrototypeIndex:
    """Templates of a pool indexed by anonymous formula (built once, cheap to query)."""

    def __init__(self, pool: Sequence[Crystal], max_atoms: int | None = None) -> None:
        self.pool = pool
        self.counts: list[dict[int, int]] = []
        self.by_key: dict[tuple[int, ...], list[int]] = {}
        self.formulas: set[tuple[tuple[int, int], ...]] = set()
        self.disordered: list[str] = []
        """One line per disordered pool crystal: never used as a template (its majority species
        are not its structure); its composition still counts as known."""
        for i, crystal in enumerate(pool):
            counts = reduced_counts(crystal.species)
            self.counts.append(counts)
            self.formulas.add(tuple(sorted(counts.items())))
            if max_atoms is not None and crystal.num_sites > max_atoms:
                continue
            message = disorder_message(crystal, "a substitution template")
            if message:
                self.disordered.append(message)
                continue
            self.by_key.setdefault(anonymous_key(counts), []).append(i)
        if self.disordered:
            more = f" (and {len(self.disordered) - 1} more)" if len(self.disordered) > 1 else ""
            warnings.warn(f"{self.disordered[0]}; skipped{more}", stacklevel=2)
        self._sites: dict[int, tuple[int, tuple[tuple[int, str], ...]]] = {}

    def __len__(self) -> int:
        return len(self.pool)

    def candidates(self, target: dict[int, int]) -> list[int]:
        """Indices of pool crystals with the anonymous formula of ``target``."""
        return list(self.by_key.get(anonymous_key(target), ()))

    def sites(self, i: int) -> tuple[int, tuple[tuple[int, str], ...]]:
        """Cached :func:`wyckoff_sites` of template ``i``."""
        if i not in self._sites:
            self._sites[i] = wyckoff_sites(self.pool[i])
        return self._sites[i]

    def prototype(self, i: int) -> tuple:
        """:func:`prototype_key` of template ``i`` (from the cached Wyckoff sites)."""
        return _prototype_from_sites(self.counts[i], *self.sites(i))

    def decorated_prototype(self, i: int, species_map: SpeciesMap) -> tuple:
        """Prototype of template ``i`` after substitution, with each target element's Wyckoff
        letters: two candidates with equal keys put the same elements on the same kinds of
        site (they may still differ in free parameters and cell shape)."""
        number, orbits = self.sites(i)
        if not orbits:  # no symmetry found: a prototype of its own
            return (anonymous_key(self.counts[i]), 0, (("template", i),))
        decorated = tuple(sorted((species_map.mapping[z], letter) for z, letter in orbits))
        return (anonymous_key(self.counts[i]), number, decorated)

    def formula_units(self, i: int) -> int:
        """Reduced formula units in the cell of template ``i``."""
        return len(self.pool[i].species) // sum(self.counts[i].values())

    def known_formula(self, counts: dict[int, int]) -> bool:
        """True when the pool holds a crystal of this reduced formula."""
        return tuple(sorted(counts.items())) in self.formulas
