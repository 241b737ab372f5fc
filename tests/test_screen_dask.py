"""Scale-out: the pipeline on a 2-worker dask LocalCluster gives the local run's results."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from test_screen_resume import distinct_samples, emt_elements_reference
from xtalgen.screen import CandidateStore, ScreenConfig, screen

KEYS = ("stage", "energy_per_atom", "e_above_hull", "n_steps", "unique", "sun_mattergen", "rank")


@pytest.mark.slow
def test_dask_local_cluster_matches_local_run(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    reference = emt_elements_reference(tmp_path / "ref")
    crystals = distinct_samples(seed=1)
    cfg = ScreenConfig(
        potential="emt",
        n_workers=1,
        progress=False,
        novelty_reference=None,
        hull_reference=reference,
    )
    local = screen(crystals, tmp_path / "local.db", cfg)

    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        # the same path as `xtalgen screen --scheduler ADDRESS`
        remote_cfg = replace(cfg, n_workers=None, scheduler=cluster.scheduler_address)
        remote = screen(crystals, tmp_path / "dask.db", remote_cfg)
        n_workers = len(cluster.workers)
    assert n_workers == 2
    assert remote.n_computed_this_run == local.n_computed_this_run == 10
    a = {r["cid"]: r for r in CandidateStore(tmp_path / "local.db").table()}
    b = {r["cid"]: r for r in CandidateStore(tmp_path / "dask.db").table()}
    assert a.keys() == b.keys()
    for cid in a:
        for key in KEYS:
            va, vb = a[cid].get(key), b[cid].get(key)
            assert va == pytest.approx(vb, abs=1e-9), (cid, key, va, vb)
    assert remote.metrics == local.metrics
