"""Stability and S.U.N. metrics under two named conventions.

* ``mattergen``: stable = E_hull <= 0.1 eV/atom (MatterGen's ``DEFAULT_STABILITY_THRESHOLD``,
  compared with ``<=``); uniqueness over all samples, novelty against the reference set, both
  with the disordered-aware matcher (``xtalgen.matching.disordered_matcher``).
* ``strict``: stable = E_hull <= 0.0 eV/atom (FlowMM, LeMat-GenBench); same uniqueness and
  novelty (FlowMM additionally restricts uniqueness to the stable samples and drops unary
  systems; that variant is not implemented here).

Metastable S.U.N. (``msun``) uses E_hull <= 0.1 eV/atom in both. Every fraction's denominator is
the number of submitted structures, failed and invalid ones included (MatterGen's
``total_submitted_jobs``). E_hull here comes from an ML potential and the bundled MP-20 hull:
it is approximate next to DFT on the full Materials Project hull.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

__all__ = [
    "CONVENTIONS",
    "METASTABLE_THRESHOLD",
    "Convention",
    "StabilityMetrics",
    "stability_metrics",
]

METASTABLE_THRESHOLD = 0.1
"""eV/atom: metastable S.U.N. threshold (LeMat-GenBench MSUN; MatterGen's stable)."""


@dataclass(frozen=True)
class Convention:
    """A named stability convention: ``stable`` means E_hull <= ``threshold`` (eV/atom)."""

    name: str
    threshold: float
    description: str


CONVENTIONS: dict[str, Convention] = {
    "mattergen": Convention("mattergen", 0.1, "MatterGen: E_hull <= 0.1 eV/atom"),
    "strict": Convention("strict", 0.0, "FlowMM / LeMat-GenBench: E_hull <= 0 eV/atom"),
}


@dataclass(frozen=True)
class StabilityMetrics:
    """Fractions over ``n_submitted`` structures; ``mean_rmsd`` in angstrom (nanmean)."""

    convention: str
    threshold: float
    n_submitted: int
    frac_stable: float
    frac_unique: float
    frac_novel: float
    frac_novel_unique: float
    frac_sun: float
    frac_msun: float
    mean_rmsd: float
    n_stable: int
    n_sun: int
    n_msun: int

    def as_dict(self) -> dict:
        return asdict(self)


def stability_masks(e_above_hull: Sequence[float], threshold: float) -> np.ndarray:
    """E_hull <= threshold (NaN, i.e. failed or without reference, is never stable)."""
    e = np.asarray(e_above_hull, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(e, nan=np.inf) <= threshold


def stability_metrics(
    e_above_hull: Sequence[float],
    unique: Sequence[bool],
    novel: Sequence[bool],
    rmsd: Sequence[float] | None = None,
    *,
    convention: str = "mattergen",
) -> StabilityMetrics:
    """Stability, uniqueness, novelty and S.U.N. fractions of all submitted structures.

    ``e_above_hull`` is NaN for a failed or invalid structure; ``unique``/``novel`` are False
    where they could not be decided.
    """
    conv = CONVENTIONS[convention]
    n = len(e_above_hull)
    if not (len(unique) == len(novel) == n):
        raise ValueError("e_above_hull, unique and novel must have one entry per structure")
    stable = stability_masks(e_above_hull, conv.threshold)
    metastable = stability_masks(e_above_hull, METASTABLE_THRESHOLD)
    unique_m, novel_m = np.asarray(unique, bool), np.asarray(novel, bool)
    sun = stable & unique_m & novel_m
    msun = metastable & unique_m & novel_m
    rmsd_arr = np.asarray(rmsd if rmsd is not None else [np.nan], dtype=float)
    mean_rmsd = float(np.nanmean(rmsd_arr)) if np.isfinite(rmsd_arr).any() else float("nan")

    def frac(mask: np.ndarray) -> float:
        return float(mask.sum() / n) if n else float("nan")

    return StabilityMetrics(
        convention=conv.name,
        threshold=conv.threshold,
        n_submitted=n,
        frac_stable=frac(stable),
        frac_unique=frac(unique_m),
        frac_novel=frac(novel_m),
        frac_novel_unique=frac(unique_m & novel_m),
        frac_sun=frac(sun),
        frac_msun=frac(msun),
        mean_rmsd=mean_rmsd,
        n_stable=int(stable.sum()),
        n_sun=int(sun.sum()),
        n_msun=int(msun.sum()),
    )
