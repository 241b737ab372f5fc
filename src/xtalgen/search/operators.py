"""Variation operators of the evolutionary search, all composition-preserving.

* :func:`symmetric_mutation`: pyxtal's symmetry-preserving perturbation of lattice and Wyckoff
  free parameters (``pyxtal.from_seed`` + ``apply_perturbation``), optionally after a step
  down to a maximal subgroup (``subgroup_once``) so that the search can break symmetry.
* :func:`lattice_strain`: a random symmetric strain at constant volume (as ase-ga's
  ``StrainMutation``).
* :func:`permutation`: swap the species of atoms of different elements (ase-ga's
  ``PermutationMutation``).
* :func:`cut_and_splice`: one parent's atoms on one side of a random plane, the other's on the
  other side, then the composition is repaired (ase-ga's ``CutAndSplicePairing``, Deaven-Ho).

ase-ga would provide the last three but is no longer part of ase (it moved to the separate
``ase-ga`` package, not a dependency of xtalgen); these are small numpy versions of them.
Every operator returns a new :class:`Crystal` or None when it could not make one.
"""

from __future__ import annotations

import warnings

import numpy as np

from xtalgen.crystal import Crystal

__all__ = ["cut_and_splice", "lattice_strain", "permutation", "symmetric_mutation"]


def symmetric_mutation(
    crystal: Crystal,
    rng: np.random.Generator,
    *,
    d_lat: float = 0.1,
    d_coor: float = 0.1,
    subgroup_probability: float = 0.2,
    symprec: float = 0.1,
) -> Crystal | None:
    """Perturb lattice (relative ``d_lat``) and free Wyckoff coordinates (``d_coor``, angstrom)
    keeping the space group; with ``subgroup_probability`` first descend to a subgroup.

    The child has the parent's number of sites when its primitive cell allows it, otherwise
    pyxtal's conventional cell (same composition)."""
    from pyxtal import pyxtal

    # pyxtal draws from numpy's global generator and from the lattice's own generator:
    # seed both from ``rng`` so that a seeded search is reproducible
    state = np.random.get_state()  # noqa: NPY002 (pyxtal uses the legacy global generator)
    np.random.seed(int(rng.integers(2**31)))  # noqa: NPY002
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            xtal = pyxtal(random_state=np.random.default_rng(int(rng.integers(2**31))))
            xtal.from_seed(crystal.to_pymatgen(), tol=symprec)
            if rng.random() < subgroup_probability and xtal.group.number > 1:
                xtal = xtal.subgroup_once(eps=d_coor, mut_lat=True)
            xtal.lattice.random_state = np.random.default_rng(int(rng.integers(2**31)))
            xtal.apply_perturbation(d_lat=d_lat, d_coor=d_coor)
            child = Crystal.from_pymatgen(xtal.to_pymatgen())
    except Exception:
        return None
    finally:
        np.random.set_state(state)  # noqa: NPY002
    if child.num_sites != crystal.num_sites:
        # pyxtal works in the conventional cell: go back to the parent's cell size if we can
        try:
            primitive = Crystal.from_pymatgen(child.to_pymatgen().get_primitive_structure())
        except Exception:
            return None
        if primitive.num_sites == crystal.num_sites:
            return primitive
        if child.formula != crystal.formula:
            return None
    return child


def lattice_strain(crystal: Crystal, rng: np.random.Generator, *, sigma: float = 0.1) -> Crystal:
    """Apply ``I + e`` (``e`` symmetric, entries ~ N(0, sigma)) to the cell, then restore the
    volume; fractional coordinates are kept."""
    e = rng.normal(0.0, sigma, size=(3, 3))
    strain = np.eye(3) + 0.5 * (e + e.T)
    lattice = np.asarray(crystal.lattice) @ strain
    volume = abs(np.linalg.det(lattice))
    if volume < 1e-6:
        return crystal.replace(lattice=crystal.lattice)
    lattice *= (crystal.volume / volume) ** (1.0 / 3.0)
    return crystal.replace(lattice=lattice)


def permutation(crystal: Crystal, rng: np.random.Generator, *, n_swaps: int | None = None) -> Crystal | None:
    """Swap the species of ``n_swaps`` random pairs of atoms of different elements
    (default: 1 to max(1, N/4)). None for a one-element crystal."""
    species = np.array(crystal.species)
    if len(set(species.tolist())) < 2:
        return None
    n_swaps = n_swaps or int(rng.integers(1, max(1, len(species) // 4) + 1))
    for _ in range(n_swaps):
        i = int(rng.integers(len(species)))
        others = np.flatnonzero(species != species[i])
        j = int(rng.choice(others))
        species[i], species[j] = species[j], species[i]
    return crystal.replace(species=species)


def cut_and_splice(a: Crystal, b: Crystal, rng: np.random.Generator) -> Crystal | None:
    """Child of two parents with the same number of sites and composition.

    A random lattice direction and cut position split the cell in two halves: the child takes
    parent ``a``'s atoms in one half and (randomly translated) ``b``'s in the other, on a
    lattice interpolated between the parents; atoms are then removed or taken from the unused
    halves, farthest from the kept atoms first, until the composition is ``a``'s.
    """
    if a.num_sites != b.num_sites or sorted(a.species) != sorted(b.species):
        return None
    axis = int(rng.integers(3))
    cut = rng.random()
    b_frac = np.mod(np.asarray(b.frac_coords) + rng.random(3), 1.0)
    in_a = np.mod(np.asarray(a.frac_coords)[:, axis] - cut, 1.0) < 0.5
    in_b = np.mod(b_frac[:, axis] - cut, 1.0) >= 0.5
    frac = np.concatenate([a.frac_coords[in_a], b_frac[in_b]])
    species = np.concatenate([a.species[in_a], b.species[in_b]])
    spare_frac = np.concatenate([a.frac_coords[~in_a], b_frac[~in_b]])
    spare_species = np.concatenate([a.species[~in_a], b.species[~in_b]])
    w = rng.uniform(0.3, 0.7)
    lattice = w * np.asarray(a.lattice) + (1 - w) * np.asarray(b.lattice)

    target = {int(z): int(c) for z, c in zip(*np.unique(a.species, return_counts=True))}
    for z, want in target.items():
        have = np.flatnonzero(species == z)
        if len(have) > want:  # drop random extras
            drop = rng.choice(have, size=len(have) - want, replace=False)
            keep = np.setdiff1d(np.arange(len(species)), drop)
            frac, species = frac[keep], species[keep]
        elif len(have) < want:  # add spare atoms of this element, farthest from the rest first
            pool = np.flatnonzero(spare_species == z)
            order = _farthest_first(spare_frac[pool], frac, lattice)
            chosen = pool[order[: want - len(have)]]
            if len(chosen) < want - len(have):
                return None
            frac = np.concatenate([frac, spare_frac[chosen]])
            species = np.concatenate([species, spare_species[chosen]])
    if len(species) != a.num_sites:
        return None
    return Crystal(lattice, frac, species)


def _farthest_first(candidates: np.ndarray, kept: np.ndarray, lattice: np.ndarray) -> np.ndarray:
    """Indices of ``candidates`` sorted by decreasing minimum-image distance to ``kept``."""
    if len(kept) == 0 or len(candidates) == 0:
        return np.arange(len(candidates))
    diff = candidates[:, None, :] - kept[None, :, :]
    diff -= np.round(diff)
    dist = np.linalg.norm(diff @ lattice, axis=-1).min(axis=1)
    return np.argsort(-dist)
