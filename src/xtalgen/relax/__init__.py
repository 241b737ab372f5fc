"""Relaxation with machine-learned potentials, the reference convex hull and E_hull.

* :func:`get_potential` / :class:`Potential`: CHGNet by default (weights in the chgnet wheel,
  works offline); any ASE calculator plugs in.
* :func:`relax` / :class:`RelaxResult`: FIRE + Frechet cell filter, failures recorded, not raised.
* :mod:`xtalgen.relax.hull`: the bundled MP-20 reference hull and energy above hull.

Another potential (MACE, MatterSim, SevenNet, ...): write a factory that returns a
``Potential`` around its ASE calculator, with ``correction="MP2020"`` when it was trained on raw
MPtrj energies (most are; CHGNet's carry the corrections already, hence ``"none"``)::

    # mypkg/potentials.py
    from xtalgen.relax import Potential

    def sevennet(model: str = "7net-0") -> Potential:
        from sevenn.calculator import SevenNetCalculator
        return Potential("sevennet", SevenNetCalculator(model, device="cpu"), correction="MP2020")

then ``get_potential("mypkg.potentials:sevennet")`` in Python or
``xtalgen screen samples.extxyz --potential mypkg.potentials:sevennet`` (the import path works in
every worker process and on Dask workers; ``register_potential("sevennet", sevennet)`` gives it
a short name in this process). Never put energies of two potentials on one hull.
"""

from __future__ import annotations

from xtalgen.relax.potential import (
    POTENTIALS,
    Potential,
    get_potential,
    register_potential,
    set_torch_threads,
)
from xtalgen.relax.relaxer import RelaxConfig, RelaxResult, relax_one
from xtalgen.relax.rmsd import rmsd_to_relaxed
from xtalgen.relax.run import relax

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
