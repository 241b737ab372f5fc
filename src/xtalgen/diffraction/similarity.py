"""Shift-tolerant similarity of powder patterns: the weighted cross-correlation (WCC).

The WCC of de Gelder, Wehrens and Hageman (J. Comput. Chem. 22, 273-289, 2001) compares two
profiles f and g on a common 2-theta grid through their cross-correlation functions
``c_fg(r) = sum_x f(x) g(x + r)``, weighted by a triangle ``w(r) = max(0, 1 - |r| / l)`` of
half-width ``l`` degrees::

    WCC(f, g) = sum_r w(r) c_fg(r) / sqrt(sum_r w(r) c_ff(r) * sum_r w(r) c_gg(r))

For non-negative profiles it lies in [0, 1] and is 1 for identical ones; a peak displaced by
less than ``l`` still contributes, in proportion to how close it is. Because the triangle is
symmetric, ``sum_r w(r) c_fg(r) = f . (w * g)`` (a convolution), which is how it is computed.

Matching a crystal to a measured pattern (:func:`score_sticks`) adds three steps:

1. the measured pattern is put on a uniform grid over its own range, a smooth background
   (a running median over ``background`` degrees) is subtracted and negative values clipped;
2. both profiles are compared as ``intensity ** power`` (``power=0.5``: weak peaks count more,
   so one strong peak cannot decide alone, and a missing or rescaled peak costs less);
3. a zero shift of the whole pattern (up to ``max_shift`` degrees) is fitted, and
   the candidate's cell is scaled isotropically (every d-spacing times ``s``, ``s`` in
   ``1 +- max_strain``, coarse then fine) and the best WCC is kept, so a relaxed or
   template-derived cell that is a few percent too large or small still lines up. The scale
   is reported (``Fit.scale``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xtalgen.crystal import Crystal
from xtalgen.diffraction.pattern import Pattern, PatternError
from xtalgen.diffraction.simulate import (
    DEFAULT_ETA,
    DEFAULT_FWHM,
    DEFAULT_STEP,
    Sticks,
    broaden,
    scaled_two_theta,
    simulate_sticks,
    uniform_grid,
)

__all__ = [
    "Fit",
    "MatchSettings",
    "Reference",
    "fitted_pattern",
    "prepare_reference",
    "score_crystal",
    "score_sticks",
    "similarity",
    "triangle",
    "weighted_cross_correlation",
]


@dataclass(frozen=True)
class MatchSettings:
    """How a candidate is scored against a measured pattern (angles in degrees 2-theta).

    Attributes:
        fwhm: peak width of the simulated profiles.
        eta: Lorentzian fraction of the pseudo-Voigt peaks.
        width: half-width ``l`` of the WCC triangle.
        power: profiles are compared as ``intensity ** power`` (1: as they are).
        max_strain: largest isotropic cell scaling tried, as a fraction (0: none).
        scale_step: spacing of the coarse scale search (the fine one is 5x finer).
        background: window of the running-median background of the measured pattern (0: none).
        noise: the noise level of the measured pattern (robust standard deviation of what is
            left after the background) times this is subtracted before clipping at 0.
        max_shift: largest zero shift tried (whole pattern; 0: none).
        step: grid spacing.
    """

    fwhm: float = DEFAULT_FWHM
    eta: float = DEFAULT_ETA
    width: float = 1.0
    power: float = 0.5
    max_strain: float = 0.05
    scale_step: float = 0.005
    background: float = 5.0
    noise: float = 2.0
    max_shift: float = 0.3
    step: float = DEFAULT_STEP


@dataclass(frozen=True, eq=False)
class Reference:
    """A measured pattern ready for matching: ``grid`` (degrees), ``profile`` (background
    removed, ``** power``, max 1), ``wavelength`` (angstrom), the settings used."""

    grid: np.ndarray
    profile: np.ndarray
    wavelength: float
    settings: MatchSettings
    norm: float  # sum_r w(r) c_ff(r) of the profile

    @property
    def range(self) -> tuple[float, float]:
        return float(self.grid[0]), float(self.grid[-1])


@dataclass(frozen=True)
class Fit:
    """Score of one candidate: ``score`` (WCC, 1 = identical profiles) at the best ``scale``
    (the factor applied to its d-spacings)."""

    score: float
    scale: float = 1.0


def triangle(width: float, step: float) -> np.ndarray:
    """The WCC weight ``max(0, 1 - |r| / width)`` sampled every ``step`` degrees."""
    half = max(1, round(width / step))
    r = np.arange(-half, half + 1)
    return 1.0 - np.abs(r) / half


def _smear(profiles: np.ndarray, weight: np.ndarray) -> np.ndarray:
    from scipy.signal import fftconvolve

    return fftconvolve(np.atleast_2d(profiles), weight[None, :], mode="same", axes=-1)


def weighted_cross_correlation(f: np.ndarray, g: np.ndarray, width: float,
                               step: float = DEFAULT_STEP) -> np.ndarray | float:
    """WCC of profile ``f`` with ``g`` (or with each row of a 2-D ``g``), both on one uniform
    grid of spacing ``step`` degrees; triangle half-width ``width`` degrees. 0 for an empty
    profile."""
    weight = triangle(width, step)
    f = np.asarray(f, dtype=np.float64)
    g2 = np.atleast_2d(np.asarray(g, dtype=np.float64))
    gw = _smear(g2, weight)
    cross = gw @ f
    norm_f = float(f @ _smear(f, weight)[0])
    norm_g = np.einsum("sn,sn->s", g2, gw)
    out = _ratio(cross, norm_f, norm_g)
    return float(out[0]) if np.ndim(g) == 1 else out


def _ratio(cross: np.ndarray, norm_f: float, norm_g: np.ndarray) -> np.ndarray:
    denominator = np.sqrt(np.clip(norm_f * norm_g, 0.0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(denominator > 0, cross / np.where(denominator > 0, denominator, 1.0), 0.0)
    return np.clip(out, 0.0, 1.0)


def similarity(a: Pattern, b: Pattern, width: float = 1.0, *, power: float = 1.0,
               step: float = DEFAULT_STEP) -> float:
    """WCC of two patterns over the 2-theta range they share (interpolated onto a common grid
    every ``step`` degrees, compared as ``intensity ** power``); 1 for identical patterns."""
    lo, hi = max(a.range[0], b.range[0]), min(a.range[1], b.range[1])
    if hi - lo < 2 * step:
        raise PatternError(f"the patterns share no 2-theta range ({a.range} and {b.range})")
    grid = uniform_grid(lo, hi, step)
    f = np.clip(np.interp(grid, a.two_theta, a.intensity), 0.0, None) ** power
    g = np.clip(np.interp(grid, b.two_theta, b.intensity), 0.0, None) ** power
    return float(weighted_cross_correlation(f, g, width, step))


def _background(profile: np.ndarray, window: int) -> np.ndarray:
    from scipy.ndimage import median_filter, uniform_filter1d

    if window < 3:
        return np.zeros_like(profile)
    return uniform_filter1d(median_filter(profile, size=window, mode="nearest"), window,
                            mode="nearest")


def prepare_reference(measured: Pattern, settings: MatchSettings | None = None) -> Reference:
    """The measured pattern on a uniform grid over its own range, background removed, as
    ``intensity ** power``, strongest point 1."""
    settings = settings or MatchSettings()
    grid = uniform_grid(*measured.range, settings.step)
    profile = np.interp(grid, measured.two_theta, measured.intensity)
    profile = profile - _background(profile, round(settings.background / settings.step))
    if settings.noise > 0:
        sigma = 1.4826 * float(np.median(np.abs(profile - np.median(profile))))
        profile = profile - settings.noise * sigma
    profile = np.clip(profile, 0.0, None)
    top = profile.max()
    if not top > 0:
        raise PatternError(f"{measured.source or 'the pattern'}: no peaks above the background")
    profile = (profile / top) ** settings.power
    norm = float(profile @ _smear(profile, triangle(settings.width, settings.step))[0])
    return Reference(grid, profile, measured.wavelength, settings, norm)


def _sticks_range(reference: Reference) -> tuple[float, float]:
    """2-theta range (degrees) of the reflections that any tried scale can move into view."""
    s = reference.settings
    lo, hi = reference.range
    margin = 25.0 * s.fwhm
    sin_lo = np.sin(np.radians(max(lo - margin, 0.0)) / 2) * (1 - s.max_strain)
    sin_hi = min(1.0, np.sin(np.radians(min(hi + margin, 179.9)) / 2) * (1 + s.max_strain))
    return float(2 * np.degrees(np.arcsin(sin_lo))), min(179.9, float(2 * np.degrees(np.arcsin(sin_hi))))


def _scores(reference: Reference, sticks: Sticks, scales: np.ndarray) -> np.ndarray:
    s = reference.settings
    positions = scaled_two_theta(sticks, scales)
    profiles = broaden(positions, sticks.intensity, reference.grid, s.fwhm, s.eta)
    profiles = np.clip(profiles, 0.0, None) ** s.power
    weight = triangle(s.width, s.step)
    smeared = _smear(profiles, weight)
    norm_g = np.einsum("sn,sn->s", profiles, smeared)
    lags = round(s.max_shift / s.step)
    if lags < 1:
        cross = smeared @ reference.profile
    else:  # numerator at every zero shift within max_shift: lagged dot products
        from numpy.lib.stride_tricks import sliding_window_view

        padded = np.pad(smeared, ((0, 0), (lags, lags)))
        windows = sliding_window_view(padded, smeared.shape[1], axis=1)  # (S, 2 lags + 1, N)
        cross = np.einsum("skn,n->sk", windows, reference.profile).max(axis=1)
    return _ratio(cross, reference.norm, norm_g)


def score_sticks(reference: Reference, sticks: Sticks) -> Fit:
    """The best WCC of the sticks' broadened profile against ``reference`` over isotropic
    cell scalings (coarse grid of ``scale_step``, then 5x finer around the best)."""
    s = reference.settings
    if len(sticks.two_theta) == 0:
        return Fit(0.0, 1.0)
    if s.max_strain <= 0:
        return Fit(float(_scores(reference, sticks, np.array([1.0]))[0]), 1.0)
    n = max(1, round(s.max_strain / s.scale_step))
    coarse = 1.0 + s.scale_step * np.arange(-n, n + 1)
    scores = _scores(reference, sticks, coarse)
    best = coarse[int(np.argmax(scores))]
    fine_step = s.scale_step / 5
    fine = best + fine_step * np.arange(-4, 5)
    fine = fine[np.abs(fine - 1.0) <= s.max_strain + 1e-12]
    fine_scores = _scores(reference, sticks, fine)
    i = int(np.argmax(fine_scores))
    if fine_scores[i] >= scores.max():
        return Fit(float(fine_scores[i]), float(fine[i]))
    return Fit(float(scores.max()), float(best))


def score_crystal(reference: Reference, crystal: Crystal) -> tuple[Fit, Sticks]:
    """:func:`score_sticks` of ``crystal``'s reflections at the reference's wavelength."""
    sticks = simulate_sticks(crystal, reference.wavelength, _sticks_range(reference))
    return score_sticks(reference, sticks), sticks


def fitted_pattern(reference: Reference, sticks: Sticks, scale: float = 1.0) -> Pattern:
    """The candidate's profile on the reference grid at cell ``scale`` (strongest 100, plain
    intensities), for plots next to the measured pattern."""
    s = reference.settings
    profile = broaden(scaled_two_theta(sticks, scale)[0], sticks.intensity, reference.grid,
                      s.fwhm, s.eta)
    top = profile.max()
    return Pattern(reference.grid, profile * (100.0 / top) if top > 0 else profile,
                   reference.wavelength, source="simulated")
