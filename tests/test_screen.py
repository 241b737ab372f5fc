"""Screening pipeline: validity, dedup, relaxation, E_hull, S.U.N., store, export (EMT: fast)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
from ase.calculators.emt import EMT
from pymatgen.core import Lattice, Structure
from pymatgen.entries.computed_entries import ComputedEntry

from xtalgen.crystal import Crystal
from xtalgen.relax import Potential, get_potential, relax
from xtalgen.relax.reference import HullReference
from xtalgen.screen import CandidateStore, ScreenConfig, screen, stability_metrics

FCC = [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]


def fcc(species: list[str], a: float, rattle: float = 0.0, rng_seed: int = 0, **props) -> Crystal:
    s = Structure(Lattice.cubic(a), species, FCC)
    if rattle:
        rng = np.random.default_rng(rng_seed)
        cart = s.cart_coords + rng.normal(0, rattle, (len(s), 3))
        s = Structure(s.lattice, s.species, cart, coords_are_cartesian=True)
    return Crystal.from_pymatgen(s, properties=props)


def samples() -> list[Crystal]:
    """3 near-identical fcc Cu (2 duplicates), Au, simple-cubic Cu, Cu3Au (L1_2), an overlap."""
    out = [fcc(["Cu"] * 4, 3.62 + 0.01 * i, 0.02, i, generator="test", seed=i) for i in range(3)]
    out.append(fcc(["Au"] * 4, 4.05, 0.03, 7, generator="test", seed=3))
    simple_cubic = Structure(Lattice.cubic(2.45), ["Cu"], [[0, 0, 0]])  # above the fcc hull
    out.append(Crystal.from_pymatgen(simple_cubic, properties={"generator": "test", "seed": 4}))
    out.append(
        fcc(
            ["Au", "Cu", "Cu", "Cu"],
            3.75,
            0.03,
            9,
            generator="test",
            seed=5,
            condition={"band_gap": 0.0},
        )
    )
    bad = Structure(Lattice.cubic(3.6), ["Cu", "Cu"], [[0, 0, 0], [0.05, 0, 0]])
    out.append(Crystal.from_pymatgen(bad))
    return out


def emt_reference(folder: Path) -> str:
    """A hull of EMT energies: relaxed fcc Cu, fcc Au and L1_2 Cu3Au."""
    emt = Potential("emt", EMT(), correction="none")
    phases = [fcc(["Cu"] * 4, 3.6), fcc(["Au"] * 4, 4.06), fcc(["Au", "Cu", "Cu", "Cu"], 3.75)]
    results = relax(phases, potential=emt, fmax=0.01, max_steps=300, progress=False)
    entries = [
        ComputedEntry(r.crystal.composition, r.energy, entry_id=f"emt-{i}")
        for i, r in enumerate(results)
    ]
    HullReference.from_entries(entries, name="emt-toy", correction="none").save(folder)
    return str(folder)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> str:
    return emt_reference(tmp_path_factory.mktemp("emt_ref"))


def config(reference: str, **kw) -> ScreenConfig:
    base = dict(
        potential="emt",
        hull_reference=reference,
        n_workers=1,
        progress=False,
        novelty_reference=[fcc(["Cu"] * 4, 3.6)],
        fmax=0.05,
        max_steps=200,
    )
    base.update(kw)
    return ScreenConfig(**base)


def test_pipeline_end_to_end(tmp_path: Path, reference: str) -> None:
    db = tmp_path / "candidates.db"
    summary = screen(samples(), db, config(reference))
    assert summary.n_submitted == 7
    assert summary.stages == {"relaxed": 4, "duplicate": 2, "invalid": 1}
    assert summary.n_computed_this_run == 4
    store = CandidateStore(db)
    rows = {r["index"]: r for r in store.table()}
    assert rows[1]["duplicate_of"] == rows[0]["cid"] and rows[2]["stage"] == "duplicate"
    assert rows[1]["e_above_hull"] == rows[0]["e_above_hull"]  # inherited, not recomputed
    assert rows[6]["stage"] == "invalid" and not rows[6]["struct_valid"]
    assert rows[0]["generator"] == "test" and rows[5]["condition_band_gap"] == 0.0
    # fcc Cu, Au and Cu3Au are hull phases of the EMT reference; simple-cubic Cu is above it
    for i in (0, 3, 5):
        assert abs(rows[i]["e_above_hull"]) < 0.01
    assert rows[4]["e_above_hull"] > 0.1
    # novelty: Cu is in the novelty reference; duplicates are never unique
    assert not rows[0]["novel"] and rows[3]["novel"] and rows[4]["novel"]
    assert rows[0]["unique"] and not rows[1]["unique"]
    mg, strict = summary.metrics["mattergen"], summary.metrics["strict"]
    assert mg["n_submitted"] == strict["n_submitted"] == 7  # failures and invalid included
    n_stable_mg = sum(r["e_above_hull"] <= 0.1 for r in rows.values() if "e_above_hull" in r)
    assert mg["frac_stable"] == pytest.approx(n_stable_mg / 7)
    assert strict["n_stable"] <= mg["n_stable"]
    assert mg["n_sun"] == sum(bool(r.get("sun_mattergen")) for r in rows.values())
    assert mg["n_sun"] >= 2  # Au and Cu3Au
    assert rows[0]["rank"] >= 1 and "rank" not in rows[1]
    # the store answers the queries users know, and exports
    assert {r.cid for r in store.rows("e_above_hull<0.01")} >= {rows[0]["cid"], rows[3]["cid"]}
    paths = store.export(tmp_path / "sun.extxyz", "sun_mattergen=True")
    from xtalgen.io import read

    assert len(read(paths[0])) == mg["n_sun"]
    # a second run finds everything finished and computes nothing
    again = screen(samples(), db, config(reference))
    assert again.n_computed_this_run == 0 and again.metrics == summary.metrics


def test_stability_metrics_denominators_and_thresholds() -> None:
    e = [0.0, 0.05, 0.1, 0.2, math.nan, -0.01]
    unique = [True, True, True, True, False, False]
    novel = [True, False, True, True, True, True]
    mg = stability_metrics(e, unique, novel, [0.1, 0.2, math.nan, 0.3, math.nan, 0.0])
    strict = stability_metrics(e, unique, novel, convention="strict")
    assert mg.n_submitted == 6 and mg.n_stable == 4 and strict.n_stable == 2  # 0.1 is <= 0.1
    assert mg.frac_sun == pytest.approx(2 / 6)  # indices 0 and 2
    assert strict.frac_sun == pytest.approx(1 / 6) and strict.frac_msun == pytest.approx(2 / 6)
    assert mg.mean_rmsd == pytest.approx(0.15)


def test_chgnet_screening_of_two_tiny_cells(tmp_path: Path) -> None:
    """The default potential and the bundled hull, end to end, on 2-atom NaCl and Si."""
    nacl = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.6), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    ).get_primitive_structure()
    si = Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.45), ["Si"], [[0, 0, 0]])
    crystals = [Crystal.from_pymatgen(nacl), Crystal.from_pymatgen(si.get_primitive_structure())]
    get_potential("chgnet", threads=1)
    start = time.perf_counter()
    summary = screen(
        crystals,
        tmp_path / "c.db",
        ScreenConfig(
            n_workers=1, progress=False, novelty_reference=None, potential_kw={"threads": 1}
        ),
    )
    assert time.perf_counter() - start < 60
    rows = CandidateStore(tmp_path / "c.db").table()
    assert [r["stage"] for r in rows] == ["relaxed", "relaxed"]
    # both are MP ground states; CHGNet puts Si 0.11 eV/atom above MP2020's Si reference
    assert abs(rows[0]["e_above_hull"]) < 0.05 and 0 <= rows[1]["e_above_hull"] < 0.15
    assert summary.metrics["mattergen"]["frac_sun"] == 0.5  # novelty not checked here
    assert summary.metrics["strict"]["frac_sun"] == 0.0


def test_cli_screen_relax_and_candidates(tmp_path: Path, reference: str, capsys) -> None:
    from xtalgen.cli.main import main
    from xtalgen.io import read, write

    samples_file = tmp_path / "samples.extxyz"
    write(samples()[:4], samples_file)
    db = tmp_path / "c.db"
    args = [
        "screen",
        str(samples_file),
        "--db",
        str(db),
        "--potential",
        "emt",
        "--workers",
        "1",
        "--novelty-reference",
        "none",
        "--hull-reference",
        reference,
        "--no-progress",
    ]
    main(args)
    out = capsys.readouterr().out
    assert "4 candidates" in out and "S.U.N." in out and "stable" in out
    assert (tmp_path / "c_ehull_hist.png").stat().st_size > 1000
    assert (tmp_path / "c_sun_funnel.png").stat().st_size > 1000
    main(["candidates", str(db), "stage=relaxed", "--out", str(tmp_path / "relaxed.cif")])
    assert len(read(tmp_path / "relaxed.cif")) == 2  # fcc Cu (2 duplicates) and Au
    main(
        [
            "relax",
            str(samples_file),
            "--out",
            str(tmp_path / "relaxed.extxyz"),
            "--potential",
            "emt",
            "--max-steps",
            "200",
        ]
    )
    relaxed = read(tmp_path / "relaxed.extxyz")
    assert len(relaxed) == 4 and all("energy_per_atom" in c.properties for c in relaxed)
    with pytest.raises(SystemExit) as exc:
        main(["screen", str(samples_file), "--db", str(db), "--reject-ehull", "oops"])
    assert exc.value.code == 1
    assert "--reject-ehull must look like" in capsys.readouterr().err


def emt_batched() -> Potential:
    """EMT with a (looped) batched call, to exercise lockstep relaxation in the pipeline."""
    emt = EMT()

    def batch(crystals):
        out = []
        for c in crystals:
            atoms = c.to_ase()
            atoms.calc = emt
            out.append(
                (
                    atoms.get_potential_energy() / len(atoms),
                    atoms.get_forces(),
                    atoms.get_stress() * 160.21766208,
                )
            )
        return out

    return Potential("emt", EMT(), correction="none", batch=batch)


def test_pipeline_with_lockstep_batches_equals_one_by_one(tmp_path: Path, reference: str) -> None:
    from xtalgen.relax import register_potential

    register_potential("emt-batched-test", emt_batched)
    one = screen(samples(), tmp_path / "one.db", config(reference, potential="emt-batched-test"))
    many = screen(
        samples(),
        tmp_path / "many.db",
        config(reference, potential="emt-batched-test", batch_size=3),
    )
    assert many.stages == one.stages and many.metrics == one.metrics
    a = CandidateStore(tmp_path / "one.db").table()
    b = CandidateStore(tmp_path / "many.db").table()
    for ra, rb in zip(a, b):
        assert ra["stage"] == rb["stage"] and ra.get("n_steps") == rb.get("n_steps")
        assert ra.get("energy_per_atom", 0) == pytest.approx(rb.get("energy_per_atom", 0), abs=1e-9)
