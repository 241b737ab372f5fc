"""Crystal representations: batched tensors, lattice forms, Wyckoff sites, graphs, tokens.

Modules (each with an ``encode`` and a ``decode`` that round-trip):

* ``tensors``: ``CrystalBatch``, the unpadded torch batch, and ``collate`` for DataLoaders.
* ``lattice``: parameters, Niggli/LLL reduction, the rotation-invariant polar (k-vector) form.
* ``wyckoff``: ``WyckoffRepresentation`` (space group, lattice parameters, Wyckoff sites).
* ``graph``: periodic neighbour lists and the fully connected in-cell graph of a batch.
* ``tokens``: the Wyckoff form as a token sequence over a fixed vocabulary.
* ``symmetry_projection``: ``SymmetryTemplate`` (a space group's operations and Wyckoff orbits
  in one cell) and the projections onto its symmetric subspace (no decode: not a representation
  of one crystal but a constraint set).

Names are loaded lazily so that ``import xtalgen.representations`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["CrystalBatch", "WyckoffRepresentation", "WyckoffSite", "collate"]

_LAZY = {
    "CrystalBatch": "tensors",
    "collate": "tensors",
    "WyckoffRepresentation": "wyckoff",
    "WyckoffSite": "wyckoff",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
