"""CrystalNN neighbour weights of one site, the numbers of pymatgen's ``CrystalNN.get_nn_data``.

Defaults of ``CrystalNN()`` as used by matminer's ``CrystalNNFingerprint``: search cutoff 7 Å,
solid-angle Voronoi weights, porous adjustment (weight times solid angle / facet area),
electronegativity weight ``1 + 3 sqrt(|dX| / 3.3)``, distance cutoffs (0.5, 1) Å beyond the sum
of covalent radii (cosine taper), weights rounded to 3 decimals, CN probabilities from the
unit-semicircle integral between consecutive distinct weights (Pan et al., Inorg. Chem. 2021;
Zimmermann & Jain, RSC Adv. 2020).

The Voronoi cell of a site is computed exactly as pymatgen's ``VoronoiNN.get_voronoi_polyhedra``
does: the same points (all images within the cutoff, bit-identical Cartesian coordinates,
ordered by distance) go to the same qhull call, so the tessellation is identical. Only the
Python loops around it are replaced by numpy. Any case pymatgen handles by retrying or raising
(unbounded cell, qhull error, overlapping atoms, ...) raises :class:`Unsupported`, and the
caller uses the reference implementation instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial import Voronoi

__all__ = ["CrystalNNParams", "SiteNeighbours", "Unsupported", "site_neighbours"]


class Unsupported(Exception):
    """A case the fast path does not reproduce exactly; use the reference implementation."""


@dataclass(frozen=True)
class CrystalNNParams:
    """The ``CrystalNN()`` defaults (lengths in Å)."""

    search_cutoff: float = 7.0
    x_diff_weight: float = 3.0
    distance_cutoffs: tuple[float, float] = (0.5, 1.0)
    # a weight this close to a 3rd-decimal rounding midpoint (in units of 1e-3) is ambiguous
    rounding_guard: float = 1e-6
    # a facet with a fan triangle whose |triple product| / (r0 r1 r2) is below this (near-flat)
    # gets its solid angle from pymatgen's ``solid_angle`` on the same vertices
    degenerate_guard: float = 1e-10


@dataclass
class SiteNeighbours:
    """Neighbours with non-zero CrystalNN weight of one site, sorted like pymatgen's.

    ``coords``: (k, 3) Cartesian coordinates (Å), bit-identical to the reference sites';
    ``cn_weights``: CN -> probability (floats), the ``cn_weights`` of ``NNData``. The
    neighbours of CN ``c`` are ``coords[:c]``.
    """

    coords: np.ndarray
    cn_weights: dict[int, float]


def _sphere_points(structure, center: np.ndarray, cutoff: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images within ``cutoff`` of ``center``: (Cartesian coords, site indices, distances), by distance.

    Same call and same per-point ``get_cartesian_coords`` as ``Structure.get_sites_in_sphere`` +
    ``PeriodicNeighbor.coords``, so coordinates are bit-identical to the reference ones.
    """
    lattice = structure.lattice
    fcoords, dists, inds, _ = lattice.get_points_in_sphere(
        structure.frac_coords, center, cutoff, zip_results=False)
    if len(inds) < 5:
        raise Unsupported("fewer than 5 points in the search sphere")
    order = np.argsort(dists, kind="stable")
    cart = np.array([lattice.get_cartesian_coords(f) for f in fcoords[order]])
    return cart, np.asarray(inds, dtype=np.int64)[order], np.asarray(dists)[order]


def _solid_angles_and_volumes(center: np.ndarray, vertices: np.ndarray, ridges: list[list[int]],
                              guard: float) -> tuple[np.ndarray, np.ndarray]:
    """Solid angle (sr) and pyramid volume (Å^3) of each facet seen from ``center``.

    Fan triangulation from the facet's first vertex, as pymatgen's ``solid_angle`` (Van Oosterom
    & Strackee tetrahedron formula, negative angles shifted by pi) and ``vol_tetra``.
    """
    a_idx, b_idx, c_idx, owner = [], [], [], []
    for r, vind in enumerate(ridges):
        if len(vind) < 3:
            raise Unsupported("facet with fewer than 3 vertices")
        for j in range(1, len(vind) - 1):
            a_idx.append(vind[0])
            b_idx.append(vind[j])
            c_idx.append(vind[j + 1])
            owner.append(r)
    va, vb, vc = vertices[a_idx], vertices[b_idx], vertices[c_idx]
    d0, d1, d2 = va - center, vb - center, vc - center
    r0, r1, r2 = (np.sqrt(np.einsum("ij,ij->i", d, d)) for d in (d0, d1, d2))
    tp = np.abs(np.einsum("ij,ij->i", d0, np.cross(d1, d2)))
    de = (r0 * r1 * r2 + r2 * np.einsum("ij,ij->i", d0, d1) + r1 * np.einsum("ij,ij->i", d0, d2)
          + r0 * np.einsum("ij,ij->i", d1, d2))
    scale = r0 * r1 * r2
    with np.errstate(divide="ignore", invalid="ignore"):
        tri_angle = np.arctan(tp / de)
    tri_angle = 2.0 * np.where(tri_angle > 0, tri_angle, tri_angle + math.pi)
    e4 = center - vc
    tri_vol = np.abs(np.einsum("ij,ij->i", e4, np.cross(va - vc, vb - vc))) / 6
    starts = np.flatnonzero(np.r_[True, np.diff(owner) != 0])
    angles = np.add.reduceat(tri_angle, starts)
    # near-flat triangles: the reference jumps by 2 pi at an exact zero, so use it verbatim there
    near_flat = (tp <= guard * scale) | (np.abs(de) <= guard * scale)
    for r in np.unique(np.asarray(owner)[near_flat]).tolist():
        angles[r] = _reference_solid_angle(center, [vertices[v] for v in ridges[r]])
    return angles, np.add.reduceat(tri_vol, starts)


def _reference_solid_angle(center: np.ndarray, coords: list[np.ndarray]) -> float:
    from pymatgen.core.local_env import solid_angle

    return float(solid_angle(center, coords))


def _semicircle_integral(bins: list[float], idx: int) -> float:
    """Area under the unit quarter circle between ``bins[idx+1]`` and ``bins[idx]``, normalised."""

    def area(x: float) -> float:
        return 0.5 * (x * math.sqrt(1 - x**2) + math.atan(x / math.sqrt(1 - x**2)))

    upper = 0.25 * math.pi if bins[idx] == 1 else area(bins[idx])
    return (upper - area(bins[idx + 1])) / (0.25 * math.pi)


def _cn_weights(rounded: np.ndarray) -> dict[int, float]:
    """CN -> probability from non-increasing rounded weights in (0, 1] (pymatgen's algorithm)."""
    bins: list[float] = []
    for w in rounded.tolist():
        if not bins or bins[-1] != w:
            bins.append(w)
    bins.append(0.0)
    out: dict[int, float] = {}
    for idx, val in enumerate(bins[:-1]):
        out[int(np.count_nonzero(rounded >= val))] = _semicircle_integral(bins, idx)
    cn0 = 1 - sum(out.values())
    if cn0 > 0:
        out[0] = cn0
    return out


def site_neighbours(structure, n: int, electronegativity: np.ndarray, radius: np.ndarray,
                    params: CrystalNNParams = CrystalNNParams()) -> SiteNeighbours:
    """CrystalNN neighbours of site ``n`` of a pymatgen ``Structure`` (ordered, no oxidation states).

    ``electronegativity`` / ``radius``: per site of ``structure``, Pauling X (NaN if unknown) and
    the covalent (else atomic) radius in Å.
    """
    site_center = structure[n].coords
    points, site_of, dists = _sphere_points(structure, site_center, params.search_cutoff)
    if dists[1] < 1e-6:
        raise Unsupported("overlapping atoms")
    try:
        voro = Voronoi(points)
    except Exception as exc:  # qhull errors: pymatgen retries with a larger cutoff
        raise Unsupported(f"qhull: {exc}") from exc
    pairs = voro.ridge_points
    on_center = np.flatnonzero((pairs == 0).any(axis=1))
    if len(on_center) == 0:
        raise Unsupported("no Voronoi facets")
    ridge_vertices = voro.ridge_vertices
    ridges = [ridge_vertices[i] for i in on_center.tolist()]
    if any(-1 in vind for vind in ridges):
        raise Unsupported("unbounded Voronoi cell")
    others = np.where(pairs[on_center, 1] == 0, pairs[on_center, 0], pairs[on_center, 1])
    cell_center = points[0]
    angle, volume = _solid_angles_and_volumes(cell_center, voro.vertices, ridges, params.degenerate_guard)
    face_dist = np.sqrt(np.einsum("ij,ij->i", cell_center - points[others], cell_center - points[others])) / 2
    area = 3 * volume / face_dist

    # VoronoiNN._extract_nn_info (tol 0): keep facets with a positive solid angle
    max_angle = angle.max()
    keep = angle > 0.0
    if not np.isfinite(max_angle) or max_angle <= 0 or np.any(area[keep] <= 0):
        raise Unsupported("non-positive facet")
    others, angle, area = others[keep], angle[keep], area[keep]
    weight = angle / max_angle
    weight = weight * (angle / area)  # porous adjustment
    x_center = electronegativity[n]
    x_nbr = electronegativity[site_of[others]]
    if params.x_diff_weight > 0:
        with np.errstate(invalid="ignore"):
            chem = 1 + params.x_diff_weight * np.sqrt(np.abs(x_center - x_nbr) / 3.3)
        weight = weight * np.where(np.isnan(x_nbr) | np.isnan(x_center), 1.0, chem)
    order = np.argsort(-weight, kind="stable")
    others, weight = others[order], weight[order]
    if weight[0] == 0:
        return SiteNeighbours(np.empty((0, 3)), {0: 1.0})
    weight = weight / weight[0]

    nbr_coords = points[others]
    diff = site_center - nbr_coords
    dist = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    diameter = radius[n] + radius[site_of[others]]
    low, high = diameter + params.distance_cutoffs[0], diameter + params.distance_cutoffs[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        taper = (np.cos((dist - low) / (high - low) * math.pi) + 1) * 0.5
    weight = weight * np.where(dist <= low, 1.0, np.where(dist < high, taper, 0.0))
    order = np.argsort(-weight, kind="stable")
    weight, nbr_coords = weight[order], nbr_coords[order]
    if weight[0] == 0:
        return SiteNeighbours(np.empty((0, 3)), {0: 1.0})

    scaled = weight * 1000.0
    if np.any(np.abs(np.abs(scaled - np.floor(scaled)) - 0.5) < params.rounding_guard):
        raise Unsupported("weight at a rounding midpoint")
    rounded = np.round(weight, 3)
    kept = rounded > 0
    return SiteNeighbours(nbr_coords[kept], _cn_weights(rounded[kept]))
