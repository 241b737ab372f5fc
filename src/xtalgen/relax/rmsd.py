"""RMSD between a generated and a relaxed crystal, as MatterGen defines it.

Both structures are symmetry-refined (symprec 0.1), reduced to the primitive cell and LLL-reduced,
then aligned with MatterGen's ``RMSDStructureMatcher`` (ltol 0.5, stol 0.5, angle_tol 10,
primitive_cell, scale=False, attempt_supercell). pymatgen's rms is normalised by the free length
per atom ``(V_avg / N)^(1/3)``; multiplying back gives angstrom. An unmatched pair counts as the
largest rms the matcher reports, ``0.5 * (V_avg / N)^(1/3)`` angstrom (MatterGen's convention).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from xtalgen.crystal import Crystal

if TYPE_CHECKING:
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.core import Structure

__all__ = ["rmsd_to_relaxed"]

_MATCHER: StructureMatcher | None = None


def _rmsd_matcher() -> StructureMatcher:
    """MatterGen's RMSD matcher (:func:`xtalgen.matching.rmsd_matcher`), built once."""
    global _MATCHER
    if _MATCHER is None:
        from xtalgen.matching import rmsd_matcher  # pymatgen's matcher: imported when first used

        _MATCHER = rmsd_matcher()
    return _MATCHER


def _standardise(structure: Structure) -> Structure:
    """Refined -> primitive -> LLL-reduced (falls back to the input when spglib fails)."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        analyzer = SpacegroupAnalyzer(structure, symprec=0.1, angle_tolerance=5)
        structure = analyzer.get_refined_structure().get_primitive_structure()
    except Exception:  # spglib gives up on some distorted cells
        pass
    return structure.get_reduced_structure(reduction_algo="LLL")


def rmsd_to_relaxed(initial: Crystal, relaxed: Crystal) -> float:
    """RMSD in angstrom between ``initial`` and ``relaxed`` (MatterGen definition)."""
    from xtalgen.matching import MAX_RMSD

    a = _standardise(initial.to_pymatgen())
    b = _standardise(relaxed.to_pymatgen())
    v_avg = 0.5 * (a.volume + b.volume)
    length = (v_avg / max(len(a), len(b))) ** (1.0 / 3.0)
    try:
        result = _rmsd_matcher().get_rms_dist(a, b)
    except Exception:
        result = None
    rms = MAX_RMSD if result is None else float(result[0])
    return rms * length if math.isfinite(rms) else math.nan
