"""Synthetic "measured" patterns: a crystal's simulated pattern with seeded imperfections.

What :func:`synthetic_measurement` does to the reflections of a crystal, in this order:

1. **peak shifts** (degrees 2-theta): one zero-point shift ``U(-zero_shift, zero_shift)`` for
   the whole pattern plus ``U(-peak_shift, peak_shift)`` per reflection; with the defaults no
   reflection moves by more than 0.2 degrees;
2. **intensity changes**: every reflection times ``U(1 - intensity_change, 1 + intensity_change)``;
3. **missing peaks**: ``n_missing`` reflections chosen at random among those of at least
   ``missing_min`` (percent of the strongest) inside the range are removed;
4. broadening (pseudo-Voigt, ``fwhm`` degrees), scaling to a strongest point of 100, a flat
   ``background`` (percent) and Gaussian noise of ``noise`` percent of the strongest peak,
   clipped at 0.

Used by the benchmark (``benchmarks/bench_xrd.py``) and the tests.
"""

from __future__ import annotations

import numpy as np

from xtalgen.crystal import Crystal
from xtalgen.diffraction.pattern import CU_KALPHA, Pattern
from xtalgen.diffraction.simulate import (
    DEFAULT_ETA,
    DEFAULT_FWHM,
    DEFAULT_RANGE,
    DEFAULT_STEP,
    broaden,
    simulate_sticks,
    uniform_grid,
)

__all__ = ["synthetic_measurement"]


def synthetic_measurement(
    crystal: Crystal,
    seed: int | np.random.Generator | None = 0,
    *,
    two_theta_range: tuple[float, float] = DEFAULT_RANGE,
    wavelength: float = CU_KALPHA,
    fwhm: float = DEFAULT_FWHM,
    eta: float = DEFAULT_ETA,
    step: float = DEFAULT_STEP,
    zero_shift: float = 0.15,
    peak_shift: float = 0.05,
    intensity_change: float = 0.3,
    n_missing: int = 2,
    missing_min: float = 5.0,
    noise: float = 2.0,
    background: float = 2.0,
) -> Pattern:
    """A seeded, imperfect pattern of ``crystal`` (see the module docstring; angles in degrees,
    ``wavelength`` in angstrom, ``noise``, ``background`` and ``missing_min`` in percent of the
    strongest peak). The returned pattern's ``source`` says what was done."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    lo, hi = two_theta_range
    margin = 25.0 * fwhm + zero_shift + peak_shift
    sticks = simulate_sticks(crystal, wavelength, (max(0.0, lo - margin), min(179.9, hi + margin)))
    x = sticks.two_theta.copy()
    y = sticks.intensity.copy()
    shift = rng.uniform(-zero_shift, zero_shift)
    x = x + shift + rng.uniform(-peak_shift, peak_shift, len(x))
    y = y * rng.uniform(1.0 - intensity_change, 1.0 + intensity_change, len(y))
    visible = np.flatnonzero((x >= lo) & (x <= hi) & (y >= missing_min / 100.0 * y.max()))
    dropped = rng.choice(visible, size=min(n_missing, len(visible)), replace=False)
    keep = np.ones(len(x), dtype=bool)
    if len(visible) > n_missing:  # never remove every visible peak
        keep[dropped] = False
    grid = uniform_grid(lo, hi, step)
    profile = broaden(x[keep], y[keep], grid, fwhm, eta)
    top = profile.max()
    profile = profile * (100.0 / top) if top > 0 else profile
    profile = profile + background + rng.normal(0.0, noise, len(grid))
    profile = np.clip(profile, 0.0, None)
    source = (f"synthetic {crystal.formula} (zero shift {shift:+.3f} deg, "
              f"{int((~keep).sum())} peaks removed)")
    return Pattern(grid, profile, wavelength, source=source)
