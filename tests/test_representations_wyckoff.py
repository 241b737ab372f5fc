"""Wyckoff representation: encode/decode round trips, serialisation, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pymatgen.analysis.structure_matcher import StructureMatcher

from test_representations_examples import EXAMPLES, nacl
from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.representations import wyckoff as W

EXPECTED = {
    "NaCl": "225 | Na 4a | Cl 4b",
    "CsCl": "221 | Cl 1b | Cs 1a",
    "SrTiO3": "221 | O 3c | Ti 1b | Sr 1a",
    "Si": "227 | Si 8b",
    "triclinic": "1 | Li 1a | O 1a | O 1a | Fe 1a",
    "pyxtal": "62 | O 4c | O 8d | Mg 4b | Si 4a",
}


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_round_trip_matches(name) -> None:
    crystal = EXAMPLES[name]()
    rep = W.encode(crystal)
    assert rep.compact == EXPECTED[name]
    decoded = W.decode(rep)
    assert decoded.num_sites == rep.num_sites
    assert decoded.composition.reduced_formula == crystal.composition.reduced_formula
    assert StructureMatcher().fit(decoded.to_pymatgen(), crystal.to_pymatgen())
    # decoding is deterministic and re-encoding gives the same label
    assert W.decode(rep).allclose(decoded)
    assert W.encode(decoded).compact == rep.compact


def test_free_parameters_and_lattice() -> None:
    rep = W.encode(EXAMPLES["pyxtal"]())
    assert rep.crystal_system == "orthorhombic"
    assert rep.lattice_params[3:] == (90.0, 90.0, 90.0)
    dof = {s.label: len(s.free_params) for s in rep.sites}
    assert dof == {"4c": 2, "8d": 3, "4b": 0, "4a": 0}
    assert all(0 <= x < 1 for s in rep.sites for x in s.free_params)
    # moving a free parameter moves the decoded atoms
    site = rep.sites[1]
    moved = W.WyckoffSite(site.element, site.letter, site.multiplicity, (0.1, 0.2, 0.3))
    rep2 = W.WyckoffRepresentation(
        rep.spacegroup, rep.lattice_params, (rep.sites[0], moved, *rep.sites[2:])
    )
    assert not StructureMatcher().fit(W.decode(rep2).to_pymatgen(), W.decode(rep).to_pymatgen())
    orbit = W.site_orbit(62, moved)
    assert orbit.shape == (8, 3)
    assert len({tuple(np.round(p, 6)) for p in orbit}) == 8


def test_decode_symmetrizes_lattice() -> None:
    rep = W.WyckoffRepresentation(225, (5.6, 5.7, 5.65, 89.0, 91.0, 90.5), W.encode(nacl()).sites)
    a, b, c, al, be, ga = W.decode(rep).lattice_parameters
    assert np.allclose([a, b, c], 5.65) and np.allclose([al, be, ga], 90.0)
    assert W.symmetrize_lattice_params(194, (3, 3.2, 5, 90, 90, 118)) == (
        3.1,
        3.1,
        5.0,
        90.0,
        90.0,
        120.0,
    )


def test_serialisation_round_trips() -> None:
    for build in EXAMPLES.values():
        rep = W.encode(build())
        assert W.WyckoffRepresentation.from_dict(json.loads(json.dumps(rep.to_dict()))) == rep
        assert W.WyckoffRepresentation.from_string(rep.to_string()) == rep
        assert str(rep) == rep.compact
    assert W.encode(nacl()).to_string(4) == "225 | 5.64 5.64 5.64 90 90 90 | Na 4a | Cl 4b"


def test_symprec_and_verify() -> None:
    # 0.03 A displacement: cubic at symprec=0.1, lower symmetry at 0.01
    base = nacl()
    frac = base.frac_coords.copy()
    frac[0, 0] += 0.03 / 5.64
    distorted = base.replace(frac_coords=frac)
    assert W.encode(distorted).spacegroup == 225
    assert W.encode(distorted, symprec=0.01).spacegroup < 225
    rep = W.encode(distorted, verify=True)
    assert StructureMatcher().fit(W.decode(rep).to_pymatgen(), distorted.to_pymatgen())


def test_bad_input() -> None:
    sites = (W.WyckoffSite("Na", "a", 4),)
    with pytest.raises(XtalgenError, match="1-230"):
        W.WyckoffRepresentation(231, (1, 1, 1, 90, 90, 90), sites)
    with pytest.raises(XtalgenError, match="no Wyckoff position"):
        W.decode(
            W.WyckoffRepresentation(225, (5, 5, 5, 90, 90, 90), (W.WyckoffSite("Na", "q", 4),))
        )
    with pytest.raises(XtalgenError, match="multiplicity"):
        W.decode(
            W.WyckoffRepresentation(225, (5, 5, 5, 90, 90, 90), (W.WyckoffSite("Na", "a", 8),))
        )
    with pytest.raises(XtalgenError, match="free"):
        W.decode(
            W.WyckoffRepresentation(225, (5, 5, 5, 90, 90, 90), (W.WyckoffSite("Na", "e", 24),))
        )
    with pytest.raises(XtalgenError, match="not a Wyckoff"):
        W.WyckoffRepresentation.from_string("225 | Na")
    disordered = Crystal(
        np.eye(3) * 4, [[0, 0, 0]], [11], site_occupancies=(((11, 0.5), (19, 0.5)),)
    )
    with pytest.raises(XtalgenError, match="ordered"):
        W.encode(disordered)


def cstli3() -> Crystal:
    """mp-1112542 (Materials Project, CC-BY 4.0), CsTlI3 in Fm-3m: primitive 10-atom cell.

    Pseudo-symmetric: I at 24e (x = 0.2424) is 0.19 A from x = 1/4, so pymatgen's
    ``get_primitive_structure`` (tolerance 0.25 A, used inside StructureMatcher) halves the
    conventional cell but not this one.
    """
    from pymatgen.core import Lattice, Structure

    x, y = 0.757619, 0.242381
    frac = [[0.75] * 3, [0.25] * 3, [0.5] * 3, [0.0] * 3,
            [x, y, y], [y, y, x], [y, x, x], [y, x, y], [x, y, x], [x, x, y]]  # fmt: skip
    lattice = Lattice.from_parameters(8.93126635, 8.93126635, 8.93126635, 60, 60, 60)
    return Crystal.from_pymatgen(Structure(lattice, ["Cs"] * 2 + ["Tl"] * 2 + ["I"] * 6, frac))


def test_pseudo_symmetric_crystal_matches_in_its_primitive_cell() -> None:
    crystal = cstli3()
    rep = W.encode(crystal)
    assert rep.compact == "225 | I 24e | Cs 8c | Tl 4a | Tl 4b"
    conventional, primitive = W.decode(rep), W.decode(rep, primitive=True)
    assert (conventional.num_sites, primitive.num_sites) == (40, 10)
    matcher = StructureMatcher()
    # the known StructureMatcher artefact: same crystal, no match in the conventional cell
    assert not matcher.fit(crystal.to_pymatgen(), conventional.to_pymatgen())
    assert matcher.fit(crystal.to_pymatgen(), primitive.to_pymatgen())
    assert W.round_trip_matches(crystal, rep)
    assert W.encode(crystal, verify=True) == rep


def test_primitive_decode() -> None:
    rep = W.encode(nacl())
    primitive = W.decode(rep, primitive=True)
    assert primitive.num_sites == 2
    assert np.isclose(primitive.volume, W.decode(rep).volume / 4)
    # a P1 representation has nothing to remove
    tri = W.encode(EXAMPLES["triclinic"]())
    assert W.decode(tri, primitive=True).num_sites == 4
