"""Relaxation with machine-learned potentials, the reference convex hull and E_hull.

* :func:`get_potential` / :class:`Potential`: CHGNet by default, any ASE calculator plugs in.
* :func:`relax` / :class:`RelaxResult`: FIRE + Frechet cell filter, failures recorded, not raised.
* :mod:`xtalgen.relax.hull`: the bundled MP-20 reference hull and energy above hull.
"""

from __future__ import annotations

from xtalgen.relax.potential import (
    POTENTIALS,
    Potential,
    get_potential,
    register_potential,
    set_torch_threads,
)
from xtalgen.relax.relaxer import RelaxConfig, RelaxResult, relax, relax_one
from xtalgen.relax.rmsd import rmsd_to_relaxed

__all__ = [
    "POTENTIALS",
    "Potential",
    "RelaxConfig",
    "RelaxResult",
    "get_potential",
    "register_potential",
    "relax",
    "relax_one",
    "rmsd_to_relaxed",
    "set_torch_threads",
]
