"""Frozen tolerances of the metrics: spglib settings and the coverage cutoffs.

Nobody passes tolerances around: a metric names its preset, and the preset's settings are
written next to every number in ``metrics.json``. The ``StructureMatcher`` presets (``csp``,
``ordered``, ``disordered``, ``rmsd``) live one level lower, in :mod:`xtalgen.matching`, where
the relaxation's RMSD takes its matcher too.
"""

from __future__ import annotations

__all__ = ["ANGLE_TOLERANCE", "COVERAGE_CUTOFFS", "EVAL_MODELS", "SYMPREC"]

SYMPREC = 0.1
"""spglib symmetry tolerance (angstrom) for space-group statistics (MatterGen, DiffCSP)."""

ANGLE_TOLERANCE = 5.0
"""spglib angle tolerance (degrees) for space-group statistics."""

COVERAGE_CUTOFFS: dict[str, tuple[float, float]] = {
    "mp20": (0.4, 10.0),
    "carbon": (0.2, 4.0),
    "perovskite": (0.2, 4.0),
}
"""(structure cutoff, composition cutoff) of COV-R / COV-P per evaluation model (CDVAE)."""

EVAL_MODELS: dict[str, str] = {
    "mp20": "mp20",
    "mpts52": "mp20",
    "carbon24": "carbon",
    "perov5": "perovskite",
}
"""Benchmark dataset -> the evaluation model (coverage cutoffs) CDVAE used for it."""
