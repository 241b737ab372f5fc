"""Relax positions and cell of one crystal (ASE FIRE + Frechet cell filter): :func:`relax_one`.

Many crystals, one by one or in lockstep batches: :func:`xtalgen.relax.relax` (``run.py``).
Every crystal gets a :class:`RelaxResult`; one that explodes, gives NaN or fails inside the
potential is recorded with a one-line ``error`` and the run goes on. Conventions: energies in
eV/atom, forces in eV/angstrom, RMSD in angstrom (MatterGen definition, see ``rmsd.py``).
"""

from __future__ import annotations

import contextlib
import io
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xtalgen.crystal import Crystal
from xtalgen.disorder import disorder_message
from xtalgen.errors import XtalgenError
from xtalgen.relax.potential import Potential
from xtalgen.relax.rmsd import rmsd_to_relaxed

__all__ = ["RelaxConfig", "RelaxResult", "relax_one"]


@dataclass(frozen=True)
class RelaxConfig:
    """Settings of one relaxation.

    ``fmax``: force criterion (eV/angstrom; on the Frechet-filtered degrees of freedom, so it
    covers stress too). ``max_steps``: step cap. A relaxation fails ("exploded") when the volume
    per atom leaves ``[volume_ratio_min, volume_ratio_max]`` times the initial one or the energy
    leaves ``[-energy_bound, energy_bound]`` eV/atom. ``reject_initial_fmax`` (eV/angstrom) and
    ``reject_initial_energy`` (eV/atom): a crystal whose first single point exceeds either is
    rejected as hopeless before any step (None disables the check). ``checkpoints``: steps at
    which ``relax_one``'s ``stop_rule`` is asked whether to give up.
    """

    fmax: float = 0.1
    max_steps: int = 500
    relax_cell: bool = True
    volume_ratio_min: float = 0.2
    volume_ratio_max: float = 5.0
    energy_bound: float = 50.0
    reject_initial_fmax: float | None = None
    reject_initial_energy: float | None = None
    compute_rmsd: bool = True
    checkpoints: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.fmax > 0:
            raise XtalgenError(f"fmax must be positive, got {self.fmax}")
        if self.max_steps < 0:
            raise XtalgenError(f"max_steps must be >= 0, got {self.max_steps}")


@dataclass
class RelaxResult:
    """Outcome of relaxing one crystal.

    ``crystal`` is the relaxed crystal (None when the relaxation failed outright; kept when it
    merely ran out of steps, with ``converged=False`` and an ``error`` saying so).
    """

    initial: Crystal
    crystal: Crystal | None = None
    energy_per_atom: float = math.nan
    n_steps: int = 0
    converged: bool = False
    error: str | None = None
    rmsd: float = math.nan
    initial_energy_per_atom: float = math.nan
    max_force: float = math.nan
    wall_s: float = 0.0
    cpu_s: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the relaxation converged without error."""
        return self.error is None and self.converged and self.crystal is not None

    @property
    def energy(self) -> float:
        """Total energy of the relaxed cell in eV."""
        n = self.crystal.num_sites if self.crystal is not None else self.initial.num_sites
        return self.energy_per_atom * n


class _Exploded(RuntimeError):
    """Raised from the optimizer observer to stop a relaxation that went astray."""


class _Stopped(RuntimeError):
    """Raised from the optimizer observer when the stop rule gives up on a crystal."""


def _max_force(atoms: Any) -> float:
    """Largest force norm (eV/angstrom) on an ASE Atoms or Filter."""
    forces = atoms.get_forces()
    return float(np.sqrt((forces**2).sum(axis=1).max())) if len(forces) else 0.0


def _single_blas_thread() -> contextlib.AbstractContextManager:
    """One BLAS thread during the optimizer run.

    The Frechet cell filter calls ``scipy.linalg.expm_frechet`` (tiny 6x6 LU solves) several
    times per step; multi-threaded OpenBLAS makes each call ~25 ms instead of ~0.3 ms when the
    cores are busy (measured here), which can dominate the relaxation time.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn (matminer)
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def relax_one(
    crystal: Crystal,
    potential: Potential,
    config: RelaxConfig | None = None,
    stop_rule: Callable[[int, float], str | None] | None = None,
) -> RelaxResult:
    """Relax one crystal; never raises for a bad structure (the reason goes to ``error``).

    ``stop_rule(step, energy_per_atom)`` is asked at each step of ``config.checkpoints``; a
    non-empty answer stops the relaxation there (early rejection of hopeless candidates): the
    result keeps the partly relaxed crystal and its energy, ``converged=False`` and the answer
    as ``error``. ``extra["energies"]`` holds the energy per atom of every step.
    """
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE

    config = config or RelaxConfig()
    start, cpu_start = time.perf_counter(), time.process_time()
    result = RelaxResult(initial=crystal)
    refusal = disorder_message(crystal, "a relaxation")
    if refusal:  # the potential would see only each site's majority species
        result.error = refusal + " (order it first: xtalgen screen --order N)"
        return result
    atoms = potential.attach(crystal.to_ase())
    n_atoms = len(atoms)
    volume0 = atoms.get_volume()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            energy0 = float(atoms.get_potential_energy()) / n_atoms
            fmax0 = _max_force(atoms)
            result.initial_energy_per_atom = energy0
            if not (math.isfinite(energy0) and math.isfinite(fmax0)):
                raise _Exploded("initial energy or forces are NaN")
            if config.reject_initial_fmax is not None and fmax0 > config.reject_initial_fmax:
                raise _Exploded(f"rejected: initial max force {fmax0:.3g} eV/A")
            if config.reject_initial_energy is not None and energy0 > config.reject_initial_energy:
                raise _Exploded(f"rejected: initial energy {energy0:.3g} eV/atom")

            target = FrechetCellFilter(atoms) if config.relax_cell else atoms
            optimizer = FIRE(target, logfile=None)

            energies = result.extra.setdefault("energies", [])

            def check() -> None:
                energy = float(atoms.get_potential_energy()) / n_atoms
                energies.append(round(energy, 5))
                ratio = atoms.get_volume() / volume0
                if not math.isfinite(energy) or not np.all(np.isfinite(atoms.get_positions())):
                    raise _Exploded("energy or positions became NaN")
                if abs(energy) > config.energy_bound:
                    raise _Exploded(f"exploded: energy {energy:.3g} eV/atom")
                if not config.volume_ratio_min <= ratio <= config.volume_ratio_max:
                    raise _Exploded(f"exploded: volume changed {ratio:.3g}x")
                step = len(energies) - 1
                if stop_rule is not None and step in config.checkpoints:
                    reason = stop_rule(step, energy)
                    if reason:
                        raise _Stopped(reason)

            optimizer.attach(check, interval=1)
            with contextlib.redirect_stdout(io.StringIO()), _single_blas_thread():
                converged = bool(optimizer.run(fmax=config.fmax, steps=config.max_steps))
            result.n_steps = int(optimizer.nsteps)
            result.converged = converged
            result.energy_per_atom = float(atoms.get_potential_energy()) / n_atoms
            result.max_force = _max_force(target)
        relaxed = Crystal.from_ase(atoms, properties=dict(crystal.properties))
        if crystal.site_occupancies is not None:
            relaxed = relaxed.replace(site_occupancies=crystal.site_occupancies)
        result.crystal = relaxed
        if not converged:
            result.error = (
                f"not converged in {config.max_steps} steps "
                f"(max force {result.max_force:.3g} eV/A > fmax {config.fmax})"
            )
        if config.compute_rmsd:
            result.rmsd = rmsd_to_relaxed(crystal, relaxed)
    except _Stopped as exc:
        result.error = str(exc)
        result.n_steps = len(result.extra.get("energies", [])) - 1
        result.energy_per_atom = float(atoms.get_potential_energy()) / n_atoms
        result.crystal = Crystal.from_ase(atoms, properties=dict(crystal.properties))
    except _Exploded as exc:
        result.error = str(exc)
        result.crystal = None
        result.energy_per_atom = math.nan
    except Exception as exc:  # the potential or ASE failed on this structure
        first_line = (str(exc).strip().splitlines() or [""])[0][:200]
        result.error = f"{type(exc).__name__}: {first_line}"
        result.crystal = None
        result.energy_per_atom = math.nan
    finally:
        atoms.calc = None
    result.wall_s = time.perf_counter() - start
    result.cpu_s = time.process_time() - cpu_start  # this process's CPU time, all threads
    return result
