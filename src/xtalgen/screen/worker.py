"""The per-structure work of screening: early rejection, relaxation, energy above hull.

Runs inside executor workers. The potential and the hull are built once per worker process
(from a small picklable :class:`WorkerSpec`) and reused for every structure it receives.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from xtalgen.crystal import Crystal
from xtalgen.relax.batched import relax_batched
from xtalgen.relax.correction import corrected_energy
from xtalgen.relax.hull import ConvexHull
from xtalgen.relax.potential import Potential, get_potential, set_torch_threads
from xtalgen.relax.reference import load_reference
from xtalgen.relax.relaxer import RelaxConfig, RelaxResult, relax_one

__all__ = ["WorkerSpec", "screen_chunk", "screen_one"]


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to screen one structure (small, picklable).

    ``reject_ehull``: early rejection of hopeless candidates, ``((step, max_e_hull), ...)``:
    a relaxation whose current E_hull (eV/atom, from the energy at that step) exceeds
    ``max_e_hull`` at ``step`` stops there. The energy only goes down during a relaxation, so
    the final E_hull would be lower, but rarely by much late in a run (thresholds measured in
    benchmarks/RESULTS.md). ``reject_formation_energy``: reject before any step when
    the single-point formation energy (eV/atom) is above it (None: off; a poor criterion for
    random cells, whose close contacts give high first energies that relax away).
    ``reference``: folder of a hull reference written by ``HullReference.save`` (None: the
    bundled MP-20 reference); ``hull=False`` skips E_hull.
    """

    potential: str = "chgnet"
    potential_kw: tuple[tuple[str, Any], ...] = ()
    relax: RelaxConfig = field(default_factory=RelaxConfig)
    reject_ehull: tuple[tuple[int, float], ...] = ()
    reject_formation_energy: float | None = None
    reference: str | None = None
    hull: bool = True
    threads: int | None = None


_HULLS: dict[str | None, ConvexHull] = {}


def _hull(reference: str | None) -> ConvexHull:
    if reference not in _HULLS:
        _HULLS[reference] = ConvexHull(load_reference(reference))
    return _HULLS[reference]


def _plan(
    spec: WorkerSpec, crystal: Crystal, potential: Potential, hull: ConvexHull | None
) -> tuple[RelaxConfig, Callable[[int, float], str | None] | None]:
    """The relaxation settings of one candidate and its early-rejection rule."""
    config = spec.relax
    composition = crystal.composition
    if hull is None or hull.missing_elements(composition):
        return config, None
    mu = -hull.formation_energy_per_atom(composition, 0.0)  # sum x_i mu_i, eV/atom
    if potential.correction != "none":  # MP2020 shifts depend on composition, not energy
        mu -= corrected_energy(crystal, 0.0, potential.correction) / crystal.num_sites
    if spec.reject_formation_energy is not None:
        config = replace(config, reject_initial_energy=spec.reject_formation_energy + mu)
    if not spec.reject_ehull:
        return config, None
    limits = dict(spec.reject_ehull)
    config = replace(config, checkpoints=tuple(sorted(limits)))

    def stop_rule(step: int, energy_per_atom: float) -> str | None:
        formation = energy_per_atom - mu
        if formation > limits[step]:  # the hull lies at or below 0, so E_hull >= E_form
            return f"rejected: E_hull >= {formation:.2f} eV/atom at step {step}"
        e_hull = hull.e_above_hull_of_formation(composition, formation)
        if e_hull.e_above_hull > limits[step]:
            return f"rejected: E_hull {e_hull.e_above_hull:.2f} eV/atom at step {step}"
        return None

    return config, stop_rule


def _report(
    cid: str, result: RelaxResult, potential: Potential, hull: ConvexHull | None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "cid": cid,
        "stage": "relaxed" if result.ok else "failed",
        "relaxed": result.crystal,
        "energy_per_atom": result.energy_per_atom,
        "initial_energy_per_atom": result.initial_energy_per_atom,
        "n_steps": result.n_steps,
        "converged": result.converged,
        "error": result.error,
        "rmsd": result.rmsd,
        "max_force": result.max_force,
        "relax_s": result.wall_s,
        "relax_cpu_s": result.cpu_s,
        "potential": potential.name,
    }
    if hull is not None and result.crystal is not None and math.isfinite(result.energy_per_atom):
        h = hull.evaluate(result.crystal, result.energy_per_atom, correction=potential.correction)
        out.update(
            e_above_hull=h.e_above_hull,
            formation_energy=h.formation_energy_per_atom,
            corrected_energy_per_atom=h.corrected_energy_per_atom,
            hull_error=h.error,
            decomposition=h.decomposition,
        )
    return out


def _setup(spec: WorkerSpec) -> tuple[Potential, ConvexHull | None]:
    if spec.threads:
        set_torch_threads(spec.threads)
    potential = get_potential(spec.potential, **dict(spec.potential_kw))
    return potential, (_hull(spec.reference) if spec.hull else None)


def screen_one(task: tuple[WorkerSpec, str, Crystal]) -> dict[str, Any]:
    """Relax one candidate and place it on the hull; returns a plain dict (never raises)."""
    spec, cid, crystal = task
    potential, hull = _setup(spec)
    config, stop_rule = _plan(spec, crystal, potential, hull)
    return _report(cid, relax_one(crystal, potential, config, stop_rule), potential, hull)


def screen_chunk(task: tuple[WorkerSpec, list[tuple[str, Crystal]]]) -> list[dict[str, Any]]:
    """``screen_one`` for a chunk, relaxed in lockstep when the potential has a batched call."""
    spec, items = task
    potential, hull = _setup(spec)
    if potential.batch is None or len(items) < 2:
        return [screen_one((spec, cid, crystal)) for cid, crystal in items]
    plans = [_plan(spec, crystal, potential, hull) for _, crystal in items]
    cpu = time.process_time()
    results, _ = relax_batched(
        [crystal for _, crystal in items],
        potential,
        configs=[p[0] for p in plans],
        stop_rules=[p[1] for p in plans],
    )
    cpu_each = (time.process_time() - cpu) / len(items)  # threads share one process clock
    for result in results:
        result.cpu_s = cpu_each
    return [_report(cid, r, potential, hull) for (cid, _), r in zip(items, results)]
