"""Local structure order parameters of the matminer "ops" preset, vectorised over sites.

Formulas: pymatgen ``LocalStructOrderParams.get_order_parameters`` (Zimmermann, Horton, Kumar
& Jain, Front. Mater. 4, 34 (2017); Peters, J. Chem. Phys. 131, 244103 (2009); Steinhardt,
Nelson & Ronchetti, Phys. Rev. B 28, 784 (1983)). Each OP sees a batch of B sites with the same
coordination number n, as unit bond vectors ``u`` of shape (B, n, 3).

Conventions of the reference, kept here: neighbour j is the north pole; for each k != j the
polar angle theta_jk = acos(u_j . u_k) and the prime meridian is the part of u_k normal to u_j
(pair skipped for azimuths when its norm is < 1e-12); for each further m the azimuth phi_jkm is
the angle between the normal parts of u_k and u_m. Per (j, k) a weighted sum and a norm are
accumulated; "max" OPs return the largest sum/norm over (j, k), the others a global ratio.

The reference has steps (strict comparisons of angles with thresholds, the 1e-12 norm test,
the pole test of the BOOPs); a site whose values lie within a guard band of a step is reported
as ``ambiguous`` and the caller evaluates it with the reference code instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["Geometry", "bcc_pair_terms", "geometry", "order_parameter", "unit_bonds"]

VERY_SMALL = 1e-12  # the reference's norm threshold for a usable azimuth axis (Å-free: unit vectors)
ANGLE_GUARD = 1e-9  # rad: angles this close to a threshold are ambiguous
NORM_GUARD = (0.5e-12, 1e-5)  # normal-part norms in this band are ambiguous
COLLINEAR = 1 - 1e-7  # |cos theta| above this: dot product recomputed as the reference does
POLE_GUARD = 1e-14  # |z| this close to 1 - 1e-12 is ambiguous (BOOP azimuth)

PYRAMIDS = {"T", "tri_pyr", "sq_pyr", "pent_pyr", "hex_pyr"}
BIPYRAMIDS = {"tri_bipyr", "sq_bipyr", "pent_bipyr", "hex_bipyr", "oct_max", "sq_plan_max",
              "hex_plan_max", "see_saw_rect"}
TARGET_ANGLE = {"tri_plan_max", "tet_max"}
BOOPS = {"q2": 2, "q4": 4, "q6": 6}


@dataclass
class Geometry:
    """Angles of a batch: ``theta`` (B,n,n), ``phi`` (B,n,n,n), masks and the ambiguity of each site."""

    n: int
    unit: np.ndarray
    dist: np.ndarray
    theta: np.ndarray
    pair: np.ndarray      # (B,n,n) j != k
    axis_ok: np.ndarray   # (B,n,n) pair with a usable prime meridian (not flag_xaxis)
    triple: np.ndarray    # (B,n,n,n) m not in {j,k}, axis of (j,k) usable: south-pole terms
    inner: np.ndarray     # (B,n,n,n) triple and axis of (j,m) usable: azimuth terms
    phi: np.ndarray
    ambiguous: np.ndarray  # (B,) any normal-part norm in the guard band


def unit_bonds(center: np.ndarray, nbrs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit bond vectors (k, 3) and bond lengths (k,) (Å), computed exactly as the reference
    (same numpy calls per bond, so bit-identical: polar angles near 0 or pi amplify any noise)."""
    bonds = nbrs - center
    dist = np.array([float(np.linalg.norm(v)) for v in bonds])
    return bonds / dist[:, None], dist


def geometry(unit: np.ndarray, dist: np.ndarray) -> Geometry:
    """Angles of a batch of unit bond vectors (B, n, 3) with bond lengths (B, n)."""
    b, n, _ = unit.shape
    dots = np.einsum("bjx,bkx->bjk", unit, unit)
    # acos is ill-conditioned near +-1: take those dot products with the reference's own call
    for bb, j, k in np.argwhere(np.abs(dots) > COLLINEAR).tolist():
        if j != k:
            dots[bb, j, k] = np.inner(unit[bb, j], unit[bb, k])
    theta = np.arccos(np.clip(dots, -1.0, 1.0))
    eye = np.eye(n, dtype=bool)
    pair = np.broadcast_to(~eye, (b, n, n))
    # part of u_k normal to u_j (Gram-Schmidt), indexed [b, j, k]
    self_dot = np.einsum("bjx,bjx->bj", unit, unit)
    normal = unit[:, None, :, :] - (dots / self_dot[:, :, None])[..., None] * unit[:, :, None, :]
    norm = np.sqrt(np.einsum("bjkx,bjkx->bjk", normal, normal))
    axis_ok = pair & (norm >= VERY_SMALL)
    # a near-collinear pair's meridian is noise-dominated (or near the 1e-12 step): reference
    ambiguous = np.any(pair & (norm > NORM_GUARD[0]) & (norm < NORM_GUARD[1]), axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        axis = normal / norm[..., None]
    axis = np.where(axis_ok[..., None], axis, 0.0)
    cos_phi = np.einsum("bjkx,bjmx->bjkm", axis, axis)
    phi = np.arccos(np.clip(cos_phi, -1.0, 1.0))
    distinct = ~(eye[:, :, None] | eye[:, None, :] | eye[None, :, :])  # j, k, m all different
    triple = distinct[None] & axis_ok[:, :, :, None]
    inner = triple & axis_ok[:, :, None, :]
    return Geometry(n, unit, dist, theta, pair, axis_ok, triple, inner, phi, ambiguous)


def _near(values: np.ndarray, mask: np.ndarray, threshold: float) -> np.ndarray:
    """(B,) whether any masked value lies within ANGLE_GUARD of ``threshold``."""
    close = np.abs(values - threshold) < ANGLE_GUARD
    return np.any(close & mask, axis=tuple(range(1, values.ndim)))


def _gauss(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * x * x)


def _max_ratio(g: Geometry, acc: np.ndarray, norm: np.ndarray) -> np.ndarray:
    """Largest acc/norm over pairs (0 where norm <= 1e-12); NaN (= None) for a single neighbour."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(norm > 1e-12, acc / norm, 0.0)
    ratio = np.where(g.pair, ratio, -np.inf)
    out = ratio.max(axis=(1, 2)) if g.n > 1 else np.full(len(acc), np.nan)
    return out


def _sum_ratio(acc: np.ndarray, norm: np.ndarray) -> np.ndarray:
    """Sum of acc over sum of norm; NaN (= None) when the norm sum is <= 1e-12."""
    num, den = acc.sum(axis=(1, 2)), norm.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 1e-12, num / den, np.nan)


def _cos_pow(phi: np.ndarray, p: Mapping) -> np.ndarray:
    return np.cos(p["fac_AA"] * phi) ** p["exp_cos_AA"]


def bent(g: Geometry, p: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """"bent": mean Gaussian of theta_jk/pi about TA (width 1/IGW_TA) over ordered pairs."""
    acc = np.where(g.pair, _gauss(p["IGW_TA"] * (g.theta / math.pi - p["TA"])), 0.0)
    return _sum_ratio(acc, g.pair.astype(float)), np.zeros(len(acc), bool)


def target_angle(g: Geometry, p: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """"tri_plan_max" / "tet_max": Gaussians of theta_jk and theta_jm about TA, the latter times
    cos(fac_AA phi)^exp_cos_AA; max over (j, k) of the mean."""
    acc = np.where(g.pair, _gauss(p["IGW_TA"] * (g.theta / math.pi - p["TA"])), 0.0)
    term = _gauss(p["IGW_TA"] * (g.theta[:, :, None, :] / math.pi - p["TA"])) * _cos_pow(g.phi, p)
    acc = acc + np.where(g.inner, term, 0.0).sum(axis=3)
    norm = g.pair + g.inner.sum(axis=3)
    return _max_ratio(g, acc, norm), np.zeros(len(acc), bool)


def pyramid(g: Geometry, p: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """"T", "*_pyr": theta_jk and theta_jm near 90 degrees (IGW_EP), azimuth term cos(fac_AA phi)^e."""
    acc = np.where(g.pair, _gauss(p["IGW_EP"] * (g.theta / math.pi - 0.5)), 0.0)
    term = _gauss(p["IGW_EP"] * (g.theta[:, :, None, :] / math.pi - 0.5)) * _cos_pow(g.phi, p)
    acc = acc + np.where(g.inner, term, 0.0).sum(axis=3)
    norm = g.pair + g.inner.sum(axis=3)
    return _max_ratio(g, acc, norm), np.zeros(len(acc), bool)


def bipyramid(g: Geometry, p: Mapping, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """"*_bipyr", "oct_max", "sq_plan_max", "hex_plan_max", "see_saw_rect".

    Equatorial angles (theta < min_SPP) near 90 degrees (IGW_EP; "hex_plan_max": |theta/pi - 1/2|
    near TA with IGW_TA), a south-pole term for theta_jm >= min_SPP (IGW_SPP), and the azimuth
    term cos(fac_AA phi)^e when both theta_jk and theta_jm are equatorial ("see_saw_rect": and
    phi < 3 pi / 4). Max over (j, k).
    """
    spp = p["min_SPP"]

    def equatorial(t: np.ndarray) -> np.ndarray:
        if kind == "hex_plan_max":
            return _gauss(p["IGW_TA"] * (np.abs(t / math.pi - 0.5) - p["TA"]))
        return _gauss(p["IGW_EP"] * (t / math.pi - 0.5))

    eq_k = g.pair & (g.theta < spp)
    acc = np.where(eq_k, equatorial(g.theta), 0.0)
    norm = eq_k.astype(float)
    theta_m = np.broadcast_to(g.theta[:, :, None, :], g.phi.shape)
    south = g.triple & (theta_m >= spp)
    acc = acc + np.where(south, _gauss(p["IGW_SPP"] * (theta_m / math.pi - 1.0)), 0.0).sum(axis=3)
    norm = norm + south.sum(axis=3)
    both = g.inner & (theta_m < spp) & eq_k[:, :, :, None]
    ambiguous = _near(g.theta, g.pair, spp)
    if kind == "see_saw_rect":
        ambiguous |= _near(g.phi, both, 0.75 * math.pi)
        both = both & (g.phi < 0.75 * math.pi)
    acc = acc + np.where(both, _cos_pow(g.phi, p) * equatorial(theta_m), 0.0).sum(axis=3)
    norm = norm + both.sum(axis=3)
    return _max_ratio(g, acc, norm), ambiguous


def pent_plan(g: Geometry, p: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """"pent_plan_max": theta near 72 or 144 degrees (whichever side of TA pi), azimuth cos^2 phi."""

    def gauss(t: np.ndarray) -> np.ndarray:
        centre = np.where(t <= p["TA"] * math.pi, 0.4, 0.8)
        return _gauss(p["IGW_TA"] * (t / math.pi - centre))

    acc = np.where(g.pair, gauss(g.theta), 0.0)
    term = gauss(g.theta[:, :, None, :]) * np.cos(g.phi) ** 2
    acc = acc + np.where(g.inner, term, 0.0).sum(axis=3)
    norm = g.pair + g.inner.sum(axis=3)
    return _max_ratio(g, acc, norm), np.zeros(len(acc), bool)


def bcc_pair_terms(g: Geometry, p: Mapping) -> np.ndarray:
    """(B, n, n) contribution of the ordered pair (j pole, k meridian) to "bcc" (Peters 2009):
    south-pole Gaussian (w_SPP, IGW_SPP) for theta_jk >= min_SPP, else sum over m of
    sign(theta_jk - pi/2) cos(3 phi_jkm) e^{1/2} t e^{-t^2/2}, t = (theta_jm - pi/2) / asin(1/3).
    The reference counts (j, k) for j < k only, so the OP depends on the neighbour order
    through the antisymmetric part of this matrix."""
    spp = p["min_SPP"]
    pole = g.pair & (g.theta >= spp)
    terms = np.where(pole, p["w_SPP"] * _gauss(p["IGW_SPP"] * (g.theta / math.pi - 1.0)), 0.0)
    sign = np.where(g.theta > 0.5 * math.pi, 1.0, -1.0)
    t = (g.theta[:, :, None, :] - 0.5 * math.pi) / math.asin(1 / 3)
    term = sign[..., None] * np.cos(3 * g.phi) * (1 / math.exp(-0.5)) * t * _gauss(t)
    use = g.inner & (g.pair & (g.theta < spp))[..., None]
    return terms + np.where(use, term, 0.0).sum(axis=3)


def bcc(g: Geometry, p: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """"bcc": sum of :func:`bcc_pair_terms` over pairs j < k, over 0.5 n (6 + (n-2)(n-3))."""
    upper = np.triu(np.ones((g.n, g.n), dtype=bool), 1)[None]
    acc = np.where(upper, bcc_pair_terms(g, p), 0.0).sum(axis=(1, 2))
    n = g.n
    out = acc / (0.5 * n * (6 + (n - 2) * (n - 3))) if n > 3 else np.full(len(acc), np.nan)
    spp = p["min_SPP"]
    ambiguous = _near(g.theta, g.pair, spp) | _near(g.theta, g.pair, 0.5 * math.pi)
    return out, ambiguous


def cuboct(g: Geometry, p: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """"cuboct_max": south pole (w_SPP, IGW_SPP) for theta_jk >= min_SPP; for p4 < theta_jk < p2
    and theta_jm < min_SPP, one of three terms by the band of theta_jm (keys 2, 4, 5, 6 of the
    parameters, as in the reference). Max over (j, k)."""
    spp, lo, hi = p["min_SPP"], p[4], p[2]
    pole = g.pair & (g.theta >= spp)
    acc = np.where(pole, p["w_SPP"] * _gauss(p["IGW_SPP"] * (g.theta / math.pi - 1.0)), 0.0)
    norm = np.where(pole, p["w_SPP"], 0.0)
    tm = np.broadcast_to(g.theta[:, :, None, :], g.phi.shape)
    gate = g.inner & (tm < spp) & ((g.theta > lo) & (g.theta < hi))[..., None]
    middle = (tm > lo) & (tm < hi)
    tilt = _gauss(0.0556 * (np.cos(g.phi - 0.5 * math.pi) - 0.81649658))
    term = np.where(middle, np.cos(g.phi) ** 2 * _gauss(p[5] * (tm / math.pi - 0.5)), 0.0)
    term = np.where(tm < lo, tilt * _gauss(p[6] * (tm / math.pi - 1 / 3)), term)
    term = np.where(tm > hi, tilt * _gauss(p[6] * (tm / math.pi - 2 / 3)), term)
    counted = gate & (middle | (tm < lo) | (tm > hi))
    acc = acc + np.where(counted, term, 0.0).sum(axis=3)
    norm = norm + counted.sum(axis=3)
    ambiguous = _near(g.theta, g.pair, spp) | _near(g.theta, g.pair, lo) | _near(g.theta, g.pair, hi)
    return _max_ratio(g, acc, norm), ambiguous


def _boop_factors(degree: int, cos_t: np.ndarray, sin_t: np.ndarray) -> list[np.ndarray]:
    """Polar parts of Y_lm (m = 0..l) in the reference's normalisation (l = 2, 4, 6)."""
    c, s = cos_t, sin_t
    pi = math.pi
    if degree == 2:
        return [0.25 * math.sqrt(5 / pi) * (3 * c**2 - 1.0),
                0.5 * math.sqrt(15 / (2 * pi)) * s * c,
                0.25 * math.sqrt(15 / (2 * pi)) * s**2]
    if degree == 4:
        return [3 / 16 * math.sqrt(1 / pi) * (35 * c**4 - 30 * c**2 + 3.0),
                3 / 8 * math.sqrt(5 / pi) * s * (7 * c**3 - 3 * c),
                3 / 8 * math.sqrt(5 / (2 * pi)) * s**2 * (7 * c**2 - 1.0),
                3 / 8 * math.sqrt(35 / pi) * s**3 * c,
                3 / 16 * math.sqrt(35 / (2 * pi)) * s**4]
    return [1 / 32 * math.sqrt(13 / pi) * (231 * c**6 - 315 * c**4 + 105 * c**2 - 5.0),
            1 / 16 * math.sqrt(273 / (2 * pi)) * s * (33 * c**5 - 30 * c**3 + 5 * c),
            1 / 64 * math.sqrt(1365 / pi) * s**2 * (33 * c**4 - 18 * c**2 + 1.0),
            1 / 32 * math.sqrt(1365 / pi) * s**3 * (11 * c**3 - 3 * c),
            3 / 32 * math.sqrt(91 / (2 * pi)) * s**4 * (11 * c**2 - 1.0),
            3 / 32 * math.sqrt(1001 / pi) * s**5 * c,
            1 / 64 * math.sqrt(3003 / pi) * s**6]


def boop(g: Geometry, degree: int) -> tuple[np.ndarray, np.ndarray]:
    """Steinhardt q_l = sqrt(4 pi / (2l+1) sum_m |sum_j Y_lm(u_j)|^2) / n, z the polar axis and
    phi = 0 for bonds within 1e-12 of a pole (as the reference)."""
    z = g.unit[..., 2]
    theta = np.arccos(np.clip(z, -1.0, 1.0))
    lou = 1 - 1e-12
    off_pole = (z > -lou) & (z < lou)
    x, y = g.unit[..., 0], g.unit[..., 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        phi = np.arccos(np.clip(x / np.sqrt(x * x + y * y), -1.0, 1.0))
    phi = np.where(off_pole, np.where(y < 0.0, -phi, phi), 0.0)
    factors = _boop_factors(degree, np.cos(theta), np.sin(theta))
    acc = factors[0].sum(axis=1) ** 2
    for m in range(1, degree + 1):
        re = (factors[m] * np.cos(m * phi)).sum(axis=1)
        im = (factors[m] * np.sin(m * phi)).sum(axis=1)
        acc = acc + 2 * (re * re + im * im)
    q = np.sqrt(4 * math.pi * acc / ((2 * degree + 1) * float(g.n**2)))
    ambiguous = np.any(np.abs(np.abs(z) - lou) < POLE_GUARD, axis=1)
    return q, ambiguous


def single_bond(g: Geometry) -> tuple[np.ndarray, np.ndarray]:
    """"sgl_bd": 1 - d_min / d_second (1 for a single neighbour)."""
    if g.n == 1:
        return np.ones(len(g.dist)), np.zeros(len(g.dist), bool)
    d = np.sort(g.dist, axis=1)
    return 1 - d[:, 0] / d[:, 1], np.zeros(len(g.dist), bool)


def order_parameter(g: Geometry, kind: str, params: Mapping | None) -> tuple[np.ndarray, np.ndarray]:
    """(values (B,), ambiguous (B,)) of one OP type; NaN stands for the reference's None."""
    if kind == "sgl_bd":
        values, amb = single_bond(g)
    elif kind in BOOPS:
        values, amb = boop(g, BOOPS[kind])
    elif kind == "bent":
        values, amb = bent(g, params)
    elif kind in TARGET_ANGLE:
        values, amb = target_angle(g, params)
    elif kind in PYRAMIDS:
        values, amb = pyramid(g, params)
    elif kind in BIPYRAMIDS:
        values, amb = bipyramid(g, params, kind)
    elif kind == "pent_plan_max":
        values, amb = pent_plan(g, params)
    elif kind == "bcc":
        values, amb = bcc(g, params)
    elif kind == "cuboct_max":
        values, amb = cuboct(g, params)
    else:
        raise ValueError(f"order parameter {kind!r} is not implemented")
    if kind not in BOOPS and kind not in ("sgl_bd", "bent"):
        amb = amb | g.ambiguous
    return values, amb
