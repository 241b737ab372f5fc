"""Small reference crystals shared by the representation tests (plus a sanity test)."""

from __future__ import annotations

import numpy as np
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from xtalgen.crystal import Crystal


def nacl() -> Crystal:
    s = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    return Crystal.from_pymatgen(s)


def silicon() -> Crystal:
    s = Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.43), ["Si"], [[0, 0, 0]])
    return Crystal.from_pymatgen(SpacegroupAnalyzer(s).get_primitive_standard_structure())


def cscl() -> Crystal:
    s = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    return Crystal.from_pymatgen(s)


def srtio3() -> Crystal:
    s = Structure(
        Lattice.cubic(3.905),
        ["Sr", "Ti", "O", "O", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )
    return Crystal.from_pymatgen(s)


def triclinic() -> Crystal:
    """A P1 cell with 4 atoms in general positions."""
    lat = Lattice.from_parameters(4.1, 5.3, 6.2, 81.0, 97.0, 104.0)
    frac = [[0.11, 0.23, 0.37], [0.61, 0.17, 0.83], [0.29, 0.71, 0.05], [0.83, 0.59, 0.47]]
    return Crystal.from_pymatgen(Structure(lat, ["Li", "Fe", "O", "O"], frac))


def random_pyxtal(seed: int = 7) -> Crystal:
    """A random symmetric crystal from pyxtal (space group 62, Mg4 Si4 O12), fixed seed."""
    from pyxtal import pyxtal

    rng = np.random.default_rng(seed)
    xtal = pyxtal()
    xtal.from_random(3, 62, ["Mg", "Si", "O"], [4, 4, 12], random_state=rng)
    return Crystal.from_pymatgen(xtal.to_pymatgen())


EXAMPLES = {
    "NaCl": nacl,
    "Si": silicon,
    "CsCl": cscl,
    "SrTiO3": srtio3,
    "triclinic": triclinic,
    "pyxtal": random_pyxtal,
}


def test_examples_have_expected_space_groups() -> None:
    expected = {"NaCl": 225, "Si": 227, "CsCl": 221, "SrTiO3": 221, "triclinic": 1, "pyxtal": 62}
    for name, build in EXAMPLES.items():
        sga = SpacegroupAnalyzer(build().to_pymatgen(), symprec=0.1)
        assert sga.get_space_group_number() == expected[name], name
