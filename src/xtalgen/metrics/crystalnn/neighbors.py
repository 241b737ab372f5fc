"""CrystalNN neighbour weights of every site, the numbers of pymatgen's ``CrystalNN.get_nn_data``.

Defaults of ``CrystalNN()`` as used by matminer's ``CrystalNNFingerprint``: search cutoff 7 Å,
solid-angle Voronoi weights, porous adjustment (weight times solid angle / facet area),
electronegativity weight ``1 + 3 sqrt(|dX| / 3.3)``, distance cutoffs (0.5, 1) Å beyond the sum
of covalent radii (cosine taper), weights rounded to 3 decimals, CN probabilities from the
unit-semicircle integral between consecutive distinct weights (Pan et al., Inorg. Chem. 2021;
Zimmermann & Jain, RSC Adv. 2020).

Voronoi cells. pymatgen's ``VoronoiNN.get_voronoi_polyhedra`` tessellates, for every site, the
images within the cutoff of that site. Here the same images (bit-identical Cartesian
coordinates) of all sites are tessellated once; a site's cell is taken from that shared
tessellation when all its vertices lie within half the cutoff of the site (then no point the
reference leaves out can cut it, so it is the same polytope) and it has no degenerate facet.
Otherwise the site is redone with the reference's own per-site tessellation (same points, same
order, same qhull call, hence the same cell). Any case pymatgen handles by retrying or raising
(unbounded cell, qhull error, overlapping atoms, ...) raises :class:`Unsupported`, and the
caller uses the reference implementation instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import Voronoi

__all__ = ["CrystalNNParams", "SiteNeighbours", "Unsupported", "structure_neighbours"]


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
    neighbours of CN ``c`` are ``coords[:c]``. ``weights``: their unrounded weights (sorting key);
    where two are equal to float noise, the reference's order among them is its own noise.
    """

    coords: np.ndarray
    cn_weights: dict[int, float]
    weights: np.ndarray = field(default_factory=lambda: np.empty(0))

    def tie_groups(self, cn: int, rel: float = 1e-9) -> np.ndarray | None:
        """Labels (cn,) of runs of near-equal weights among the first ``cn`` neighbours (whose
        order in the reference is float noise), or None when there is no such run."""
        w = self.weights[:cn]
        tied = w[:-1] - w[1:] <= rel * w[:-1]
        if not tied.any():
            return None
        return np.concatenate([[0], np.cumsum(~tied)])


@dataclass
class _Sphere:
    """Images within the search cutoff of a site, by distance (stable), as pymatgen lists them."""

    frac: np.ndarray   # (k, 3) fractional coordinates of the images
    site: np.ndarray   # (k,) index of the site in the structure
    image: np.ndarray  # (k, 3) lattice translation
    dist: np.ndarray   # (k,) distance from the site (Å)


@dataclass
class _Facets:
    """Voronoi facets of one site's cell: neighbour coordinates / sites, solid angle, area."""

    coords: np.ndarray
    site: np.ndarray
    angle: np.ndarray
    area: np.ndarray


def _sphere(structure, center: np.ndarray, cutoff: float) -> _Sphere:
    """Same call as ``Structure.get_sites_in_sphere`` (then sorted by distance as VoronoiNN does)."""
    fcoords, dists, inds, images = structure.lattice.get_points_in_sphere(
        structure.frac_coords, center, cutoff, zip_results=False)
    if len(inds) < 5:
        raise Unsupported("fewer than 5 points in the search sphere")
    order = np.argsort(dists, kind="stable")
    return _Sphere(np.asarray(fcoords)[order], np.asarray(inds, dtype=np.int64)[order],
                   np.rint(np.asarray(images)[order]).astype(np.int64), np.asarray(dists)[order])


def _cartesian(matrix: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """One ``np.dot`` per point, as ``PeriodicNeighbor.coords``: bit-identical to the reference
    (a single matrix product rounds differently), so qhull sees exactly the same input."""
    return np.array([np.dot(f, matrix) for f in frac]).reshape(-1, 3)


def _solid_angles_and_volumes(center: np.ndarray, vertices: np.ndarray, ridges: list[list[int]],
                              guard: float, exact: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """Solid angle (sr) and pyramid volume (Å^3) of each facet seen from ``center``.

    Fan triangulation from the facet's first vertex, as pymatgen's ``solid_angle`` (Van Oosterom
    & Strackee tetrahedron formula, negative angles shifted by pi) and ``vol_tetra``. A facet
    with a near-flat fan triangle (where the reference jumps by 2 pi at an exact zero) gets
    pymatgen's own ``solid_angle`` when ``exact`` (the reference's vertices), else None is returned.
    """
    a_idx, b_idx, c_idx, owner = [], [], [], []
    for r, vind in enumerate(ridges):
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
    near_flat = (tp <= guard * scale) | (np.abs(de) <= guard * scale)
    if not exact and near_flat.any():
        return None
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


def _cell_facets(voro: Voronoi, c: int, points: np.ndarray, site_of: np.ndarray,
                 params: CrystalNNParams, exact: bool) -> _Facets | None:
    """Facets of the cell of point ``c`` (``VoronoiNN._extract_cell_info``, all targets).

    ``exact`` (the reference's own tessellation): anomalies raise ``Unsupported`` as pymatgen
    would retry or raise. Otherwise (shared tessellation) any anomaly, and any cell reaching
    half the search cutoff from its centre (where the reference's truncated point set could cut
    it differently), returns None so the caller redoes the site exactly.
    """
    pairs = voro.ridge_points
    on_center = np.flatnonzero((pairs[:, 0] == c) | (pairs[:, 1] == c))
    ridge_vertices = voro.ridge_vertices
    ridges = [ridge_vertices[i] for i in on_center.tolist()]
    if len(ridges) == 0 or any(-1 in vind or len(vind) < 3 for vind in ridges):
        if exact:
            raise Unsupported("unbounded or degenerate Voronoi cell")
        return None
    center = points[c]
    if not exact:
        corners = voro.vertices[np.unique(np.concatenate(ridges))] - center
        if np.einsum("ij,ij->i", corners, corners).max() >= (0.5 * params.search_cutoff - 1e-6) ** 2:
            return None
    got = _solid_angles_and_volumes(center, voro.vertices, ridges, params.degenerate_guard, exact)
    if got is None:
        return None
    angle, volume = got
    others = np.where(pairs[on_center, 1] == c, pairs[on_center, 0], pairs[on_center, 1])
    diff = center - points[others]
    face_dist = np.sqrt(np.einsum("ij,ij->i", diff, diff)) / 2
    return _Facets(points[others], site_of[others], angle, 3 * volume / face_dist)


def _exact_facets(matrix: np.ndarray, sphere: _Sphere, params: CrystalNNParams) -> _Facets:
    """The reference's tessellation of one site's search sphere (``get_voronoi_polyhedra``)."""
    if sphere.dist[1] < 1e-6:
        raise Unsupported("overlapping atoms")
    points = _cartesian(matrix, sphere.frac)
    try:
        voro = Voronoi(points)
    except Exception as exc:  # qhull errors: pymatgen retries with a larger cutoff
        raise Unsupported(f"qhull: {exc}") from exc
    return _cell_facets(voro, 0, points, sphere.site, params, exact=True)


class _SharedTessellation:
    """One tessellation of the union of all sites' search spheres (same images, same coordinates).

    A cell whose vertices all lie within half the search cutoff of its centre is the same polytope
    as in the reference's per-site tessellation (no point beyond the cutoff can cut it).
    """

    def __init__(self, matrix: np.ndarray, spheres: list[_Sphere], params: CrystalNNParams) -> None:
        self.params = params
        keys = np.concatenate([np.column_stack([s.site, s.image]) for s in spheres])
        frac = np.concatenate([s.frac for s in spheres])
        unique, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        offsets = np.cumsum([0] + [len(s.site) for s in spheres])
        self.center_index = [int(inverse[o]) for o in offsets[:-1]]
        self.points = _cartesian(matrix, frac[first])
        self.site_of = unique[:, 0]
        try:
            self.voro: Voronoi | None = Voronoi(self.points)
        except Exception:  # the per-site path decides
            self.voro = None

    def facets(self, n: int) -> _Facets | None:
        if self.voro is None:
            return None
        return _cell_facets(self.voro, self.center_index[n], self.points, self.site_of, self.params, exact=False)


def structure_neighbours(structure, electronegativity: np.ndarray, radius: np.ndarray,
                         params: CrystalNNParams = CrystalNNParams(),
                         shared: bool = True) -> list[SiteNeighbours]:
    """CrystalNN neighbours of every site of a pymatgen ``Structure`` (ordered, no oxidation states).

    ``electronegativity`` / ``radius``: per site, Pauling X (NaN if unknown) and the covalent
    (else atomic) radius in Å. ``shared``: one tessellation for all sites where that is exact,
    the reference's per-site tessellation elsewhere (False: per-site everywhere).
    """
    matrix = structure.lattice.matrix
    centers = [site.coords for site in structure]
    spheres = [_sphere(structure, c, params.search_cutoff) for c in centers]
    for sphere in spheres:
        if sphere.dist[1] < 1e-6:
            raise Unsupported("overlapping atoms")
    tess = _SharedTessellation(matrix, spheres, params) if shared else None
    out = []
    for n, sphere in enumerate(spheres):
        facets = tess.facets(n) if tess is not None else None
        if facets is None:
            facets = _exact_facets(matrix, sphere, params)
        out.append(_weights(centers[n], electronegativity[n], radius[n], facets,
                            electronegativity, radius, params))
    return out


def _weights(site_center: np.ndarray, x_center: float, r_center: float, facets: _Facets,
             electronegativity: np.ndarray, radius: np.ndarray, params: CrystalNNParams) -> SiteNeighbours:
    """``VoronoiNN._extract_nn_info`` + ``CrystalNN.get_nn_data`` on one cell's facets."""
    angle, area = facets.angle, facets.area
    # VoronoiNN._extract_nn_info (tol 0): keep facets with a positive solid angle
    max_angle = angle.max()
    keep = angle > 0.0
    if not np.isfinite(max_angle) or max_angle <= 0 or np.any(area[keep] <= 0):
        raise Unsupported("non-positive facet")
    nbr_site, nbr_coords = facets.site[keep], facets.coords[keep]
    angle, area = angle[keep], area[keep]
    weight = angle / max_angle
    weight = weight * (angle / area)  # porous adjustment
    x_nbr = electronegativity[nbr_site]
    if params.x_diff_weight > 0:
        with np.errstate(invalid="ignore"):
            chem = 1 + params.x_diff_weight * np.sqrt(np.abs(x_center - x_nbr) / 3.3)
        weight = weight * np.where(np.isnan(x_nbr) | np.isnan(x_center), 1.0, chem)
    order = np.argsort(-weight, kind="stable")
    nbr_site, nbr_coords, weight = nbr_site[order], nbr_coords[order], weight[order]
    if weight[0] == 0:
        return SiteNeighbours(np.empty((0, 3)), {0: 1.0})
    weight = weight / weight[0]

    diff = site_center - nbr_coords
    dist = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    diameter = r_center + radius[nbr_site]
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
    return SiteNeighbours(nbr_coords[kept], _cn_weights(rounded[kept]), weight[kept])
