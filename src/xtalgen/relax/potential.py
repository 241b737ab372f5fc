"""Interatomic potentials behind one small interface, with CHGNet as the default.

A :class:`Potential` wraps an ASE calculator: anything ASE can drive (CHGNet, MACE, MatterSim,
SevenNet, ...) plugs in. Units: energies in eV and eV/atom, forces in eV/angstrom, stress in GPa
(Voigt order xx, yy, zz, yz, xz, xy; positive = tensile, ASE's sign convention).

Plugging in another potential (the CHGNet default needs no network: its weights ship in the wheel)::

    from xtalgen.relax import Potential, register_potential

    def load_mace(model_path: str = "mace.model", **kw) -> Potential:
        from mace.calculators import MACECalculator
        return Potential("mace", MACECalculator(model_paths=model_path, device="cpu"))

    register_potential("mace", load_mace)
    potential = get_potential("mace", model_path="/path/to/mace.model")

Never mix two potentials in one hull: absolute energies differ by tenths of an eV/atom.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.plugins import import_callable

if TYPE_CHECKING:
    from ase import Atoms
    from ase.calculators.calculator import Calculator

__all__ = [
    "POTENTIALS",
    "Potential",
    "PotentialFactory",
    "get_potential",
    "register_potential",
    "set_torch_threads",
]

EV_PER_A3_TO_GPA = 160.21766208
"""1 eV/angstrom^3 in GPa."""


@dataclass
class Potential:
    """An ASE calculator with a name, evaluated one crystal at a time.

    ``correction`` is the scheme that brings the potential's energies to the convention of the
    bundled hull (MP2020-corrected MP GGA/GGA+U): ``"MP2020"`` for potentials trained on raw
    MPtrj energies (MACE-MP, SevenNet, MatterSim), ``"none"`` for CHGNet, whose training energies
    already carry the MP2020 corrections (measured: benchmarks/RESULTS.md). ``batch``
    optionally evaluates many crystals in one call (a list as ``single_point`` returns).
    """

    name: str
    calculator: Calculator
    correction: str = "MP2020"
    batch: Callable[[Sequence[Crystal]], list[tuple[float, np.ndarray, np.ndarray]]] | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def attach(self, atoms: Atoms) -> Atoms:
        """Set this potential as the calculator of ``atoms`` and return them."""
        atoms.calc = self.calculator
        return atoms

    def single_point(self, crystal: Crystal) -> tuple[float, np.ndarray, np.ndarray]:
        """(energy per atom in eV/atom, forces (N, 3) in eV/angstrom, stress (6,) in GPa)."""
        atoms = self.attach(crystal.to_ase())
        energy = float(atoms.get_potential_energy()) / len(atoms)
        forces = np.asarray(atoms.get_forces(), dtype=np.float64)
        stress = np.asarray(atoms.get_stress(voigt=True), dtype=np.float64) * EV_PER_A3_TO_GPA
        return energy, forces, stress

    def single_points(
        self, crystals: Sequence[Crystal]
    ) -> list[tuple[float, np.ndarray, np.ndarray]]:
        """``single_point`` for many crystals; uses ``batch`` when the potential has one.

        A crystal the potential cannot evaluate gives ``(nan, empty, empty)``.
        """
        if self.batch is not None:
            return self.batch(crystals)
        out = []
        for crystal in crystals:
            try:
                out.append(self.single_point(crystal))
            except Exception:  # a bad structure must not stop a screening run
                out.append((math.nan, np.zeros((0, 3)), np.zeros(0)))
        return out

    def energy_per_atom(self, crystal: Crystal) -> float:
        """Potential energy in eV/atom (no relaxation)."""
        atoms = self.attach(crystal.to_ase())
        return float(atoms.get_potential_energy()) / len(atoms)


PotentialFactory = Callable[..., Potential]
"""Builds a Potential from keyword settings (model path, device, ...)."""

POTENTIALS: dict[str, PotentialFactory] = {}
"""Registry of potential names to factories; ``get_potential`` looks names up here."""

_CACHE: dict[tuple[str, tuple[tuple[str, Any], ...]], Potential] = {}


def register_potential(name: str, factory: PotentialFactory) -> None:
    """Make ``get_potential(name, **kw)`` call ``factory(**kw)`` (once per process and kw)."""
    POTENTIALS[name.lower()] = factory


def _int_env(name: str) -> int:
    """A positive integer environment variable, or 0 when unset or not an integer."""
    try:
        return max(0, int(os.environ.get(name, "") or 0))
    except ValueError:
        return 0


def set_torch_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads (default: ``XTALGEN_THREADS``, else ``OMP_NUM_THREADS``,
    else all cores); returns it. Honouring ``OMP_NUM_THREADS`` matters: two processes of two
    threads each on two cores spin against each other (a 20x slower relaxation, measured)."""
    import torch

    if threads is None:
        threads = (_int_env("XTALGEN_THREADS") or _int_env("OMP_NUM_THREADS")
                   or (os.cpu_count() or 1))
    threads = max(1, int(threads))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def get_potential(name: str = "chgnet", **kw: Any) -> Potential:
    """The potential ``name`` built with settings ``kw``; loaded once per process and cached.

    Built in: ``"chgnet"`` (CHGNet 0.3.0 from the chgnet wheel; ``version="0.2.0"`` or
    ``model_path=...`` for others, ``device="cpu"``) and ``"emt"`` (ASE's toy EMT). Others:
    :func:`register_potential`, or ``"package.module:factory"`` (imported in every worker
    process, so it also works on a Dask cluster and from the command line).
    """
    key = (name.lower(), tuple(sorted((k, repr(v)) for k, v in kw.items())))
    if key in _CACHE:
        return _CACHE[key]
    factory = POTENTIALS.get(name.lower())
    if factory is None and ":" in name:
        factory = import_callable(name, "potential factory")
    if factory is None:
        known = ", ".join(sorted(POTENTIALS))
        raise XtalgenError(f"unknown potential {name!r}; known: {known} (see register_potential)")
    potential = factory(**kw)
    _CACHE[key] = potential
    return potential


def _voigt(stress: Any) -> np.ndarray:
    """(6,) Voigt stress (xx, yy, zz, yz, xz, xy) from a (3, 3) or (6,) array."""
    stress = np.asarray(stress, dtype=np.float64)
    if stress.shape == (3, 3):
        return stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
    return stress.reshape(6)


def _load_chgnet(
    version: str | None = None,
    model_path: str | None = None,
    device: str = "cpu",
    threads: int | None = None,
) -> Potential:
    """CHGNet (default 0.3.0, pretrained on MPtrj: raw MP GGA/GGA+U energies)."""
    import contextlib
    import io
    import warnings

    set_torch_threads(threads)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from chgnet.model import CHGNet, CHGNetCalculator

        if model_path is not None:
            if not os.path.exists(model_path):
                raise XtalgenError(f"CHGNet model file not found: {model_path}")
            model = CHGNet.from_file(model_path)
        else:
            model = CHGNet.load(model_name=version or "0.3.0", verbose=False, use_device=device)
        calculator = CHGNetCalculator(model=model, use_device=device, on_isolated_atoms="ignore")
    settings = {"version": model.version or version, "model_path": model_path, "device": device}

    def batch(crystals: Sequence[Crystal]) -> list[tuple[float, np.ndarray, np.ndarray]]:
        """CHGNet on many crystals in one call: (eV/atom, eV/A forces, GPa stress) each."""
        structures = [c.to_pymatgen() for c in crystals]
        preds = model.predict_structure(structures, task="efs", batch_size=len(structures))
        preds = [preds] if isinstance(preds, dict) else preds
        return [(float(p["e"]), np.asarray(p["f"]), _voigt(p["s"])) for p in preds]

    return Potential("chgnet", calculator, correction="none", batch=batch, settings=settings)


def _load_emt() -> Potential:
    """ASE's EMT (Al, Cu, Ag, Au, Ni, Pd, Pt; H, C, N, O roughly): instant, for tests and demos.

    Its energies are not on the Materials Project scale: never place them on the MP hull.
    """
    from ase.calculators.emt import EMT

    return Potential("emt", EMT(), correction="none", settings={"toy": True})


register_potential("chgnet", _load_chgnet)
register_potential("emt", _load_emt)
