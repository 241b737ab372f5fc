"""Crystal representations: batched tensors, lattice forms, Wyckoff sites, graphs, tokens.

Each module has an ``encode`` and a ``decode`` that round-trip. Submodules are imported
lazily by their users (``from xtalgen.representations.tensors import CrystalBatch``); the names
below are re-exported for convenience.
"""

from __future__ import annotations

from xtalgen.representations.tensors import CrystalBatch, collate

__all__ = ["CrystalBatch", "collate"]
