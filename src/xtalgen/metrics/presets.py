"""Frozen, argument-less presets for every tolerance a metric uses.

Nobody passes matcher tolerances around: a metric names its preset, and the preset's
settings are written next to every number in ``metrics.json``. Each factory returns a fresh,
configured pymatgen ``StructureMatcher`` (matchers are cheap to build and not thread-safe to
share across processes).

| preset | ltol | stol | angle_tol | other | used by |
|---|---|---|---|---|---|
| ``csp`` | 0.3 | 0.5 | 10 | pymatgen defaults | CSP match rate / RMSE (CDVAE, DiffCSP, FlowMM) |
| ``ordered`` | 0.2 | 0.3 | 5 | pymatgen defaults | MatterGen ``DefaultOrderedStructureMatcher`` |
| ``disordered`` | 0.2 | 0.3 | 5 | supercell, subset, order-disorder, Hume-Rothery | MatterGen default S.U.N. |
| ``rmsd`` | 0.5 | 0.5 | 10 | scale=False, attempt_supercell=True | MatterGen relaxation RMSD |
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pymatgen.analysis.structure_matcher import StructureMatcher

from xtalgen.errors import XtalgenError

__all__ = [
    "ANGLE_TOLERANCE",
    "COVERAGE_CUTOFFS",
    "MATCHER_PRESETS",
    "MAX_RMSD",
    "SYMPREC",
    "csp_matcher",
    "disordered_matcher",
    "get_matcher",
    "matcher_settings",
    "ordered_matcher",
    "rmsd_matcher",
]

SYMPREC = 0.1
"""spglib symmetry tolerance (angstrom) for space-group statistics (MatterGen, DiffCSP)."""

ANGLE_TOLERANCE = 5.0
"""spglib angle tolerance (degrees) for space-group statistics."""

MAX_RMSD = 0.5
"""stol of the RMSD preset; MatterGen's penalty for a failed match (normalised units)."""

COVERAGE_CUTOFFS: dict[str, tuple[float, float]] = {
    "mp20": (0.4, 10.0),
    "carbon": (0.2, 4.0),
    "perovskite": (0.2, 4.0),
}
"""(structure cutoff, composition cutoff) of COV-R / COV-P per evaluation model (CDVAE)."""


def csp_matcher() -> StructureMatcher:
    """CSP / reconstruction matcher: ``StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3)``."""
    return StructureMatcher(ltol=0.3, stol=0.5, angle_tol=10)


def ordered_matcher() -> StructureMatcher:
    """pymatgen defaults (ltol=0.2, stol=0.3, angle_tol=5): MatterGen's ordered preset."""
    return StructureMatcher(
        ltol=0.2,
        stol=0.3,
        angle_tol=5,
        primitive_cell=True,
        scale=True,
        attempt_supercell=False,
        allow_subset=False,
    )


def disordered_matcher() -> StructureMatcher:
    """MatterGen's default S.U.N. matcher (order-disorder aware, Hume-Rothery fallback).

    See :class:`xtalgen.metrics.matching.DisorderedStructureMatcher` for the ``fit`` logic.
    """
    from xtalgen.metrics.matching import DisorderedStructureMatcher

    return DisorderedStructureMatcher()


def rmsd_matcher() -> StructureMatcher:
    """MatterGen's relaxation-RMSD matcher (loose, unscaled, supercells allowed)."""
    return StructureMatcher(
        ltol=0.5,
        stol=MAX_RMSD,
        angle_tol=10,
        primitive_cell=True,
        scale=False,
        attempt_supercell=True,
        allow_subset=False,
    )


MATCHER_PRESETS: dict[str, Callable[[], StructureMatcher]] = {
    "csp": csp_matcher,
    "ordered": ordered_matcher,
    "disordered": disordered_matcher,
    "rmsd": rmsd_matcher,
}
"""Preset name -> factory."""


def get_matcher(name: str) -> StructureMatcher:
    """The matcher of preset ``name`` (one of :data:`MATCHER_PRESETS`)."""
    try:
        return MATCHER_PRESETS[name]()
    except KeyError:
        known = ", ".join(MATCHER_PRESETS)
        raise XtalgenError(f"unknown matcher preset {name!r}; choose one of: {known}") from None


def matcher_settings(name: str) -> dict[str, Any]:
    """JSON-friendly settings of preset ``name`` (recorded in metrics.json)."""
    matcher = get_matcher(name)
    settings: dict[str, Any] = {
        "preset": name,
        "class": type(matcher).__name__,
        "ltol": matcher.ltol,
        "stol": matcher.stol,
        "angle_tol": matcher.angle_tol,
        "primitive_cell": matcher._primitive_cell,
        "scale": matcher._scale,
        "attempt_supercell": matcher._supercell,
        "allow_subset": matcher._subset,
        "comparator": type(matcher._comparator).__name__,
    }
    return settings
