"""The Crystal record: validation, wrapping, immutability, pickling, pymatgen/ASE round trips."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest

from xtalgen.crystal import Crystal, CrystalError, atomic_number, element_symbol
from xtalgen.errors import XtalgenError

CRYSTAL_NAMES = ["nacl", "si", "cscl", "srtio3", "disordered_alloy"]


@pytest.fixture(params=CRYSTAL_NAMES)
def crystal(request: pytest.FixtureRequest) -> Crystal:
    return request.getfixturevalue(request.param)


# -- validation -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lattice": np.eye(2)}, "3x3"),
        ({"lattice": [[1, 0, 0], [0, np.nan, 0], [0, 0, 1]]}, "NaN"),
        ({"lattice": [[1, 0, 0], [2, 0, 0], [0, 0, 1]]}, "zero volume"),
        ({"frac_coords": [[0, 0, 0], [np.nan, 0.5, 0.5]]}, "NaN"),
        ({"frac_coords": [[0, 0, 0], [np.inf, 0.5, 0.5]]}, "NaN or infinite"),
        ({"species": [11]}, "1 species for 2 sites"),
        ({"species": [0, 17]}, "atomic numbers"),
        ({"species": [11, 119]}, "atomic numbers"),
        ({"frac_coords": np.zeros((0, 3)), "species": []}, "at least one site"),
        ({"site_occupancies": [None]}, "one entry per site"),
        ({"site_occupancies": [((11, 0.7), (19, 0.5)), None]}, "sum to 1.2 > 1"),
        ({"site_occupancies": [((11, 0.0),), None]}, "not in"),
        ({"site_occupancies": [((200, 0.5),), None]}, "outside 1-118"),
        ({"site_occupancies": [(), None]}, "empty occupancy"),
    ],
)
def test_invalid_crystals_raise_one_clear_error(kwargs: dict, message: str) -> None:
    fields = {"lattice": np.eye(3) * 4.0, "frac_coords": [[0, 0, 0], [0.5] * 3],
              "species": [11, 17]}
    fields.update(kwargs)
    with pytest.raises(CrystalError, match=message) as info:
        Crystal(**fields)
    assert isinstance(info.value, XtalgenError)
    assert "\n" not in str(info.value)


def test_element_symbols_round_trip() -> None:
    assert element_symbol(1) == "H" and element_symbol(118) == "Og"
    assert atomic_number("Fe") == 26 and atomic_number(" cl ") == 17
    with pytest.raises(CrystalError, match="unknown element"):
        atomic_number("Xx")
    with pytest.raises(CrystalError, match="outside"):
        element_symbol(0)


# -- fractional coordinates in [0, 1) ---------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [(-1e-17, 0.0), (1.0, 0.0), (-0.0, 0.0), (1 - 1e-16, 1 - 1e-16), (-0.25, 0.75), (2.5, 0.5),
     (-3.0, 0.0), (0.3, 0.3)],
)
def test_frac_coords_wrap_into_unit_interval(value: float, expected: float) -> None:
    crystal = Crystal(np.eye(3) * 3.0, [[value, 0.5, 0.1]], [26])
    wrapped = crystal.frac_coords[0, 0]
    assert 0.0 <= wrapped < 1.0
    assert wrapped == pytest.approx(expected, abs=1e-15)


def test_wrapping_keeps_cartesian_positions_modulo_lattice() -> None:
    rng = np.random.default_rng(0)
    frac = rng.uniform(-3, 3, size=(20, 3))
    crystal = Crystal(np.diag([3.0, 4.0, 5.0]), frac, [8] * 20)
    assert np.all((crystal.frac_coords >= 0) & (crystal.frac_coords < 1))
    shift = frac - crystal.frac_coords
    np.testing.assert_allclose(shift, np.round(shift), atol=1e-12)


# -- immutability and pickling ----------------------------------------------------------------
def test_crystal_is_immutable(nacl: Crystal) -> None:
    for array in (nacl.lattice, nacl.frac_coords, nacl.species):
        assert not array.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        nacl.lattice = np.eye(3)  # type: ignore[misc]
    with pytest.raises(TypeError):
        nacl.properties["material_id"] = "other"  # type: ignore[index]


def test_crystal_copies_its_inputs() -> None:
    lattice, frac = np.eye(3) * 4.0, np.array([[0.1, 0.2, 0.3]])
    props = {"tag": "a"}
    crystal = Crystal(lattice, frac, [3], properties=props)
    lattice[0, 0], frac[0, 0], props["tag"] = 9.0, 0.9, "b"
    assert crystal.lattice[0, 0] == 4.0
    assert crystal.frac_coords[0, 0] == pytest.approx(0.1)
    assert crystal.properties["tag"] == "a"


def test_pickle_round_trip(crystal: Crystal) -> None:
    back = pickle.loads(pickle.dumps(crystal.with_properties(note="x", energy=-1.5)))
    assert back.allclose(crystal, atol=0.0)
    assert back.site_occupancies == crystal.site_occupancies
    assert back.properties["note"] == "x" and back.properties["energy"] == -1.5
    assert not back.frac_coords.flags.writeable


def test_replace_merges_properties(nacl: Crystal) -> None:
    moved = nacl.replace(lattice=np.eye(3) * 6.0, properties={"tag": "strained"})
    assert moved.volume == pytest.approx(216.0)
    assert moved.properties["tag"] == "strained"
    assert moved.properties["material_id"] == "mp-22862"
    assert nacl.volume == pytest.approx(5.64**3) and "tag" not in nacl.properties


# -- derived quantities -----------------------------------------------------------------------
def test_derived_quantities(nacl: Crystal, si: Crystal, disordered_alloy: Crystal) -> None:
    assert nacl.formula == "NaCl" and nacl.num_sites == len(nacl) == 8
    assert nacl.volume == pytest.approx(5.64**3)
    a, b, c, alpha, beta, gamma = si.lattice_parameters
    assert a == b == c == pytest.approx(5.43 / np.sqrt(2))
    assert alpha == beta == gamma == pytest.approx(60.0)
    np.testing.assert_allclose(si.cart_coords[1], [5.43 / 4] * 3)
    assert not disordered_alloy.is_ordered and nacl.is_ordered
    assert disordered_alloy.composition.get_el_amt_dict() == pytest.approx({"Cu": 3.6, "Au": 0.4})
    assert disordered_alloy.symbols == ["Cu"] * 4


def test_allclose_is_periodic_and_strict_elsewhere(nacl: Crystal) -> None:
    shifted = nacl.replace(frac_coords=nacl.frac_coords + 1e-9)  # 0 and 1 - x compare equal
    assert nacl.allclose(shifted)
    assert not nacl.allclose(nacl.replace(frac_coords=nacl.frac_coords + 1e-3))
    assert not nacl.allclose(nacl.replace(species=[11] * 8))
    assert not nacl.allclose(nacl.replace(lattice=np.eye(3) * 5.65))
    disordered = nacl.replace(site_occupancies=[((11, 0.5), (19, 0.5))] + [None] * 7)
    assert not nacl.allclose(disordered) and not disordered.allclose(nacl)


# -- conversions ------------------------------------------------------------------------------
def test_pymatgen_round_trip_is_lossless(crystal: Crystal) -> None:
    crystal = crystal.with_properties(source="test", tags=["a", "b"])
    structure = crystal.to_pymatgen()
    assert len(structure) == crystal.num_sites
    assert structure.is_ordered == crystal.is_ordered
    back = Crystal.from_pymatgen(structure)
    assert back.allclose(crystal, atol=1e-12)
    assert back.site_occupancies == crystal.site_occupancies
    assert dict(back.properties) == dict(crystal.properties)


def test_ase_round_trip_is_lossless(crystal: Crystal) -> None:
    crystal = crystal.with_properties(energy=-3.5)
    atoms = crystal.to_ase()
    assert all(atoms.pbc) and len(atoms) == crystal.num_sites
    back = Crystal.from_ase(atoms)
    assert back.allclose(crystal, atol=1e-12)
    assert back.site_occupancies == crystal.site_occupancies
    assert back.properties["energy"] == -3.5


def test_pymatgen_to_ase_through_crystal(srtio3: Crystal) -> None:
    from pymatgen.io.ase import AseAtomsAdaptor

    via_crystal = Crystal.from_pymatgen(srtio3.to_pymatgen()).to_ase()
    via_pymatgen = AseAtomsAdaptor.get_atoms(srtio3.to_pymatgen())
    np.testing.assert_allclose(via_crystal.cell[:], via_pymatgen.cell[:], atol=1e-12)
    np.testing.assert_allclose(via_crystal.positions, via_pymatgen.positions, atol=1e-12)
    assert list(via_crystal.numbers) == list(via_pymatgen.numbers)


def test_from_pymatgen_drops_oxidation_states_and_keeps_vacancies() -> None:
    from pymatgen.core import Lattice, Structure

    structure = Structure(
        Lattice.cubic(5.0), [{"Na+": 0.5}, "Cl-"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    crystal = Crystal.from_pymatgen(structure)
    assert list(crystal.species) == [11, 17]
    assert crystal.site_occupancies == (((11, 0.5),), None)
    assert crystal.composition.get_el_amt_dict() == pytest.approx({"Na": 0.5, "Cl": 1.0})
