"""Batched relaxation: many FIRE optimizers in lockstep, one potential call per step for all.

Each crystal's optimizer runs in its own thread with a proxy ASE calculator; when every active
optimizer has asked for its next energy/forces/stress, one ``Potential.batch`` call evaluates
them all. The optimizers are the same as in :func:`xtalgen.relax.relax_one` (FIRE + Frechet
cell filter), so results equal the one-by-one relaxation up to the potential's batched
numerics. Worth it where a batched call is cheaper than a loop (a GPU); on the 2-core CPU
measured here CHGNet's batch of 10 is about 10% faster and takes 1.6x the memory of one by one
(benchmarks/RESULTS.md, fourth session).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from xtalgen.crystal import Crystal
from xtalgen.relax.potential import EV_PER_A3_TO_GPA, Potential
from xtalgen.relax.relaxer import RelaxConfig, RelaxResult, _single_blas_thread, relax_one

__all__ = ["relax_batched"]


class _Batcher:
    """Collects one request per active optimizer; :meth:`serve` evaluates them in one batched
    call, always in the thread that serves (the caller's), never in an optimizer thread.

    Evaluating in one thread keeps the potential's allocations in one malloc arena: when each
    optimizer thread took its turn, glibc's per-thread arenas grew a 10-crystal CHGNet batch to
    over 10 GB of resident memory on the CPU (3 GB with ``MALLOC_ARENA_MAX=2``).
    """

    def __init__(self, potential: Potential, n_active: int) -> None:
        self.potential = potential
        self.n_active = n_active
        self.pending: dict[int, Crystal] = {}
        self.results: dict[int, Any] = {}
        self.n_calls = 0
        self.cond = threading.Condition()

    def _ready(self) -> bool:
        return self.n_active == 0 or (bool(self.pending) and len(self.pending) >= self.n_active)

    def serve(self) -> None:
        """Evaluate full rounds of requests until every optimizer has retired."""
        while True:
            with self.cond:
                self.cond.wait_for(self._ready)
                if not self.pending:  # n_active == 0: every optimizer is done
                    return
                keys = list(self.pending)
                crystals = [self.pending.pop(k) for k in keys]
            try:
                outputs: list[Any] = list(self.potential.batch(crystals))  # type: ignore[misc]
            except Exception as exc:  # every waiting optimizer gets the error
                outputs = [exc] * len(keys)
            with self.cond:
                self.n_calls += 1
                self.results.update(zip(keys, outputs))
                self.cond.notify_all()

    def request(self, key: int, crystal: Crystal) -> Any:
        with self.cond:
            self.pending[key] = crystal
            self.cond.notify_all()
            self.cond.wait_for(lambda: key in self.results)
            return self.results.pop(key)

    def retire(self) -> None:
        with self.cond:
            self.n_active -= 1
            self.cond.notify_all()


class _ProxyCalculator(Calculator):
    """ASE calculator that hands its evaluation to the batcher."""

    implemented_properties = ("energy", "free_energy", "forces", "stress")

    def __init__(self, batcher: _Batcher, key: int) -> None:
        super().__init__()
        self.batcher, self.key = batcher, key

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        out = self.batcher.request(self.key, Crystal.from_ase(self.atoms))
        if isinstance(out, Exception):
            raise out
        energy_per_atom, forces, stress_gpa = out
        energy = float(energy_per_atom) * len(self.atoms)
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "forces": np.asarray(forces, dtype=np.float64).reshape(-1, 3),
            "stress": np.asarray(stress_gpa, dtype=np.float64) / EV_PER_A3_TO_GPA,
        }


def relax_batched(
    crystals: Sequence[Crystal],
    potential: Potential,
    config: RelaxConfig | None = None,
    *,
    configs: Sequence[RelaxConfig] | None = None,
    stop_rules: Sequence[Callable[[int, float], str | None] | None] | None = None,
) -> tuple[list[RelaxResult], int]:
    """Relax ``crystals`` together; returns the results and the number of batched calls.

    ``potential.batch`` must be set (e.g. CHGNet's). ``configs`` / ``stop_rules``: one per
    crystal (as for ``relax_one``), overriding ``config``. RMSD is computed after the batch.
    """
    if potential.batch is None:
        raise ValueError(f"potential {potential.name!r} has no batched evaluation")
    n = len(crystals)
    configs = list(configs) if configs is not None else [config or RelaxConfig()] * n
    rules = list(stop_rules) if stop_rules is not None else [None] * n
    batcher = _Batcher(potential, n)
    results: list[RelaxResult | None] = [None] * n

    def run(i: int) -> None:
        proxy = Potential(potential.name, _ProxyCalculator(batcher, i), potential.correction)
        try:
            lockstep = replace(configs[i], compute_rmsd=False)
            results[i] = relax_one(crystals[i], proxy, lockstep, rules[i])
        finally:
            batcher.retire()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(crystals))]
    # relax_one silences the optimizer with redirect_stdout, which swaps the process-wide
    # sys.stdout: threads that enter and leave it out of order can leave another thread's
    # buffer in place, and every later print of the program would vanish. Restore it here.
    stdout = sys.stdout
    try:
        with _single_blas_thread():  # one process-wide limit around the per-thread ones
            for thread in threads:
                thread.start()
            batcher.serve()  # the potential runs here, in this thread only
            for thread in threads:
                thread.join()
    finally:
        sys.stdout = stdout
    from xtalgen.relax.rmsd import rmsd_to_relaxed

    done = []
    for i, r in enumerate(results):
        if r is None:  # the thread died outside relax_one's own error handling
            r = RelaxResult(initial=crystals[i], error="batched relaxation thread failed")
        elif configs[i].compute_rmsd and r.crystal is not None:
            r.rmsd = rmsd_to_relaxed(r.initial, r.crystal)
        done.append(r)
    return done, batcher.n_calls
