"""The DNG suite end to end, its outputs, and the ``xtalgen evaluate`` command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.metrics.dng import DNGConfig, evaluate_dng
from xtalgen.metrics.report import write_report


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XTALGEN_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def mp20_small() -> list[Crystal]:
    from xtalgen.data import load_dataset

    return list(load_dataset("mp20", "pilot_test", progress=False))[:14]


def test_dng_suite_on_a_hand_built_sample_set(mp20_small: list[Crystal], nacl: Crystal) -> None:
    test, train = mp20_small[:8], mp20_small[8:]
    clash = Crystal(np.eye(3) * 6.0, [[0, 0, 0], [0.05, 0, 0]], [11, 17])  # 0.3 A apart
    samples = [*test[:3], test[0], train[0], clash, nacl]
    config = DNGConfig(n_subsample=4, seed=1, n_jobs=1, progress=False)
    result = evaluate_dng(samples, test, train=train, config=config, property_fn=num_sites,
                          property_name="num_sites")
    v = result.values()
    assert result["struct_valid"].numerator == 6 and result["struct_valid"].denominator == 7
    assert not result.table.loc[5, "struct_valid"]
    # samples 0-3 are test crystals: each covers itself, so COV-R >= 3/8 and they count for COV-P
    assert v["cov_recall"] >= 3 / 8
    assert result.table.loc[:3, "cov_precision_covered"].all()
    assert result["cov_precision"].denominator == 7
    # the repeated test crystal is not unique; the training crystal is not novel
    assert not result.table.loc[3, "unique"]
    assert result.table.loc[:2, "unique"].all()
    assert result.table.loc[4, "novel"] == 0.0 and result.table.loc[0, "novel"] == 1.0
    assert v["unique"] == pytest.approx(6 / 7)
    assert result["wdist_density"].settings["n_used"] == 4
    assert result.table["in_subsample"].sum() == 4
    assert v["wdist_prop"] is not None and v["wdist_num_elems"] is not None
    assert 0.0 <= v["sg_tvd"] <= 1.0 and v["sg_above_p1"] > 0.5


def num_sites(crystals) -> np.ndarray:
    return np.array([c.num_sites for c in crystals], dtype=float)


def test_skipped_metrics_say_why(mp20_small: list[Crystal]) -> None:
    config = DNGConfig(n_subsample=1000, n_jobs=1, progress=False)
    result = evaluate_dng(mp20_small[:3], mp20_small[3:6], config=config)
    assert result["wdist_prop"].value is None and "no property predictor" in result["wdist_prop"].note
    assert result["novel"].value is None and "no training split" in result["novel"].note
    assert "only 3 valid samples" in result["wdist_density"].note
    with pytest.raises(XtalgenError, match="eval_model"):
        DNGConfig(eval_model="mp21")


def test_reference_fingerprints_are_cached(mp20_small: list[Crystal], tmp_path: Path) -> None:
    from xtalgen.metrics.fingerprints import structure_fingerprints

    first = structure_fingerprints(mp20_small[:3], cache=True, n_jobs=1, progress=False)
    files = list((tmp_path / "cache" / "fingerprints").glob("*.npy"))
    assert len(files) == 1
    np.save(files[0], first + 1.0)  # a changed cache file is what comes back: it was read
    again = structure_fingerprints(mp20_small[:3], cache=True, n_jobs=1, progress=False)
    np.testing.assert_array_equal(again, first + 1.0)


def test_outputs_describe_every_number(mp20_small: list[Crystal], tmp_path: Path) -> None:
    config = DNGConfig(n_subsample=3, n_jobs=1, progress=False)
    result = evaluate_dng(mp20_small[:4], mp20_small[4:8], train=mp20_small[8:], config=config)
    written = write_report(result, tmp_path / "out", table_format="parquet")
    data = json.loads(written["metrics"].read_text())
    assert data["task"] == "dng"
    for name, entry in data["metrics"].items():
        assert entry["description"], name
        assert "settings" in entry
    assert data["metrics"]["valid"]["denominator"] == 4
    assert {"pymatgen-core", "matminer", "smact"} <= set(data["versions"])
    assert data["metrics"]["unique"]["settings"]["preset"] == "ordered"
    import pandas as pd

    assert len(pd.read_parquet(written["table"])) == 4
    report = written["report"].read_text()
    assert "cov_recall" in report and "plots/density.png" in report
    assert (tmp_path / "out" / "plots" / "space_group.png").exists()


def test_cli_evaluate_dng_and_csp(mp20_small: list[Crystal], tmp_path: Path) -> None:
    from xtalgen import io as xio
    from xtalgen.cli.main import main

    xio.write(mp20_small[:5], tmp_path / "reference.extxyz")
    xio.write(mp20_small[:3], tmp_path / "samples.extxyz")
    main(["evaluate", str(tmp_path / "samples.extxyz"), "--reference", str(tmp_path / "reference.extxyz"),
          "--out", str(tmp_path / "dng"), "--jobs", "1", "--n-subsample", "2"])
    metrics = json.loads((tmp_path / "dng" / "metrics.json").read_text())["metrics"]
    assert metrics["cov_recall"]["value"] == pytest.approx(3 / 5)
    assert metrics["novel"]["value"] is None  # no training split for a reference file

    csp = [c.with_properties(target_index=i, sample_index=0) for i, c in enumerate(mp20_small[:5])]
    xio.write(csp, tmp_path / "csp.extxyz")
    main(["evaluate", str(tmp_path / "csp.extxyz"), "--task", "csp", "--gate", "none",
          "--reference", str(tmp_path / "reference.extxyz"), "--out", str(tmp_path / "csp"),
          "--jobs", "1", "--corrected"])
    metrics = json.loads((tmp_path / "csp" / "metrics.json").read_text())["metrics"]
    assert metrics["match_rate@1"]["value"] == 1.0 and metrics["cRMSE@1"]["value"] == pytest.approx(0.0, abs=1e-8)

    bad = subprocess.run([sys.executable, "-m", "xtalgen.cli.main", "evaluate",
                          str(tmp_path / "samples.extxyz"), "--task", "gen"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines()[-1] == "error: --task must be dng or csp, got 'gen'"
