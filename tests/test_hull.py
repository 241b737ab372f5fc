"""Energy above hull: bundled MP-20 reference, corrections, user references, missing elements."""

from __future__ import annotations

import math

import pytest
from pymatgen.core import Composition, Lattice, Structure
from pymatgen.entries.computed_entries import ComputedEntry

from xtalgen.crystal import Crystal
from xtalgen.relax import get_potential, relax
from xtalgen.relax.correction import corrected_energy
from xtalgen.relax.hull import ConvexHull, e_above_hull
from xtalgen.relax.reference import HullReference, load_reference


@pytest.fixture(scope="module")
def hull() -> ConvexHull:
    return ConvexHull()


def test_bundled_reference_is_complete_enough() -> None:
    ref = load_reference()
    assert len(ref) > 30_000
    assert len(ref.elemental_energy_per_atom) == 89
    assert ref.elemental_energy_per_atom["O"] == pytest.approx(-4.95, abs=0.05)  # MP2020 O2
    assert "NaCl" in ref.formulas


def test_hull_phases_sit_on_the_hull_and_offsets_are_exact(hull: ConvexHull) -> None:
    ref = hull.reference
    i = ref.formulas.index("NaCl")
    comp = Composition("NaCl")
    e_form = min(e for f, e in zip(ref.formulas, ref.formation_energy_per_atom) if f == "NaCl")
    on = hull.e_above_hull_of_formation(comp, e_form)
    assert on.error is None and on.e_above_hull == pytest.approx(0.0, abs=1e-6)
    above = hull.e_above_hull_of_formation(comp, e_form + 0.05)
    below = hull.e_above_hull_of_formation(comp, e_form - 0.05)
    assert above.e_above_hull == pytest.approx(0.05, abs=1e-6)
    stable_id = ref.ids[i] if ref.formation_energy_per_atom[i] == e_form else None
    assert len(above.decomposition) == 1 and next(iter(above.decomposition)).startswith("mp-")
    assert stable_id is None or above.decomposition == {stable_id: 1.0}
    assert below.e_above_hull == pytest.approx(-0.05, abs=1e-6)  # negative distances allowed
    # a ternary is placed on the hull of Na-Cl-O with all its subsystems
    ternary = hull.e_above_hull_of_formation(Composition("NaClO3"), 0.0)
    assert ternary.e_above_hull > 0.5


def test_element_outside_the_reference_gives_a_clear_result(hull: ConvexHull) -> None:
    crystal = Crystal(
        lattice=[[4, 0, 0], [0, 4, 0], [0, 0, 4]],
        frac_coords=[[0, 0, 0], [0.5, 0.5, 0.5]],
        species=[87, 17],
    )  # FrCl
    result = hull.evaluate(crystal, -3.0)
    assert result.error == "no reference for element Fr" and math.isnan(result.e_above_hull)
    assert e_above_hull([crystal], [math.nan], hull=hull)[0].error


def test_mp2020_correction_of_an_iron_oxide() -> None:
    feo = Crystal.from_pymatgen(
        Structure.from_spacegroup(
            "Fm-3m", Lattice.cubic(4.3), ["Fe", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]
        )
    )
    raw = -7.0 * feo.num_sites
    corrected = corrected_energy(feo, raw, "MP2020")
    # 4 O at -0.687 (oxide) and 4 Fe at -2.256 eV (GGA+U mixing), MP2020 values
    assert (corrected - raw) / 4 == pytest.approx(-0.687 - 2.256, abs=0.01)
    assert corrected_energy(feo, raw, "none") == raw


def test_user_reference_from_entries(tmp_path) -> None:
    entries = [
        ComputedEntry("Cu", -1.0, entry_id="cu"),
        ComputedEntry("Au", -2.0, entry_id="au"),
        ComputedEntry("CuAu", -4.0, entry_id="cuau"),
        ComputedEntry("Cu2Au", -5.0, entry_id="cu2au"),
    ]
    ref = HullReference.from_entries(entries, name="toy", correction="none")
    assert ref.elemental_energy_per_atom == {"Cu": -1.0, "Au": -2.0}
    saved = load_reference(ref.save(tmp_path / "ref"))
    toy = ConvexHull(saved)
    cuau = Crystal(
        lattice=[[3, 0, 0], [0, 3, 0], [0, 0, 3]],
        frac_coords=[[0, 0, 0], [0.5, 0.5, 0.5]],
        species=[29, 79],
    )
    # AB: E_form = -4/2 - (-1.5) = -0.5 eV/atom; hull at x=1/2 spans Cu, Cu2Au (-1/3), CuAu
    result = toy.evaluate(cuau, -1.9, correction="none")
    assert result.formation_energy_per_atom == pytest.approx(-0.4)
    assert result.e_above_hull == pytest.approx(0.1, abs=1e-9)


def test_chgnet_relaxed_nacl_is_near_the_hull(hull: ConvexHull) -> None:
    nacl = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.6), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    ).get_primitive_structure()
    potential = get_potential("chgnet", threads=1)
    (res,) = relax([Crystal.from_pymatgen(nacl)], potential=potential, progress=False)
    h = hull.evaluate(res.crystal, res.energy_per_atom, correction=potential.correction)
    assert h.error is None
    assert abs(h.e_above_hull) < 0.1  # MP: NaCl is on the hull
    assert h.formation_energy_per_atom == pytest.approx(-2.1, abs=0.15)  # MP: -2.10 eV/atom


def test_chgnet_e_hull_of_mp20_test_structures_is_close_to_tabulated(hull: ConvexHull) -> None:
    """Three small MP-20 test structures, relaxed with CHGNet: E_hull within 0.1 eV/atom of MP's.

    (The 200-structure mean absolute difference, 0.027 eV/atom, is in benchmarks/RESULTS.md.)
    """
    from xtalgen.data import load_dataset

    dataset = load_dataset("mp20", "pilot_test", progress=False)
    small = [c for c in dataset if c.num_sites <= 4][:3]
    potential = get_potential("chgnet", threads=1)
    results = relax(small, potential=potential, progress=False)
    for crystal, res in zip(small, results):
        assert res.ok, res.error
        h = hull.evaluate(res.crystal, res.energy_per_atom, correction=potential.correction)
        assert abs(h.e_above_hull - crystal.properties["e_above_hull"]) < 0.1, crystal.formula


@pytest.mark.parametrize("formula", ["Li2MnO3", "LiFePO4", "NaCl", "BaTiO3", "Li3Mn2Fe1O6",
                                     "Al2Cu1Ni3"])
def test_linear_programme_gives_the_phase_diagram_hull(hull: ConvexHull, formula: str) -> None:
    composition = Composition(formula)
    lp_energy, decomposition = hull.hull_energy_lp(composition)
    on_diagram = hull.e_above_hull_of_formation(composition, 0.0)  # E_hull at E_form = 0
    assert lp_energy == pytest.approx(-on_diagram.e_above_hull, abs=1e-6)
    assert sum(decomposition.values()) == pytest.approx(1.0, abs=1e-5)  # rounded to 1e-6 each


def test_many_element_system_is_fast_and_on_the_lp(hull: ConvexHull) -> None:
    # Nine elements: a phase diagram of the system never finishes in a test; the LP does.
    composition = Composition("LiNaKMgCaAlSiO6F")
    result = hull.e_above_hull_of_formation(composition, 1.0)
    assert result.error is None
    assert result.e_above_hull >= 1.0  # the hull lies at or below zero
    lp_energy, _ = hull.hull_energy_lp(composition)
    assert result.e_above_hull == pytest.approx(1.0 - lp_energy, abs=1e-9)
    assert frozenset(el.symbol for el in composition.elements) not in hull._diagrams


def test_early_rejection_uses_the_formation_energy_bound_first(hull: ConvexHull) -> None:
    from types import SimpleNamespace

    from xtalgen.screen.worker import WorkerSpec, _plan

    crystal = Crystal.from_pymatgen(Structure(Lattice.cubic(4.0), ["Li", "Na", "K", "Mg", "Ca",
                                                                    "Al", "Si", "O", "F"],
                                              [[i / 9, i / 9, i / 9] for i in range(9)]))
    spec = WorkerSpec(reject_ehull=((50, 0.5),))
    _, stop_rule = _plan(spec, crystal, SimpleNamespace(correction="none"), hull)
    mu = -hull.formation_energy_per_atom(crystal.composition, 0.0)
    message = stop_rule(50, mu + 3.0)  # E_form = 3 eV/atom: E_hull >= 3, no hull needed
    assert message is not None and "E_hull >= 3.00" in message
    assert stop_rule(50, mu - 5.0) is None  # far below any hull: kept, E_hull from the LP
