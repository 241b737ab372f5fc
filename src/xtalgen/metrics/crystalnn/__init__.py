"""Fast, numerically identical CrystalNN "ops" fingerprint (matminer ``CrystalNNFingerprint``).

* :mod:`.neighbors`: CrystalNN neighbour weights per site (pymatgen ``CrystalNN.get_nn_data``).
* :mod:`.order_params`: the preset's motif order parameters, vectorised with numpy.
* :mod:`.fingerprint`: per-site rows in matminer's layout, batched by coordination number.
"""

from __future__ import annotations

from xtalgen.metrics.crystalnn.fingerprint import FastStats, ops_preset, site_fingerprints
from xtalgen.metrics.crystalnn.neighbors import Unsupported

__all__ = ["FAST_VERSION", "FastStats", "Unsupported", "ops_preset", "site_fingerprints"]

FAST_VERSION = 1  # bump when the fast path's numbers could change (part of the cache key)
