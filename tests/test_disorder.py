"""Disordered inputs: never relaxed or screened as their majority species without saying so;
orderings and special quasirandom structures on request (xtalgen.disorder)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from tests.test_screen import config, fcc

from xtalgen import io as xio
from xtalgen.cli.main import main
from xtalgen.crystal import Crystal
from xtalgen.disorder import (
    DisorderedCrystalError,
    OrderingSettings,
    disorder_message,
    disordered_sites,
    enumerate_orderings,
    min_supercell,
    require_ordered,
    site_label,
    special_quasirandom,
)
from xtalgen.relax import Potential, relax
from xtalgen.screen import CandidateStore, screen


def nak_cif(folder: Path) -> Path:
    """The issue's case: rock salt with Na 0.5 / K 0.5 on the cation site (8 sites)."""
    structure = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.9), [{"Na": 0.5, "K": 0.5}, "Cl"], [[0, 0, 0], [0.5] * 3]
    )
    path = folder / "nak.cif"
    structure.to(filename=str(path))
    return path


def cuau_disordered(**props) -> Crystal:
    """fcc Cu0.5Au0.5 on every site (a = 3.85 angstrom)."""
    structure = Structure(Lattice.cubic(3.85), [{"Cu": 0.5, "Au": 0.5}] * 4,
                          [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    return Crystal.from_pymatgen(structure, properties=props)


@pytest.fixture
def nak(tmp_path: Path) -> Crystal:
    return xio.read(nak_cif(tmp_path))[0]


def test_sites_are_named(nak: Crystal) -> None:
    assert disordered_sites(nak) == [0, 1, 2, 3]
    assert site_label(nak, 0) == "site 0 (Na:0.5 K:0.5)"
    message = disorder_message(nak, "a relaxation")
    assert message.startswith("nak.cif: site 0 (Na:0.5 K:0.5) and 3 more site(s) are")
    assert "\n" not in message and "a relaxation cannot use partial occupancies" in message
    with_vacancy = nak.replace(site_occupancies=[((3, 0.75),)] + [None] * 7)
    assert site_label(with_vacancy, 0) == "site 0 (Li:0.75 vac:0.25)"
    assert disorder_message(fcc(["Cu"] * 4, 3.6), "x") is None
    with pytest.raises(DisorderedCrystalError, match=r"nak.cif: site 0 \(Na:0.5 K:0.5\)"):
        require_ordered([fcc(["Cu"] * 4, 3.6), nak], "relax")


def test_relax_refuses_partial_occupancies(nak: Crystal) -> None:
    from ase.calculators.emt import EMT

    (result,) = relax([nak], potential=Potential("emt", EMT(), "none"), progress=False)
    assert result.crystal is None and "partially occupied" in result.error


def test_orderings_keep_composition(nak: Crystal) -> None:
    orderings = enumerate_orderings(nak, OrderingSettings(n=5, supercell=(1, 1, 2)))
    assert 2 <= len(orderings) <= 5
    for o in orderings:
        assert o.is_ordered and o.num_sites == 16
        assert o.composition.get_el_amt_dict() == {"Na": 4, "K": 4, "Cl": 8}
        assert o.properties["parent"] == "nak.cif" and o.properties["supercell"] == "1x1x2"
    energies = [o.properties["ewald_energy"] for o in orderings]
    assert energies == sorted(energies)  # lowest Ewald energy first
    # the orderings are symmetry-distinct
    from pymatgen.analysis.structure_matcher import StructureMatcher

    matcher = StructureMatcher(scale=False)
    pms = [o.to_pymatgen() for o in orderings]
    assert not any(matcher.fit(pms[i], pms[j]) for i in range(len(pms)) for j in range(i))


def test_min_supercell_makes_whole_atoms() -> None:
    alloy = Crystal(np.eye(3) * 3.75, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
                    [29] * 4, site_occupancies=[((29, 0.6), (79, 0.4)), None, None, None])
    cell = min_supercell(alloy)
    assert int(np.prod(cell)) == 5
    (first, *_) = enumerate_orderings(alloy)
    assert first.composition.get_el_amt_dict() == {"Cu": 18, "Au": 2}
    assert np.isnan(first.properties["ewald_energy"])  # a metal: no oxidation states, unranked
    third = alloy.replace(site_occupancies=[((29, 1 / 3),), None, None, None])
    with pytest.raises(Exception, match="supercell of more than 8 sites"):
        min_supercell(third, max_sites=8)


def test_special_quasirandom_structure(nak: Crystal) -> None:
    sqs = special_quasirandom(nak, n_steps=300, seed=1)
    assert sqs.is_ordered and sqs.num_sites >= 16
    amounts = sqs.composition.get_el_amt_dict()
    assert amounts["Na"] == amounts["K"] == amounts["Cl"] / 2


def test_screen_skips_disordered_inputs_and_screens_orderings(tmp_path: Path) -> None:
    from tests.test_screen import emt_reference

    reference = emt_reference(tmp_path / "ref")
    inputs = [fcc(["Cu"] * 4, 3.62), cuau_disordered(source="cuau.cif")]
    summary = screen(inputs, tmp_path / "a.db", config(reference))
    assert summary.stages == {"relaxed": 1, "disordered": 1}
    assert summary.disordered[0].startswith("cuau.cif: site 0 (Cu:0.5 Au:0.5)")
    row = CandidateStore(tmp_path / "a.db").table()[1]
    assert "energy_per_atom" not in row and not row.get("sun_mattergen")
    assert row["composition"] == "CuAu"

    summary = screen(inputs, tmp_path / "b.db", config(reference, order=3, order_supercell=(1, 1, 2)))
    rows = CandidateStore(tmp_path / "b.db").table()
    parent, orderings = rows[1], rows[2:]
    assert parent["stage"] == "disordered" and parent["n_orderings"] == len(orderings) >= 2
    assert all(r["parent_cid"] == parent["cid"] for r in orderings)
    # every ordering is relaxed: the order-disorder-aware matcher must not merge them first
    assert all(r["stage"] == "relaxed" for r in orderings)
    assert sum(bool(r["unique"]) for r in orderings) == 1  # for S.U.N. they are one crystal
    best = min(r["e_above_hull"] for r in orderings)
    assert parent["best_e_above_hull"] == pytest.approx(best)
    assert summary.parents[0]["best_e_above_hull"] == pytest.approx(best)


def test_cli_na_k_regression(tmp_path: Path, capsys) -> None:
    """The issue's bug: Na 0.5 / K 0.5 screened as plain NaCl, K dropped, called S.U.N."""
    path = nak_cif(tmp_path)
    db = tmp_path / "c.db"
    main(["screen", str(path), "--db", str(db), "--potential", "emt", "--no-progress",
          "--no-plots", "--novelty-reference", "none"])
    err = capsys.readouterr().err
    assert "warning: nak.cif: site 0 (Na:0.5 K:0.5)" in err and "skipped" in err
    (row,) = CandidateStore(db).table()
    assert row["stage"] == "disordered" and "e_above_hull" not in row
    assert not row.get("sun_mattergen") and not row.get("stable_mattergen")
    with pytest.raises(SystemExit) as exit_info:
        main(["relax", str(path), "--out", str(tmp_path / "out.cif"), "--potential", "emt"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: nak.cif: site 0 (Na:0.5 K:0.5)")
    assert not (tmp_path / "out.cif").exists()


@pytest.mark.slow
def test_cli_na_k_orderings_with_chgnet(tmp_path: Path, capsys) -> None:
    """--order: the orderings keep the potassium, are relaxed with CHGNet and point back."""
    path = nak_cif(tmp_path)
    db = tmp_path / "d.db"
    main(["screen", str(path), "--db", str(db), "--order", "2", "--max-steps", "20",
          "--workers", "1", "--no-progress", "--no-plots", "--novelty-reference", "none"])
    out = capsys.readouterr()
    assert "lowest E_hull over their orderings" in out.out
    rows = CandidateStore(db).table()
    orderings = [r for r in rows if r.get("parent_cid")]
    # the 8-site cell has one ordering up to symmetry, so the supercell grows to 16 sites
    assert len(orderings) == 2
    store = CandidateStore(db)
    for row in store.rows("parent_cid"):
        assert store.initial(row).composition.get_el_amt_dict() == {"Na": 4, "K": 4, "Cl": 8}
    assert "best_e_above_hull" in rows[0] or all(r["stage"] == "failed" for r in orderings)


def test_templates_and_evaluate_name_disordered_files(tmp_path: Path, capsys) -> None:
    from xtalgen.cli.evaluate import _say_disordered
    from xtalgen.cli.sample import _template_pool
    from xtalgen.search.prototypes import PrototypeIndex

    folder = tmp_path / "pool"
    folder.mkdir()
    nak_cif(folder)
    xio.write([fcc(["Cu"] * 4, 3.6)], folder / "cu.cif")
    pool = _template_pool(str(folder))
    assert len(pool) == 1 and pool[0].is_ordered
    err = capsys.readouterr().err
    assert "nak.cif: site 0 (Na:0.5 K:0.5)" in err and "not used as a template" in err
    crystals = xio.read(folder / "nak.cif")
    _say_disordered(crystals)
    assert "majority species" in capsys.readouterr().err
    with pytest.warns(UserWarning, match="substitution template"):
        index = PrototypeIndex(crystals)
    assert index.disordered and not index.by_key
