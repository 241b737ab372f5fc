"""Powder X-ray diffraction: patterns, simulation, a shift-tolerant similarity, test patterns.

* :mod:`~xtalgen.diffraction.pattern`: :class:`Pattern` (2-theta in degrees, intensity,
  wavelength in angstrom, Cu K-alpha by default) and :func:`read_pattern` (two-column text).
* :mod:`~xtalgen.diffraction.simulate`: :func:`simulate_pattern` (pymatgen ``XRDCalculator``
  sticks broadened by pseudo-Voigt peaks of a given FWHM).
* :mod:`~xtalgen.diffraction.similarity`: the weighted cross-correlation (WCC) of de Gelder et
  al. (2001), and :func:`score_crystal` (WCC at the best isotropic cell scaling).
* :mod:`~xtalgen.diffraction.perturb`: :func:`synthetic_measurement` (noise, shifts, intensity
  changes, missing peaks; seeded), for benchmarks and tests.

Matching a measured pattern against generated candidates is a pipeline:
:mod:`xtalgen.pipelines.xrd_match` (``xtalgen xrd-match`` on the command line).
"""

from xtalgen.diffraction.pattern import (
    CU_KALPHA,
    Pattern,
    PatternError,
    read_pattern,
    resolve_wavelength,
    write_pattern,
)
from xtalgen.diffraction.perturb import synthetic_measurement
from xtalgen.diffraction.similarity import (
    Fit,
    MatchSettings,
    Reference,
    fitted_pattern,
    prepare_reference,
    score_crystal,
    score_sticks,
    similarity,
    weighted_cross_correlation,
)
from xtalgen.diffraction.simulate import Sticks, simulate_pattern, simulate_sticks

__all__ = [
    "CU_KALPHA",
    "Fit",
    "MatchSettings",
    "Pattern",
    "PatternError",
    "Reference",
    "Sticks",
    "fitted_pattern",
    "prepare_reference",
    "read_pattern",
    "resolve_wavelength",
    "score_crystal",
    "score_sticks",
    "similarity",
    "simulate_pattern",
    "simulate_sticks",
    "synthetic_measurement",
    "weighted_cross_correlation",
    "write_pattern",
]
