"""xtalgen benchmark: one protocol for every generator, on tiny generators and toy splits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.test_train_loop import TINY, perovskites, quick_config

from xtalgen.benchmark import BenchmarkConfig, available_generators, run_benchmark, runner
from xtalgen.cli.main import main
from xtalgen.models.iterative.generative import ModelConfig
from xtalgen.train import train


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    import torch

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("tiny")
    crystals = perovskites()
    train(ModelConfig(process="flow", task="csp", backbone=TINY), crystals[:10], crystals[10:],
          quick_config(), out, provenance={"dataset": "toy"}, progress=False)
    return out / "final.pt" if (out / "final.pt").exists() else next(out.glob("*.pt"))


@pytest.fixture
def toy_splits(monkeypatch):
    """Test = 6 toy perovskites, train = 6 others: the protocol without the full splits."""
    crystals = perovskites(12)

    def load(dataset, split, preferred, fallback):
        name = preferred if split == "auto" else split
        return (crystals[:6], name) if "test" in name else (crystals[6:], name)

    monkeypatch.setattr(runner, "_load", load)
    return crystals


def test_available_generators_come_from_the_registries() -> None:
    names = [e.name for e in available_generators("csp", "perov5")]
    assert {"random-search", "substitution", "evolution", "perov5-csp-flow"} <= set(names)
    assert "mp20-csp-flow" not in names and "perov5-dng-flow" not in names
    assert names.count("perov5-csp-wyckoff") + names.count("perov5-dng-wyckoff") <= 1
    dng = [e.name for e in available_generators("dng", "perov5")]
    assert "evolution" not in dng and "perov5-dng-flow" in dng


def test_csp_protocol_cost_failures_and_resume(tmp_path: Path, toy_splits, tiny_checkpoint) -> None:
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    config = BenchmarkConfig(task="csp", dataset="perov5", n=4, k=3, seed=1, out=tmp_path / "b",
                             generators=f"substitution,{tiny_checkpoint},{broken},"
                                        f"templated-csp:{tiny_checkpoint}", n_steps=2,
                             chunk=2, progress=False, n_jobs=1)
    result = run_benchmark(config)
    rows = {r["generator"]: r for r in result.rows}
    sub, tiny, bad = rows["substitution"], rows[str(tiny_checkpoint)], rows[str(broken)]
    assert bad["error"] and sub["error"] is None and tiny["error"] is None
    for row in (sub, tiny):
        assert row["n_targets"] == 4 and row["n_samples"] <= 12
        curve = {int(j): v for j, v in row["match_curve"].items()}
        assert list(curve) == [1, 2, 3] and curve[1] <= curve[2] <= curve[3] == row["match@3"]
        assert row["sample_s_per_1000"] > 0 and row["cached_chunks"] == 0
    assert tiny["parameters"] > 0 and tiny["kind"] == "iterative"
    templated = rows[f"templated-csp:{tiny_checkpoint}"]  # toy train split as the template pool
    assert templated["error"] is None and templated["kind"] == "pipeline"
    assert templated["parameters"] == tiny["parameters"] and templated["n_samples"] == 12
    assert sub["parameters"] is None and sub["kind"] == "search"
    table = result.files["markdown"].read_text()
    assert "| substitution | search |" in table and "match@3" in table
    assert result.files["csv"].is_file() and result.files["match_vs_k"].is_file()
    assert result.files["quality_vs_cost"].is_file()
    saved = json.loads((tmp_path / "b" / "benchmark.json").read_text())
    assert saved["harness_overhead_s"] is not None
    # a second run takes every sample from the cache and gives the same numbers
    again = {r["generator"]: r for r in run_benchmark(config).rows}
    assert again["substitution"]["cached_chunks"] == 2
    assert again["substitution"]["match@3"] == sub["match@3"]
    assert again[str(tiny_checkpoint)]["match@1"] == tiny["match@1"]
    # ... and its evaluation too, with the seconds measured when it was made
    assert again["substitution"]["eval_cached"] and "eval_cached" not in sub
    assert again["substitution"]["eval_s"] == sub["eval_s"]
    assert again["substitution"]["match_curve"] == {int(j): v for j, v in sub["match_curve"].items()}
    # other evaluation settings evaluate the cached samples again
    config.corrected = True
    third = {r["generator"]: r for r in run_benchmark(config).rows}
    assert "eval_cached" not in third["substitution"] and "METRe@1" in third["substitution"]


def test_dng_protocol(tmp_path: Path, toy_splits) -> None:
    config = BenchmarkConfig(task="dng", dataset="perov5", n=8, out=tmp_path / "d",
                             generators="random-search", chunk=4, progress=False, n_jobs=1,
                             property="formation_energy")
    (row,) = run_benchmark(config).rows
    assert row["error"] is None, row["error"]
    assert row["n_samples"] == 8 and 0 <= row["valid"] <= 1 and 0 <= row["p1_share"] <= 1
    assert "cov_recall" in row and "sg_tvd" in row and row["wdist_prop"] >= 0
    assert (tmp_path / "d" / "dng_metrics.png").is_file()


def test_cli_errors_and_help(tmp_path: Path, capsys) -> None:
    from xtalgen.errors import XtalgenError

    with pytest.raises(XtalgenError, match="no generator or checkpoint named 'nope'"):
        run_benchmark(BenchmarkConfig(generators="nope", out=tmp_path))
    with pytest.raises(XtalgenError, match="no pipeline named 'relaxed'"):
        run_benchmark(BenchmarkConfig(generators="relaxed:perov5-csp-flow", out=tmp_path))
    with pytest.raises(SystemExit):
        main(["benchmark", "--task", "xyz", "--out", str(tmp_path)])
    assert "task must be csp or dng" in capsys.readouterr().err


def test_time_limit_makes_a_row_and_keeps_the_chunks(tmp_path: Path, toy_splits) -> None:
    config = BenchmarkConfig(task="csp", dataset="perov5", n=6, k=2, out=tmp_path / "t",
                             generators="substitution", chunk=2, time_limit_s=0.0,
                             progress=False, n_jobs=1)
    (row,) = run_benchmark(config).rows
    assert "time limit" in row["error"] and "2 of 3 chunks left" in row["error"]
    config.time_limit_s = None
    (row,) = run_benchmark(config).rows
    assert row["error"] is None and row["cached_chunks"] == 1


def test_search_methods_get_the_target_cell(toy_splits) -> None:
    """CSP gives the atom count: a search method is held to the target's formula units."""
    from xtalgen.benchmark.generators import formula_units, sample_csp
    from xtalgen.crystal import Crystal
    from xtalgen.search.random_search import RandomSymmetricSearch

    cubic = [[3.0, 0, 0], [0, 3.0, 0], [0, 0, 3.0]]
    carbon8 = Crystal(lattice=cubic, frac_coords=[[i / 8, 0, 0] for i in range(8)], species=[6] * 8,
                      properties={"material_id": "c8"})
    assert formula_units(carbon8) == 8 and formula_units(toy_splits[0]) == 1
    gen = RandomSymmetricSearch(max_atoms=24, relax=False, energies=False, progress=False)
    out = sample_csp(gen, [carbon8, toy_splits[0]], 2, 0)
    sites = {c.properties["material_id"]: c.num_sites for c in out}
    assert sites["c8"] == 8 and sites[toy_splits[0].properties["material_id"]] == 5
    assert gen.config.formula_units is None  # restored
