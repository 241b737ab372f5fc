"""Relaxation: CHGNet returns rattled NaCl and Si to their known structures; failures recorded."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.relax import (
    Potential,
    RelaxConfig,
    get_potential,
    register_potential,
    relax,
    relax_one,
    rmsd_to_relaxed,
)

FCC = [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]


def rocksalt_nacl(a: float = 5.64) -> Structure:
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    ).get_primitive_structure()


def diamond_si(a: float = 5.43) -> Structure:
    return Structure.from_spacegroup(
        "Fd-3m", Lattice.cubic(a), ["Si"], [[0, 0, 0]]
    ).get_primitive_structure()


def rattled(structure: Structure, seed: int) -> Crystal:
    rng = np.random.default_rng(seed)
    s = structure.copy()
    s.apply_strain(0.04)
    cart = s.cart_coords + rng.normal(0, 0.1, (len(s), 3))
    return Crystal.from_pymatgen(Structure(s.lattice, s.species, cart, coords_are_cartesian=True))


@pytest.fixture(scope="module")
def chgnet() -> Potential:
    return get_potential("chgnet", threads=1)


def test_rattled_nacl_and_si_return_to_known_structure(chgnet: Potential) -> None:
    references = [rocksalt_nacl(), diamond_si()]
    initial = [rattled(s, seed) for seed, s in enumerate(references)]
    results = relax(initial, potential=chgnet, fmax=0.05, max_steps=100, progress=False)
    matcher = StructureMatcher()  # pymatgen defaults: ltol 0.2, stol 0.3, angle_tol 5
    for ref, res in zip(references, results):
        assert res.ok, res.error
        assert 0 < res.n_steps <= 100
        assert res.energy_per_atom < res.initial_energy_per_atom
        assert matcher.fit(ref, res.crystal.to_pymatgen())
        # relaxed energy equals the energy of the ideal structure relaxed (within 5 meV/atom)
        ideal = chgnet.energy_per_atom(Crystal.from_pymatgen(ref))
        assert abs(res.energy_per_atom - ideal) < 0.01
        assert 0 <= res.rmsd < 0.5
    assert results[0].energy_per_atom == pytest.approx(-3.67, abs=0.02)  # CHGNet 0.3.0 NaCl
    assert results[1].energy_per_atom == pytest.approx(-5.31, abs=0.02)  # CHGNet 0.3.0 Si


def test_known_energy_ordering_rocksalt_below_cesium_chloride(chgnet: Potential) -> None:
    cscl = Structure(Lattice.cubic(3.4), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    rs, cs = relax(
        [Crystal.from_pymatgen(rocksalt_nacl(5.5)), Crystal.from_pymatgen(cscl)],
        potential=chgnet,
        fmax=0.05,
        max_steps=100,
        progress=False,
    )
    assert rs.ok and cs.ok
    assert rs.energy_per_atom < cs.energy_per_atom


def test_single_point_units_and_shapes(chgnet: Potential) -> None:
    crystal = Crystal.from_pymatgen(rocksalt_nacl(5.3))  # compressed: positive pressure
    energy, forces, stress = chgnet.single_point(crystal)
    assert forces.shape == (2, 3) and stress.shape == (6,)
    assert np.abs(forces).max() < 1e-3  # symmetric sites: no force
    assert stress[:3].mean() < -1.0  # compressed cell: compressive stress, GPa (ASE sign)
    assert energy == pytest.approx(chgnet.energy_per_atom(crystal))


class NaNCalculator(Calculator):
    implemented_properties = ("energy", "forces", "stress")

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        n = len(self.atoms)
        self.results = {
            "energy": math.nan,
            "forces": np.full((n, 3), math.nan),
            "stress": np.zeros(6),
        }


def test_failures_are_recorded_and_the_run_goes_on() -> None:
    cu = Crystal.from_pymatgen(
        Structure(
            Lattice.cubic(3.7), ["Cu"] * 4, [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]
        )
    )
    emt = Potential("emt", EMT())
    bad = Potential("nan", NaNCalculator())
    assert relax_one(cu, bad).error == "initial energy or forces are NaN"
    results = relax([cu, cu], potential=emt, max_steps=2, progress=False)
    assert all(r.crystal is not None and not r.converged for r in results)
    assert all("not converged in 2 steps" in r.error for r in results)
    rejected = relax_one(cu, emt, RelaxConfig(reject_initial_fmax=None, reject_initial_energy=-1.0))
    assert rejected.error.startswith("rejected: initial energy") and rejected.crystal is None
    good = relax_one(cu, emt, RelaxConfig(fmax=0.01, max_steps=200))
    assert good.ok and good.crystal.volume / 4 == pytest.approx(11.6, abs=0.3)  # EMT Cu


def test_registered_potential_and_unknown_name() -> None:
    register_potential("emt-test", lambda **kw: Potential("emt-test", EMT()))
    assert get_potential("emt-test") is get_potential("emt-test")  # cached per process
    with pytest.raises(XtalgenError, match="unknown potential 'nope'"):
        get_potential("nope")
    with pytest.raises(XtalgenError, match="fmax"):
        RelaxConfig(fmax=0)


def test_rmsd_in_angstrom() -> None:
    si = diamond_si()
    same = Crystal.from_pymatgen(si)
    assert rmsd_to_relaxed(same, same) == pytest.approx(0.0, abs=1e-8)
    moved = si.copy()
    moved.translate_sites([1], [0.1, 0.0, 0.0], frac_coords=False)
    r = rmsd_to_relaxed(same, Crystal.from_pymatgen(moved))
    assert 0.01 < r < 0.1  # a 0.1 A displacement of one of two atoms, after optimal alignment


def test_stop_rule_gives_up_at_a_checkpoint_and_keeps_the_partial_result() -> None:
    cu = Crystal.from_pymatgen(
        Structure(
            Lattice.cubic(3.3), ["Cu"] * 4, [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]
        )
    )
    emt = Potential("emt", EMT())
    seen: list[tuple[int, float]] = []

    def stop_rule(step: int, energy: float) -> str | None:
        seen.append((step, energy))
        return "rejected: test" if step == 3 else None

    res = relax_one(cu, emt, RelaxConfig(fmax=0.001, checkpoints=(1, 3)), stop_rule)
    assert [s for s, _ in seen] == [1, 3]
    assert res.error == "rejected: test" and not res.converged and res.n_steps == 3
    assert res.crystal is not None and res.energy_per_atom == pytest.approx(seen[-1][1], abs=1e-4)
    assert len(res.extra["energies"]) == 4 and res.extra["energies"][0] > res.extra["energies"][3]


def test_batched_lockstep_relaxation_equals_one_by_one() -> None:
    from xtalgen.relax.batched import relax_batched

    calls = []
    emt = EMT()

    def batch(crystals):
        calls.append(len(crystals))
        out = []
        for c in crystals:
            atoms = c.to_ase()
            atoms.calc = emt
            stress = atoms.get_stress() * 160.21766208
            out.append((atoms.get_potential_energy() / len(atoms), atoms.get_forces(), stress))
        return out

    cells = [
        rattled(Structure(Lattice.cubic(a), ["Cu"] * 4, FCC), seed)
        for seed, a in enumerate((3.5, 3.6, 3.75))
    ]
    config = RelaxConfig(fmax=0.02, max_steps=200)
    one_by_one = [relax_one(c, Potential("emt", EMT()), config) for c in cells]
    batched, n_calls = relax_batched(cells, Potential("emt", EMT(), batch=batch), config)
    for a, b in zip(one_by_one, batched):
        assert b.ok and a.n_steps == b.n_steps
        assert b.energy_per_atom == pytest.approx(a.energy_per_atom, abs=1e-9)
        assert b.rmsd == pytest.approx(a.rmsd, abs=1e-6)
    total_evaluations = sum(calls)
    assert n_calls == len(calls) < total_evaluations  # several crystals per potential call
    assert max(calls) == 3


def test_chgnet_batched_relax_matches(chgnet: Potential) -> None:
    cells = [rattled(rocksalt_nacl(), 3), rattled(diamond_si(), 4)]
    loop = relax(cells, potential=chgnet, fmax=0.05, max_steps=100, progress=False)
    batched = relax(cells, potential=chgnet, fmax=0.05, max_steps=100, progress=False, batch_size=2)
    for a, b in zip(loop, batched):
        assert b.ok and b.energy_per_atom == pytest.approx(a.energy_per_atom, abs=2e-3)


def test_batched_relaxation_leaves_stdout_and_runs_the_potential_in_the_caller() -> None:
    import sys
    import threading

    from xtalgen.relax.batched import relax_batched

    emt = EMT()
    threads_seen = set()

    def batch(crystals):
        threads_seen.add(threading.get_ident())
        out = []
        for c in crystals:
            atoms = c.to_ase()
            atoms.calc = emt
            out.append((atoms.get_potential_energy() / len(atoms), atoms.get_forces(),
                        atoms.get_stress() * 160.21766208))
        return out

    cells = [rattled(Structure(Lattice.cubic(3.6), ["Cu"] * 4, FCC), seed) for seed in range(6)]
    stdout = sys.stdout
    results, _ = relax_batched(cells, Potential("emt", EMT(), batch=batch),
                               RelaxConfig(fmax=0.05, max_steps=30, compute_rmsd=False))
    assert sys.stdout is stdout  # the optimizers' redirect_stdout must not leak out
    assert threads_seen == {threading.get_ident()}  # one thread, one malloc arena
    assert all(r.crystal is not None for r in results)


def test_torch_threads_follow_omp_num_threads(monkeypatch) -> None:
    import torch

    from xtalgen.relax.potential import set_torch_threads

    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("XTALGEN_THREADS", raising=False)
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert set_torch_threads() == 1
        monkeypatch.setenv("XTALGEN_THREADS", "2")
        assert set_torch_threads() == 2  # xtalgen's own setting comes first
        monkeypatch.setenv("XTALGEN_THREADS", "x")
        assert set_torch_threads() == 1
    finally:
        torch.set_num_threads(before)
