"""Distribution distances between generated and reference crystals (CDVAE, spec B.5).

All use ``scipy.stats.wasserstein_distance`` (1-D, unweighted). The generated side is a
**seeded** random subsample of ``n_samples`` (default 1,000) valid crystals (the reference
code draws it without a seed and raises when fewer are valid; here all valid crystals are
used then, and the report says so); the reference side is the whole reference split.

* ``wdist_density``: density in g/cm^3 (``Structure.density``).
* ``wdist_num_elems``: number of distinct elements.
* ``wdist_prop``: a property predicted by ``property_fn`` on both sides (CDVAE uses its
  formation-energy GNN for MP-20; named predictors are in :mod:`xtalgen.properties`, which the
  caller resolves); skipped, saying so, when no predictor is given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.stats import wasserstein_distance

from xtalgen.crystal import Crystal

__all__ = [
    "PropertyFn",
    "densities",
    "num_elements",
    "subsample_valid",
    "wasserstein",
]

PropertyFn = Callable[[Sequence[Crystal]], np.ndarray]
"""A property predictor: crystals -> one float per crystal."""

_AMU_PER_A3_TO_G_PER_CM3 = 1.66053906660


def densities(crystals: Sequence[Crystal]) -> np.ndarray:
    """Density of each crystal in g/cm^3 (same as pymatgen ``Structure.density``)."""
    return np.array([c.to_pymatgen().density for c in crystals], dtype=float)


def num_elements(crystals: Sequence[Crystal]) -> np.ndarray:
    """Number of distinct elements of each crystal."""
    return np.array([len(set(c.species.tolist())) for c in crystals], dtype=float)


def subsample_valid(valid: np.ndarray, n_samples: int, seed: int) -> np.ndarray:
    """Sorted indices of ``n_samples`` valid crystals drawn without replacement (seeded).

    All valid indices when there are at most ``n_samples`` of them.
    """
    idx = np.flatnonzero(np.asarray(valid, dtype=bool))
    if len(idx) <= n_samples:
        return idx
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(idx, size=n_samples, replace=False))


def wasserstein(generated: np.ndarray, reference: np.ndarray) -> float | None:
    """1-D Wasserstein distance, ignoring NaN; None when either side is empty."""
    g = np.asarray(generated, float)
    r = np.asarray(reference, float)
    g, r = g[np.isfinite(g)], r[np.isfinite(r)]
    if len(g) == 0 or len(r) == 0:
        return None
    return float(wasserstein_distance(g, r))
