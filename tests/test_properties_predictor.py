"""Trained property predictors: the training loop on tiny models, predict/save/load, the PU risk,
``xtalgen predict``, ``xtalgen train --model predictor``, ``evaluate --property`` with a
predictor, and synthesisability-aware ranking in ``screen`` (EMT, a stand-in scorer)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from xtalgen.crystal import Crystal
from xtalgen.data import load_dataset
from xtalgen.errors import XtalgenError
from xtalgen.models.checkpoint import read_checkpoint
from xtalgen.nn.backbone import BackboneConfig
from xtalgen.properties.predictor import PredictorConfig, nnpu_risk
from xtalgen.properties.trained import load_predictor, predictor_metrics, record_metrics, roc_auc
from xtalgen.train import TrainConfig, train

TINY = dict(hidden_dim=32, num_layers=2, n_freqs=4, time_dim=8)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def crystals() -> list[Crystal]:
    return list(load_dataset("mp20", "offline_val", progress=False))[:60]


def _tiny(prop: str, **kw) -> PredictorConfig:
    return PredictorConfig.for_property(prop, backbone=BackboneConfig(**TINY), head_dim=32, **kw)


def _train_config(steps: int, **kw) -> TrainConfig:
    base = dict(max_steps=steps, batch_size=16, lr=3e-3, warmup_steps=5, val_every=20,
                log_every=10, checkpoint_every_s=1e9, seed=0)
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def eform_run(tmp_path_factory, crystals) -> Path:
    out = tmp_path_factory.mktemp("eform")
    path = train(_tiny("formation_energy"), crystals[:50], crystals[50:], _train_config(60), out,
                 provenance={"dataset": "mp20", "split": "offline_val[:50]"}, progress=False)
    record_metrics(path, crystals[50:], split="offline_val[50:60]")
    return path


def _labelled_toy(crystals: list[Crystal]) -> list[Crystal]:
    """PU toy: crystals with oxygen are the positives, labelled (theoretical False) for 2 of
    3 and unlabelled for the rest; crystals without oxygen are unlabelled negatives."""
    out = []
    for i, c in enumerate(crystals):
        has_o = 8 in set(int(z) for z in c.species)
        out.append(c.with_properties(theoretical=not (has_o and i % 3), has_o=has_o))
    return out


@pytest.fixture(scope="module")
def pu_run(tmp_path_factory, crystals) -> Path:
    out = tmp_path_factory.mktemp("pu")
    toy = _labelled_toy(crystals)
    config = _tiny("synthesizability", class_prior=0.4)
    return train(config, toy, None, _train_config(80, lr=5e-3), out, progress=False)


def test_regression_predictor_trains_through_the_one_loop(eform_run: Path, crystals) -> None:
    losses = [json.loads(line)["loss"] for line in (eform_run.parent / "log.jsonl").open()
              if "loss" in line and "val_loss" not in line]
    assert len(losses) == 6 and np.mean(losses[-2:]) < 0.7 * np.mean(losses[:2])
    payload = read_checkpoint(eform_run)
    assert payload["family"] == "predictor"
    config = PredictorConfig.from_dict(payload["model_config"])
    values = [c.properties["formation_energy_per_atom"] for c in crystals[:50]]
    assert config.mean == pytest.approx(np.mean(values)) and config.std == pytest.approx(np.std(values))
    metrics = payload["provenance"]["metrics"]
    assert metrics["n"] == 10 and metrics["units"] == "eV/atom" and metrics["mae"] > 0
    assert metrics["split"] == "offline_val[50:60]" and metrics["step"] == 60


def test_predict_shape_units_nan_and_reload(eform_run: Path, crystals, tmp_path: Path) -> None:
    predictor = load_predictor(eform_run)
    disordered = Crystal(lattice=np.eye(3) * 3.6, frac_coords=[[0, 0, 0]], species=[29],
                         site_occupancies=(((29, 0.5), (79, 0.5)),))
    values = predictor([*crystals[:5], disordered])
    assert values.shape == (6,) and np.isfinite(values[:5]).all() and math.isnan(values[5])
    assert predictor.units == "eV/atom" and predictor.prop == "formation_energy"
    assert np.all((values[:5] > -6) & (values[:5] < 2))  # eV/atom, not standardised units
    # batching does not change the numbers; a slim copy (no optimiser) predicts the same
    np.testing.assert_allclose(load_predictor(eform_run, batch_size=2)(crystals[:5]),
                               values[:5], rtol=1e-5, atol=1e-5)
    from xtalgen.models.learned import slim_checkpoint

    slim = slim_checkpoint(eform_run, tmp_path / "slim.pt")
    assert "optimizer" not in read_checkpoint(slim)
    np.testing.assert_allclose(load_predictor(slim)(crystals[:5]), values[:5], rtol=1e-6)
    info = predictor.info
    assert info["predictor"] == str(eform_run) and info["validation"]["mae"] > 0
    # metrics of the in-memory model agree with the recorded ones
    assert predictor_metrics(predictor, crystals[50:])["mae"] == pytest.approx(
        info["validation"]["mae"])


def test_band_gap_is_non_negative(crystals, tmp_path: Path) -> None:
    path = train(_tiny("band_gap"), crystals[:40], None, _train_config(5), tmp_path,
                 progress=False)
    predictor = load_predictor(path)
    assert predictor.units == "eV" and predictor.config.nonnegative
    assert (predictor(crystals[:10]) >= 0).all()


def test_nnpu_risk_and_auc() -> None:
    y = torch.tensor([1.0, 1.0, 0.0, 0.0])
    # a classifier that calls everything negative: positive risk is pi * log(1 + e^20)
    out = nnpu_risk(torch.tensor([-20.0, -20.0, -20.0, -20.0]), y, 0.3)
    assert float(out["loss"]) == pytest.approx(0.3 * 20.0, abs=1e-4)
    # everything positive: the estimate of the negative risk, 20 - 0.3 * 20, stays
    out = nnpu_risk(torch.tensor([20.0, 20.0, 20.0, 20.0]), y, 0.3)
    assert float(out["loss"]) == pytest.approx(0.7 * 20.0, abs=1e-4)
    # positives high, unlabelled partly low: the clamp keeps the value at the positive risk,
    # and the step (descent on minus the negative term) raises the unlabelled logits
    logits = torch.tensor([20.0, 20.0, -20.0, 20.0], requires_grad=True)
    out = nnpu_risk(logits, y, 0.9)
    assert float(out["risk_negative"]) < 0 and float(out["loss"]) == pytest.approx(0.0, abs=1e-6)
    out["loss"].backward()
    assert logits.grad[3] < 0 and logits.grad[0] > 0
    assert roc_auc(np.array([0.9, 0.8, 0.1, 0.2]), np.array([1, 1, 0, 0])) == 1.0
    assert roc_auc(np.array([0.5, 0.5]), np.array([1, 0])) == 0.5
    assert math.isnan(roc_auc(np.array([0.5]), np.array([1])))


def test_pu_learning_scores_positives_above_the_unlabelled_negatives(pu_run: Path,
                                                                     crystals) -> None:
    predictor = load_predictor(pu_run)
    assert predictor.config.task == "pu-classification" and predictor.units == "score in [0, 1]"
    toy = _labelled_toy(crystals)
    scores = predictor(toy)
    assert ((scores >= 0) & (scores <= 1)).all()
    has_o = np.array([c.properties["has_o"] for c in toy])
    assert 0 < has_o.mean() < 1
    # the true classes (oxygen or not) are separated, the hidden positives included
    assert roc_auc(scores, has_o) > 0.85
    metrics = predictor_metrics(predictor, toy)
    assert metrics["roc_auc_pu"] > 0.7 and metrics["n_positive"] > 0


def test_pu_needs_both_classes(crystals) -> None:
    known = [c.with_properties(theoretical=False) for c in crystals[:5]]
    with pytest.raises(XtalgenError, match="unlabelled"):
        _tiny("synthesizability").fit_statistics(known)


def test_load_predictor_errors(eform_run: Path, tmp_path: Path, monkeypatch) -> None:
    import xtalgen.checkpoints

    with monkeypatch.context() as patch:  # as if nothing were shipped
        patch.setattr(xtalgen.checkpoints, "PREDICTOR_DIR", tmp_path)
        with pytest.raises(XtalgenError, match="xtalgen train --model predictor --property band_gap"):
            load_predictor("band_gap")
    with pytest.raises(XtalgenError, match="unknown property"):
        load_predictor("bulk_modulus")
    with pytest.raises(XtalgenError, match="does not exist"):
        load_predictor(tmp_path / "missing.pt")
    from xtalgen.checkpoints import shipped_checkpoint

    with pytest.raises(XtalgenError, match="not a property predictor"):
        load_predictor(shipped_checkpoint("perov5-csp-flow"))
    from xtalgen.models import load_model

    with pytest.raises(XtalgenError, match="holds a property predictor, not a generator"):
        load_model(eform_run)


def test_cli_predict_table_csv_and_errors(eform_run: Path, crystals, tmp_path: Path,
                                          capsys) -> None:
    from xtalgen import io as xio
    from xtalgen.cli.main import main

    folder = tmp_path / "cifs"
    folder.mkdir()
    for i, c in enumerate(crystals[:3]):
        xio.write(c, folder / f"s{i}.cif")
    out = tmp_path / "table.csv"
    main(["predict", str(folder), "--property", "formation_energy", "--checkpoint",
          str(eform_run), "--out", str(out)])
    printed = capsys.readouterr().out
    assert "formation_energy (eV/atom)" in printed and "s0.cif" in printed
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 3 and all(float(r["formation_energy (eV/atom)"]) < 2 for r in rows)
    expected = load_predictor(eform_run)(xio.read_many(folder).crystals)
    np.testing.assert_allclose([float(r["formation_energy (eV/atom)"]) for r in rows],
                               expected, rtol=1e-4)

    def error(args: list[str]) -> str:
        with pytest.raises(SystemExit) as exc:
            main(args)
        assert exc.value.code == 1
        lines = capsys.readouterr().err.strip().splitlines()
        assert lines[-1].startswith("error: ")
        return lines[-1]

    assert "no such file" in error(["predict", str(tmp_path / "nope"), "--checkpoint",
                                     str(eform_run)])
    assert "unknown property" in error(["predict", str(folder), "--property", "hardness"])
    assert "does not exist" in error(["predict", str(folder), "--checkpoint",
                                      str(tmp_path / "none.pt")])
    assert "not band_gap" in error(["predict", str(folder), "--property", "band_gap",
                                    "--checkpoint", str(eform_run)])


def test_cli_train_predictor_with_holdout(tmp_path: Path, capsys) -> None:
    from xtalgen.cli.main import main

    main(["train", "--model", "predictor", "--property", "band_gap", "--dataset", "mp20",
          "--split", "offline_val", "--holdout", "0.2", "--max-atoms", "6", "--max-steps", "4",
          "--batch-size", "8", "--hidden-dim", "32", "--num-layers", "1", "--val-every", "2",
          "--out", str(tmp_path / "run")])
    assert "validation: n" in capsys.readouterr().out
    payload = read_checkpoint(tmp_path / "run" / "last.pt")
    assert payload["provenance"]["metrics"]["mae"] >= 0 and payload["provenance"]["holdout"] == 0.2
    assert payload["provenance"]["val_split"].startswith("0.2 of offline_val")
    with pytest.raises(SystemExit):
        main(["train", "--model", "predictor", "--dataset", "mp20", "--out", str(tmp_path / "x")])
    assert "needs --property" in capsys.readouterr().err


def test_unlabelled_crystals_join_as_theoretical(crystals) -> None:
    from xtalgen.properties.pu import predictor_crystals

    known = [c.with_properties(theoretical=False) for c in crystals[:10]]
    train_set, val_set = predictor_crystals(known, None, unlabelled="mp20:offline_val",
                                            holdout=0.25, max_atoms=20, seed=0)
    everything = train_set + val_set
    flags = [c.properties["theoretical"] for c in everything]
    assert sum(not f for f in flags) == 10  # the known ones stay; their ids are not repeated
    assert len(everything) == len([c for c in load_dataset("mp20", "offline_val", progress=False)
                                   if c.num_sites <= 20])
    assert len(val_set) == round(0.25 * len(everything))


def test_pu_bagging_ranks_a_separable_positive_class_first() -> None:
    from xtalgen.properties.pu import pu_bagging_scores

    rng = np.random.default_rng(0)
    x_pos = rng.normal(2.0, 1.0, (40, 3))
    x_unl = np.concatenate([rng.normal(2.0, 1.0, (20, 3)), rng.normal(-2.0, 1.0, (60, 3))])
    x = np.concatenate([x_pos, x_unl])
    positive = np.arange(len(x)) < 40
    scores = pu_bagging_scores(x, positive, x_unl, n_bags=10, seed=0)
    hidden_positive = np.arange(len(x_unl)) < 20  # the unlabelled positives score high
    assert roc_auc(scores, hidden_positive) > 0.95
    with pytest.raises(XtalgenError, match="labelled positives"):
        pu_bagging_scores(x, np.ones(len(x), bool), x_unl)


def test_evaluate_property_names_the_predictor(eform_run: Path, crystals, tmp_path: Path) -> None:
    from xtalgen import io as xio
    from xtalgen.cli.main import main
    from xtalgen.properties import resolve_property_fn

    name, fn = resolve_property_fn(str(eform_run))
    assert name == f"formation_energy ({eform_run})" and fn.info["validation"]["mae"] > 0
    xio.write(crystals[:5], tmp_path / "reference.extxyz")
    xio.write(crystals[5:8], tmp_path / "samples.extxyz")
    main(["evaluate", str(tmp_path / "samples.extxyz"), "--reference",
          str(tmp_path / "reference.extxyz"), "--out", str(tmp_path / "dng"), "--jobs", "1",
          "--n-subsample", "3", "--property", str(eform_run)])
    metric = json.loads((tmp_path / "dng" / "metrics.json").read_text())["metrics"]["wdist_prop"]
    assert metric["value"] is not None and metric["value"] >= 0
    assert metric["settings"]["property"] == name
    predictor = metric["settings"]["predictor"]
    assert predictor["predictor"] == str(eform_run) and predictor["units"] == "eV/atom"
    assert predictor["validation"]["mae"] == pytest.approx(fn.info["validation"]["mae"])


# -- screening: synthesisability score and multi-key ranking ----------------------------------


def test_rank_order_rule() -> None:
    from xtalgen.screen.rank import parse_rank_by, rank_order

    rows = [
        {"e_above_hull": 0.004, "synthesizability": 0.2},   # 0: hull step 0, low score
        {"e_above_hull": -0.003, "synthesizability": 0.9},  # 1: hull step 0, high score
        {"e_above_hull": 0.05, "synthesizability": 0.99},   # 2: step 2
        {"e_above_hull": 0.001, "synthesizability": None},  # 3: step 0, no score: last of it
        {"e_above_hull": 0.03, "synthesizability": 0.5},    # 4: step 1
    ]
    assert rank_order(rows, ["e_above_hull"]) == [1, 3, 0, 4, 2]
    assert rank_order(rows, "e_above_hull,synthesizability") == [1, 0, 3, 4, 2]
    assert rank_order(rows, "e_above_hull:0,synthesizability") == [1, 3, 0, 4, 2]  # exact E_hull
    assert rank_order(rows, "synthesizability,e_above_hull") == [2, 1, 4, 0, 3]
    assert parse_rank_by("e_above_hull:0.1") == [("e_above_hull", False, 0.1)]
    for bad in ("band_gap", "e_above_hull:x", ""):
        with pytest.raises(XtalgenError):
            parse_rank_by(bad)


@pytest.fixture(scope="module")
def emt_reference_dir(tmp_path_factory) -> str:
    from test_screen import emt_reference

    return emt_reference(tmp_path_factory.mktemp("emt_ref"))


def _formula_scores(crystals):
    """A stand-in synthesisability predictor: Au 0.9, Cu3Au 0.5, Cu 0.1."""
    table = {"Au": 0.9, "Cu": 0.1}
    return np.array([table.get(c.composition.reduced_formula, 0.5) for c in crystals])


_formula_scores.name = "formula-table"  # type: ignore[attr-defined]


def test_screen_ranks_by_e_hull_then_synthesizability(tmp_path: Path,
                                                      emt_reference_dir: str) -> None:
    from test_screen import config, samples
    from xtalgen.screen import CandidateStore, screen

    db = tmp_path / "c.db"
    first = screen(samples()[:6], db, config(emt_reference_dir))
    rows = {r["index"]: r for r in CandidateStore(db).table()}
    assert "synthesizability" not in rows[0]
    by_e = sorted((r["rank"], i) for i, r in rows.items() if "rank" in r)
    assert [i for _, i in by_e][-1] == 4  # simple-cubic Cu, above the hull, is last
    # the same store ranked again with the score: nothing is relaxed again
    again = screen(samples()[:6], db, config(emt_reference_dir, synthesizability=_formula_scores,
                                             rank_by=("e_above_hull", "synthesizability")))
    assert again.n_computed_this_run == 0 and again.metrics == first.metrics
    rows = {r["index"]: r for r in CandidateStore(db).table()}
    assert rows[3]["synthesizability"] == pytest.approx(0.9)
    # Au, Cu3Au, Cu share the hull step and go by score; simple-cubic Cu stays last
    assert [rows[i]["rank"] for i in (3, 5, 0, 4)] == [1, 2, 3, 4]
    assert "rank" not in rows[1] and "synthesizability" not in rows[1]  # a duplicate
    assert CandidateStore(db).metadata["ranking"]["synthesizability"] == "formula-table"
    with pytest.raises(XtalgenError, match="needs a synthesizability predictor"):
        screen(samples()[:6], db, config(emt_reference_dir, rank_by=("synthesizability",)))


def test_cli_screen_with_a_predictor_checkpoint(tmp_path: Path, emt_reference_dir: str,
                                                pu_run: Path, capsys) -> None:
    from test_screen import samples
    from xtalgen import io as xio
    from xtalgen.cli.main import main

    xio.write(samples()[3:5], tmp_path / "s.extxyz")
    args = ["screen", str(tmp_path / "s.extxyz"), "--db", str(tmp_path / "c.db"), "--potential",
            "emt", "--workers", "1", "--novelty-reference", "none", "--hull-reference",
            emt_reference_dir, "--no-progress", "--no-plots"]
    main([*args, "--synthesizability", str(pu_run), "--rank-by",
          "synthesizability,e_above_hull"])
    assert "synthesizability" in capsys.readouterr().out
    from xtalgen.screen import CandidateStore

    table = CandidateStore(tmp_path / "c.db").table()
    scores = [r["synthesizability"] for r in table]
    assert all(0 <= s <= 1 for s in scores)
    assert [r["rank"] for r in sorted(table, key=lambda r: -r["synthesizability"])] == [1, 2]
    with pytest.raises(SystemExit):
        main([*args, "--rank-by", "band_gap"])
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: cannot rank by")


@pytest.mark.parametrize("prop", ["formation_energy", "band_gap", "synthesizability"])
def test_shipped_predictors_load_and_score(prop: str, crystals) -> None:
    predictor = load_predictor(prop)  # the shipped file of each property
    values = predictor(crystals[:8])
    assert predictor.metrics and np.isfinite(values).all()
    if prop == "synthesizability":
        assert ((values >= 0) & (values <= 1)).all() and predictor.metrics["roc_auc_pu"] > 0.7
    elif prop == "formation_energy":  # MP-20 crystals: within 0.3 eV/atom of their labels
        labels = np.array([c.properties["formation_energy_per_atom"] for c in crystals[:8]])
        assert np.abs(values - labels).mean() < 0.3
