"""Space-group statistics (spglib, symprec=0.1, angle_tolerance=5; MatterGen's setting).

* ``space_groups``: detected space-group number per crystal (0 where spglib finds none).
* ``fraction above P1``: crystals whose detected group number is > 1.
* ``space-group TVD``: total-variation distance between the space-group histograms of the
  samples and of the reference split (0 = same distribution, 1 = disjoint).
* conditioned generation: the fraction of crystals with a requested group
  (``properties["spacegroup_requested"]``) whose detected group equals it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from xtalgen.crystal import Crystal
from xtalgen.metrics.presets import ANGLE_TOLERANCE, SYMPREC
from xtalgen.representations.wyckoff import detected_spacegroup

__all__ = [
    "REQUESTED_KEY",
    "histogram_tvd",
    "requested_space_groups",
    "space_group",
    "space_groups",
]

REQUESTED_KEY = "spacegroup_requested"
"""``Crystal.properties`` key of the space group a conditioned generator was asked for."""


def space_group(crystal: Crystal) -> int:
    """spglib space-group number (1-230), 0 when spglib fails."""
    return detected_spacegroup(crystal, SYMPREC, ANGLE_TOLERANCE)


def space_groups(crystals: Sequence[Crystal]) -> np.ndarray:
    """Space-group number of each crystal (see :func:`space_group`)."""
    return np.array([space_group(c) for c in crystals], dtype=int)


def requested_space_groups(crystals: Sequence[Crystal]) -> np.ndarray:
    """Requested group per crystal, 0 where none was requested."""
    out = []
    for c in crystals:
        value = c.properties.get(REQUESTED_KEY)
        try:
            out.append(int(value) if value is not None else 0)
        except (TypeError, ValueError):
            out.append(0)
    return np.array(out, dtype=int)


def histogram_tvd(a: np.ndarray, b: np.ndarray) -> float | None:
    """Total-variation distance between the empirical distributions of labels ``a`` and ``b``."""
    if len(a) == 0 or len(b) == 0:
        return None
    ca, cb = Counter(np.asarray(a).tolist()), Counter(np.asarray(b).tolist())
    keys = set(ca) | set(cb)
    return 0.5 * float(sum(abs(ca[k] / len(a) - cb[k] / len(b)) for k in keys))
