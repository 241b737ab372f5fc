"""Resumability: kill `xtalgen screen` midway, run it again, nothing is lost or recomputed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import ase.db
import numpy as np
from ase.calculators.emt import EMT
from pymatgen.core import Lattice, Structure
from pymatgen.entries.computed_entries import ComputedEntry

from xtalgen.crystal import Crystal
from xtalgen.io import read, write
from xtalgen.relax import Potential, relax
from xtalgen.relax.reference import HullReference
from xtalgen.screen import CandidateStore, ScreenConfig, screen

FCC = [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]
FCC_A = {"Al": 4.05, "Cu": 3.61, "Ag": 4.09, "Au": 4.08, "Ni": 3.52, "Pd": 3.89, "Pt": 3.92}
DELAY_S = 0.02


class SlowEMT(EMT):
    """EMT that takes ``DELAY_S`` per evaluation, so a run lasts long enough to be killed."""

    def calculate(self, *args, **kwargs):
        time.sleep(DELAY_S)
        super().calculate(*args, **kwargs)


def slow_emt() -> Potential:
    """Potential factory, imported by path (test_screen_resume:slow_emt) in the subprocess."""
    return Potential("slow-emt", SlowEMT(), correction="none")


def distinct_samples(seed: int = 0) -> list[Crystal]:
    """10 structures no two of which match: 7 fcc elements, sc Cu, sc Au, bcc Ni (rattled)."""
    rng = np.random.default_rng(seed)
    structures = [Structure(Lattice.cubic(1.03 * a), [el] * 4, FCC) for el, a in FCC_A.items()]
    structures += [
        Structure(Lattice.cubic(2.4), ["Cu"], [[0, 0, 0]]),
        Structure(Lattice.cubic(2.7), ["Au"], [[0, 0, 0]]),
        Structure(Lattice.cubic(2.8), ["Ni", "Ni"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    ]
    out = []
    for i, s in enumerate(structures):
        cart = s.cart_coords + rng.normal(0, 0.05, (len(s), 3))
        s = Structure(s.lattice, s.species, cart, coords_are_cartesian=True)
        out.append(Crystal.from_pymatgen(s, properties={"generator": "test", "seed": i}))
    return out


def emt_elements_reference(folder: Path) -> str:
    """EMT energies of the relaxed fcc elements as a hull reference (elements only)."""
    emt = Potential("emt", EMT(), correction="none")
    phases = [
        Crystal.from_pymatgen(Structure(Lattice.cubic(a), [el] * 4, FCC)) for el, a in FCC_A.items()
    ]
    results = relax(phases, potential=emt, fmax=0.01, progress=False)
    entries = [ComputedEntry(r.crystal.composition, r.energy) for r in results]
    HullReference.from_entries(entries, name="emt-elements", correction="none").save(folder)
    return str(folder)


def finished(db: Path) -> dict[str, dict]:
    if not db.exists():
        return {}
    try:
        with ase.db.connect(db) as con:
            rows = list(con.select())
    except Exception:  # the database is being created
        return {}
    return {r.cid: dict(r.key_value_pairs) for r in rows if r.get("stage") in ("relaxed", "failed")}


def test_killed_run_resumes_without_loss_or_recomputation(tmp_path: Path) -> None:
    samples = tmp_path / "samples.extxyz"
    write(distinct_samples(), samples)
    reference = emt_elements_reference(tmp_path / "ref")
    db = tmp_path / "candidates.db"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    cmd = [
        sys.executable,
        "-m",
        "xtalgen.cli.main",
        "screen",
        str(samples),
        "--db",
        str(db),
        "--potential",
        "test_screen_resume:slow_emt",
        "--workers",
        "1",
        "--novelty-reference",
        "none",
        "--hull-reference",
        reference,
        "--no-plots",
        "--no-progress",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while len(finished(db)) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = finished(db)
    assert 3 <= len(before) < 10, proc.stdout.read().decode()[-2000:]

    summary = screen(
        read(samples),
        db,
        ScreenConfig(
            potential="test_screen_resume:slow_emt",
            n_workers=1,
            progress=False,
            novelty_reference=None,
            hull_reference=reference,
        ),
    )
    after = finished(db)
    assert len(after) == 10 and summary.n_submitted == 10
    assert summary.n_computed_this_run == 10 - len(before)  # nothing finished is recomputed
    for cid, row in before.items():  # nothing finished is lost or changed
        assert after[cid]["run"] == 1
        assert after[cid]["energy_per_atom"] == row["energy_per_atom"]
    assert {r["run"] for cid, r in after.items() if cid not in before} == {2}
    store = CandidateStore(db)
    assert store.metadata["runs"] == 2 and "mattergen" in store.metadata["summary"]
    assert all("unique" in r for r in store.table())


def emt() -> Potential:
    """A fast EMT potential, imported by path (test_screen_resume:emt)."""
    return Potential("emt", EMT(), correction="none")


def _three_emt_samples(tmp_path: Path) -> tuple[list[Crystal], Path, ScreenConfig]:
    """Three distinct samples, a store path and a fast EMT screening config."""
    config = ScreenConfig(potential="test_screen_resume:emt", n_workers=1, progress=False,
                          novelty_reference=None,
                          hull_reference=emt_elements_reference(tmp_path / "ref"))
    return distinct_samples()[:3], tmp_path / "candidates.db", config


def test_stale_pending_row_does_not_block_the_sun_summary(tmp_path: Path) -> None:
    # An interrupted run can leave a pending row whose id the next submission does not
    # produce (a structure hash that changed in a file round trip); S.U.N. must not wait on it.
    samples, db, config = _three_emt_samples(tmp_path)
    # (a structure that index 1 does not hold now: one that it does is adopted, see below)
    CandidateStore(db).add("000001-stale00000", samples[0], 1, stage="pending")
    summary = screen(samples, db, config)
    assert summary.metrics["mattergen"]["n_submitted"] == 3  # the stale row is left out
    assert CandidateStore(db).stages()["000001-stale00000"] == "pending"


def test_a_coordinate_across_the_hash_rounding_keeps_its_stored_row(tmp_path: Path) -> None:
    # A file round trip can move a coordinate across the 6-decimal rounding of the candidate
    # id; the same crystal at the same index must reuse its stored row, not be screened again.
    samples, db, config = _three_emt_samples(tmp_path)
    coords = np.array(samples[1].frac_coords, dtype=float)
    coords[0, 0] = 0.12345649999
    before = [samples[0], Crystal(samples[1].lattice, coords, samples[1].species), samples[2]]
    coords = coords.copy()
    coords[0, 0] = 0.12345650001
    after = [samples[0], Crystal(samples[1].lattice, coords, samples[1].species), samples[2]]
    from xtalgen.screen.pipeline import candidate_id

    assert candidate_id(1, before[1]) != candidate_id(1, after[1])
    first = screen(before, db, config)
    again = screen(after, db, config)
    assert again.n_computed_this_run == 0 and len(CandidateStore(db)) == 3
    assert again.metrics == first.metrics
