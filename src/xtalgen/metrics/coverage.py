"""COV-R / COV-P coverage and the AMSD / AMCD mean minimum distances (CDVAE, spec B.4).

``coverage(...)`` takes fingerprints, not crystals, so that the expensive fingerprints can be
computed once (in parallel, cached for reference splits). Inputs:

* generated fingerprints of **all** samples; rows with NaN (failed fingerprints) are dropped
  but the precision denominator stays the count before dropping (``num_gen``);
* composition fingerprints already scaled with :func:`~xtalgen.metrics.fingerprints.scale_composition`.

COV-R is the mean over reference crystals of ``[min_gen D_s <= d_s and min_gen D_c <= d_c]``;
the two minima are taken independently. COV-P is the count of generated crystals with
``[min_ref D_s <= d_s and min_ref D_c <= d_c]`` divided by ``num_gen``. Distances are
Euclidean, computed in blocks so 10,000 x 9,000 pairs fit in little memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import cdist

__all__ = ["CoverageResult", "coverage", "min_distances"]

_BLOCK = 1024


@dataclass
class CoverageResult:
    """Coverage numbers plus per-sample details (NaN for samples without a fingerprint)."""

    cov_recall: float
    cov_precision: float
    amsd_recall: float
    amsd_precision: float
    amcd_recall: float
    amcd_precision: float
    num_gen: int
    num_gen_with_fp: int
    num_ref: int
    precision_covered: np.ndarray  # (num_gen,) bool
    struct_min_dist: np.ndarray  # (num_gen,) float, NaN where dropped
    comp_min_dist: np.ndarray  # (num_gen,) float, NaN where dropped
    recall_covered: np.ndarray  # (num_ref,) bool


def min_distances(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise minima ``min_j |a_i - b_j|`` and column-wise minima ``min_i |a_i - b_j|``."""
    row_min = np.empty(len(a))
    col_min = np.full(len(b), np.inf)
    for start in range(0, len(a), _BLOCK):
        d = cdist(a[start : start + _BLOCK], b)
        row_min[start : start + _BLOCK] = d.min(axis=1)
        np.minimum(col_min, d.min(axis=0), out=col_min)
    return row_min, col_min


def coverage(
    gen_struct: np.ndarray,
    gen_comp_scaled: np.ndarray,
    ref_struct: np.ndarray,
    ref_comp_scaled: np.ndarray,
    struct_cutoff: float,
    comp_cutoff: float,
    num_gen: int | None = None,
) -> CoverageResult:
    """CDVAE ``compute_cov`` on fingerprints (see module docstring)."""
    gen_struct = np.asarray(gen_struct, float)
    gen_comp = np.asarray(gen_comp_scaled, float)
    ref_struct = np.asarray(ref_struct, float)
    ref_comp = np.asarray(ref_comp_scaled, float)
    n_gen = len(gen_struct) if num_gen is None else int(num_gen)
    keep = ~(np.isnan(gen_struct).any(axis=1) | np.isnan(gen_comp).any(axis=1))
    if len(ref_struct) == 0 or not keep.any():
        raise ValueError("coverage needs at least one fingerprint on each side")

    s_prec, s_rec = min_distances(gen_struct[keep], ref_struct)
    c_prec, c_rec = min_distances(gen_comp[keep], ref_comp)
    recall_covered = (s_rec <= struct_cutoff) & (c_rec <= comp_cutoff)
    prec_kept = (s_prec <= struct_cutoff) & (c_prec <= comp_cutoff)

    precision_covered = np.zeros(len(gen_struct), dtype=bool)
    precision_covered[keep] = prec_kept
    struct_min = np.full(len(gen_struct), np.nan)
    struct_min[keep] = s_prec
    comp_min = np.full(len(gen_struct), np.nan)
    comp_min[keep] = c_prec
    return CoverageResult(
        cov_recall=float(np.mean(recall_covered)),
        cov_precision=float(prec_kept.sum() / n_gen),
        amsd_recall=float(np.mean(s_rec)),
        amsd_precision=float(np.mean(s_prec)),
        amcd_recall=float(np.mean(c_rec)),
        amcd_precision=float(np.mean(c_prec)),
        num_gen=n_gen,
        num_gen_with_fp=int(keep.sum()),
        num_ref=len(ref_struct),
        precision_covered=precision_covered,
        struct_min_dist=struct_min,
        comp_min_dist=comp_min,
        recall_covered=recall_covered,
    )
