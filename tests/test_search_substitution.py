"""Prototype substitution: the naive species map, template orders and the first-pick vote.

Tiny hand-made pools, no potential (``relax=False, energies=False``): each test runs in well
under a second.
"""

from __future__ import annotations

import numpy as np
import pytest

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.search import PrototypeSubstitution
from xtalgen.search.prototypes import PrototypeIndex, map_species, prototype_key

BA, SR, CA, ZR, TI, OX = 56, 38, 20, 40, 22, 8


def perovskite(a_site: int, b_site: int, a: float = 4.0, material_id: str | None = None) -> Crystal:
    """Cubic ABO3: ``a_site`` at the corner (1a), ``b_site`` at the body centre (1b)."""
    props = {"material_id": material_id} if material_id else {}
    return Crystal(
        np.eye(3) * a,
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
        [a_site, b_site, OX, OX, OX],
        properties=props,
    )


def unscored(pool: list[Crystal], **kwargs) -> PrototypeSubstitution:
    return PrototypeSubstitution(pool=pool, relax=False, energies=False, progress=False, **kwargs)


def corner_and_centre(crystal: Crystal) -> tuple[int, int]:
    """Species at (0, 0, 0) and (1/2, 1/2, 1/2) of a perovskite made by :func:`perovskite`."""
    frac = np.asarray(crystal.frac_coords)
    species = np.asarray(crystal.species)
    corner = species[np.argmin(np.linalg.norm(frac, axis=1))]
    centre = species[np.argmin(np.linalg.norm(frac - 0.5, axis=1))]
    return int(corner), int(centre)


def test_naive_rule_maps_by_amount_and_electronegativity(nacl: Crystal) -> None:
    bazro3 = perovskite(BA, ZR, 4.19)
    gen = unscored([bazro3], species_map="electronegativity", ranking="none", dedupe=False)
    (srtio3,) = gen.generate(1, composition="SrTiO3")
    # Sr (X 0.95) is below Ti (1.54) as Ba (0.89) is below Zr (1.33): Sr takes Ba's corner
    assert corner_and_centre(srtio3) == (SR, TI)
    assert srtio3.properties["species_substitution"] == "Ba->Sr,Zr->Ti"

    kbr = Crystal(nacl.lattice * 6.6 / 5.64, nacl.frac_coords, [19] * 4 + [35] * 4)
    gen = unscored([kbr], species_map="electronegativity", ranking="none", dedupe=False)
    (out,) = gen.generate(1, composition="NaCl")
    assert out.properties["species_substitution"] == "Br->Cl,K->Na"
    assert list(out.species) == [11] * 4 + [17] * 4  # Na on K's sites, Cl on Br's
    # the amounts decide first: in Li2O the amount-2 element takes the amount-2 sites
    assert map_species({9: 2, 20: 1}, {3: 2, 8: 1}, "electronegativity").mapping == {9: 3, 20: 8}


def test_ranking_none_keeps_pool_order(nacl: Crystal, cscl: Crystal) -> None:
    naive = unscored([cscl, nacl], species_map="electronegativity", ranking="none", dedupe=False)
    assert [c.properties["spacegroup"] for c in naive.generate(2, composition="NaCl")] == [221, 225]
    ranked = unscored([cscl, nacl])  # default: the exact composition is the closest template
    assert ranked.generate(1, composition="NaCl")[0].properties["spacegroup"] == 225
    with pytest.raises(XtalgenError, match="ranking"):
        unscored([nacl], ranking="random")
    with pytest.raises(XtalgenError, match="first_pick"):
        unscored([nacl], first_pick="energy")


def test_formula_units_put_templates_of_the_target_cell_size_first(
    nacl: Crystal, cscl: Crystal
) -> None:
    # NaCl's cell holds 4 formula units, CsCl's one; KBr is nearer to CsCl chemically
    assert [unscored([nacl, cscl], formula_units=(z,)).generate(1, composition="KBr")[0]
            .properties["spacegroup"] for z in (1, 4)] == [221, 225]
    # a size with no template: every template still counts
    assert len(unscored([nacl, cscl], formula_units=(2,)).generate(2, composition="KBr")) == 2


def test_decorated_prototype_tells_site_assignments_apart() -> None:
    normal, swapped = perovskite(SR, TI), perovskite(TI, SR)
    assert prototype_key(normal) == prototype_key(swapped)
    index = PrototypeIndex([normal, swapped])
    identity = map_species(index.counts[0], index.counts[0])
    assert index.decorated_prototype(0, identity) != index.decorated_prototype(1, identity)


def test_first_pick_vote_outweighs_a_single_exact_template() -> None:
    # one SrTiO3 with Sr and Ti swapped, three near neighbours with Sr's analogue on the corner
    pool = [perovskite(TI, SR, 3.9, "swapped"), perovskite(BA, TI, 4.0, "bati"),
            perovskite(CA, TI, 3.8, "cati"), perovskite(SR, ZR, 4.1, "srzr")]
    closest = unscored(pool, first_pick="closest").generate(1, composition="SrTiO3")[0]
    assert closest.properties["template_material_id"] == "swapped"
    assert corner_and_centre(closest) == (TI, SR)
    voted = unscored(pool).generate(1, composition="SrTiO3")[0]
    assert voted.properties["template_material_id"] != "swapped"
    assert corner_and_centre(voted) == (SR, TI)
    # a sharp vote is the closest template again
    sharp = unscored(pool, pick_temperature=0.01).generate(1, composition="SrTiO3")[0]
    assert sharp.properties["template_material_id"] == "swapped"


def test_decorations_add_the_other_site_assignments_before_further_templates() -> None:
    from xtalgen.search.prototypes import species_maps

    maps = species_maps({SR: 1, TI: 1, OX: 3}, {BA: 1, ZR: 1, 16: 3})
    assert [m.mapping for m in maps] == [{TI: ZR, SR: BA, OX: 16}, {TI: BA, SR: ZR, OX: 16}]
    pool = [perovskite(SR, TI, 3.9, "srti"), perovskite(CA, TI, 3.8, "cati")]
    with pytest.warns(UserWarning, match="2 of 3"):
        plain = unscored(pool, dedupe=False).generate(3, composition="BaZrO3")
    assert [corner_and_centre(c) for c in plain] == [(BA, ZR), (BA, ZR)]  # two templates, one kind
    decorated = unscored(pool, decorations=True, dedupe=False).generate(3, composition="BaZrO3")
    assert [corner_and_centre(c) for c in decorated] == [(BA, ZR), (ZR, BA), (BA, ZR)]
