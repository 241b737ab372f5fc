"""Simulated powder patterns: pymatgen ``XRDCalculator`` sticks, broadened on a 2-theta grid.

* :func:`simulate_sticks`: the reflections of a crystal (2-theta in degrees, intensity scaled
  to a strongest peak of 100; atomic scattering factors, Lorentz-polarisation factor, no
  Debye-Waller factors).
* :func:`broaden`: sticks -> profile on a uniform grid. Each stick is split between its two
  neighbouring grid points (linear weights, so sub-step positions survive) and the result is
  convolved with one pseudo-Voigt peak of ``fwhm`` degrees (``eta``: Lorentzian fraction;
  0 is a pure Gaussian). The peak width does not change with angle.
* :func:`scaled_two_theta`: where the sticks move when the lattice is scaled isotropically
  (``d -> scale * d``), used to fit a candidate's cell size to a measured pattern.
* :func:`simulate_pattern`: the three in one, a :class:`~xtalgen.diffraction.pattern.Pattern`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xtalgen.crystal import Crystal
from xtalgen.diffraction.pattern import CU_KALPHA, Pattern, PatternError

__all__ = [
    "DEFAULT_ETA",
    "DEFAULT_FWHM",
    "DEFAULT_RANGE",
    "DEFAULT_STEP",
    "Sticks",
    "broaden",
    "peak_kernel",
    "scaled_two_theta",
    "simulate_pattern",
    "simulate_sticks",
    "uniform_grid",
]

DEFAULT_RANGE = (10.0, 90.0)
"""2-theta range of simulated patterns, degrees."""

DEFAULT_FWHM = 0.1
"""Full width at half maximum of a simulated peak, degrees 2-theta."""

DEFAULT_ETA = 0.5
"""Lorentzian fraction of the pseudo-Voigt peak shape."""

DEFAULT_STEP = 0.02
"""Grid spacing of simulated profiles, degrees 2-theta."""


@dataclass(frozen=True, eq=False)
class Sticks:
    """Reflections of one crystal: ``two_theta`` (degrees), ``intensity`` (strongest 100),
    ``wavelength`` (angstrom)."""

    two_theta: np.ndarray
    intensity: np.ndarray
    wavelength: float = CU_KALPHA

    @property
    def d_spacing(self) -> np.ndarray:
        """Interplanar spacing of each reflection, angstrom (Bragg's law)."""
        return self.wavelength / (2.0 * np.sin(np.radians(self.two_theta) / 2.0))


def simulate_sticks(crystal: Crystal, wavelength: float = CU_KALPHA,
                    two_theta_range: tuple[float, float] = DEFAULT_RANGE) -> Sticks:
    """The reflections of ``crystal`` in ``two_theta_range`` (degrees) at ``wavelength``
    (angstrom), from pymatgen's ``XRDCalculator``."""
    from pymatgen.analysis.diffraction.xrd import XRDCalculator

    lo, hi = float(two_theta_range[0]), min(float(two_theta_range[1]), 179.9)
    calculator = XRDCalculator(wavelength=float(wavelength))
    pattern = calculator.get_pattern(crystal.to_pymatgen(), scaled=True, two_theta_range=(lo, hi))
    return Sticks(np.asarray(pattern.x, dtype=np.float64), np.asarray(pattern.y, dtype=np.float64),
                  float(wavelength))


def uniform_grid(lo: float, hi: float, step: float = DEFAULT_STEP) -> np.ndarray:
    """Uniform 2-theta grid from ``lo`` to ``hi`` (degrees, both included up to one step)."""
    if not hi > lo or not step > 0:
        raise PatternError(f"empty 2-theta grid: {lo:g}-{hi:g} degrees in steps of {step:g}")
    return lo + step * np.arange(int(np.floor((hi - lo) / step + 1e-9)) + 1)


def peak_kernel(step: float, fwhm: float = DEFAULT_FWHM, eta: float = DEFAULT_ETA) -> np.ndarray:
    """One pseudo-Voigt peak of unit height sampled every ``step`` degrees, centred, reaching
    out 4 FWHM (Gaussian) or 25 FWHM (any Lorentzian part)."""
    if not fwhm > 0:
        raise PatternError(f"the peak FWHM must be positive, got {fwhm}")
    if not 0.0 <= eta <= 1.0:
        raise PatternError(f"the Lorentzian fraction eta must lie in [0, 1], got {eta}")
    reach = (25.0 if eta > 0 else 4.0) * fwhm
    half = max(1, int(np.ceil(reach / step)))
    x = step * np.arange(-half, half + 1)
    gauss = np.exp(-4.0 * np.log(2.0) * (x / fwhm) ** 2)
    lorentz = 1.0 / (1.0 + 4.0 * (x / fwhm) ** 2)
    return eta * lorentz + (1.0 - eta) * gauss


def broaden(two_theta: np.ndarray, intensity: np.ndarray, grid: np.ndarray,
            fwhm: float = DEFAULT_FWHM, eta: float = DEFAULT_ETA) -> np.ndarray:
    """Profile on the uniform ``grid`` (degrees) of sticks at ``two_theta`` with heights
    ``intensity``. ``two_theta`` may be (S, P) for S stick sets at once (then (S, N) out)."""
    from scipy.signal import fftconvolve

    positions = np.atleast_2d(np.asarray(two_theta, dtype=np.float64))
    heights = np.broadcast_to(np.asarray(intensity, dtype=np.float64), positions.shape)
    step = float(grid[1] - grid[0])
    kernel = peak_kernel(step, fwhm, eta)
    half = len(kernel) // 2
    n = len(grid)
    image = np.zeros((len(positions), n + 2 * half + 2))
    index = (positions - grid[0]) / step + half
    index = np.where(np.isfinite(index), index, -1.0)  # NaN: a reflection scaled away
    keep = (index >= 0) & (index < n + 2 * half)
    low = np.floor(index).astype(np.int64)
    frac = index - low
    rows = np.broadcast_to(np.arange(len(positions))[:, None], positions.shape)
    np.add.at(image, (rows[keep], low[keep]), heights[keep] * (1.0 - frac[keep]))
    np.add.at(image, (rows[keep], low[keep] + 1), heights[keep] * frac[keep])
    profile = fftconvolve(image, kernel[None, :], mode="same", axes=1)[:, half:half + n]
    profile = np.clip(profile, 0.0, None)
    return profile[0] if np.ndim(two_theta) == 1 else profile


def scaled_two_theta(sticks: Sticks, scales: np.ndarray | float) -> np.ndarray:
    """2-theta (degrees) of the sticks when every d-spacing is multiplied by ``scale``
    (an isotropic change of the cell); (S, P) for S scales, NaN where no reflection is left."""
    scales = np.atleast_1d(np.asarray(scales, dtype=np.float64))
    sine = np.sin(np.radians(sticks.two_theta) / 2.0)[None, :] / scales[:, None]
    with np.errstate(invalid="ignore"):
        out = 2.0 * np.degrees(np.arcsin(np.where(sine <= 1.0, sine, np.nan)))
    return out


def simulate_pattern(crystal: Crystal, two_theta_range: tuple[float, float] = DEFAULT_RANGE,
                     wavelength: float = CU_KALPHA, fwhm: float = DEFAULT_FWHM, *,
                     step: float = DEFAULT_STEP, eta: float = DEFAULT_ETA) -> Pattern:
    """The broadened powder pattern of ``crystal``: 2-theta in degrees over ``two_theta_range``
    every ``step``, peaks of ``fwhm`` degrees, strongest peak 100, at ``wavelength`` angstrom."""
    grid = uniform_grid(*two_theta_range, step)
    margin = 25.0 * fwhm  # peaks just outside the range reach into it
    sticks = simulate_sticks(crystal, wavelength,
                             (max(0.0, grid[0] - margin), min(179.9, grid[-1] + margin)))
    profile = broaden(sticks.two_theta, sticks.intensity, grid, fwhm, eta)
    top = profile.max()
    if top > 0:
        profile = profile * (100.0 / top)
    return Pattern(grid, profile, wavelength, source=f"simulated {crystal.formula}")
