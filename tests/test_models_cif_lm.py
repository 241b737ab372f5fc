"""The CIF language model through the one training loop: a tiny model memorises two crystals'
texts, then writes them back from their prompts (CSP, space group, DNG); texts that do not
parse are counted by reason, never dropped silently; CrystaLLM's checks score the texts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from xtalgen.data import load_dataset
from xtalgen.errors import XtalgenError
from xtalgen.matching import get_matcher
from xtalgen.metrics.cif_validity import check_cif_text, cif_validity
from xtalgen.models import load_model
from xtalgen.models.autoregressive.cif_lm import CifLMConfig, CifLMGenerator
from xtalgen.models.checkpoint import read_checkpoint
from xtalgen.nn.transformer import TransformerConfig
from xtalgen.representations import cif_text as T
from xtalgen.train import TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def pair():
    data = load_dataset("perov5", "val", progress=False)
    first = data[0]
    second = next(c for c in data if c.formula != first.formula
                  and T.crystal_to_cif_text(c).splitlines()[1] != T.crystal_to_cif_text(first).splitlines()[1])
    return [first, second]


@pytest.fixture(scope="module")
def run(tmp_path_factory, pair) -> Path:
    out = tmp_path_factory.mktemp("ciflm")
    config = TrainConfig(max_steps=150, batch_size=8, lr=1e-2, warmup_steps=10, val_every=1000,
                         log_every=50, checkpoint_every_s=1e9, seed=0, ema_decay=0.9)
    model = CifLMConfig(transformer=TransformerConfig(d_model=64, num_layers=2, num_heads=2,
                                                      dropout=0.0))
    train(model, pair * 8, None, config, out, provenance={"dataset": "perov5"}, progress=False)
    return out / "last.pt"


def test_checkpoint_records_family_and_prior(run: Path) -> None:
    payload = read_checkpoint(run)
    assert payload["family"] == "cif-lm"
    config = CifLMConfig.from_dict(payload["model_config"])
    assert config.max_atoms == 5 and config.z_counts and config.transformer.max_len > 200
    assert isinstance(load_model(run), CifLMGenerator)


def test_memorised_texts_come_back_from_their_prompts(run: Path, pair) -> None:
    generator = load_model(run, temperature=0.0)
    matcher = get_matcher("csp")
    samples = generator.sample_csp(pair, k=1, seed=0)
    assert [s.properties["material_id"] for s in samples] == [c.properties["material_id"] for c in pair]
    for sample, target in zip(samples, pair):
        assert sample.properties["cif_text"] == T.crystal_to_cif_text(target)
        assert matcher.fit(sample.to_pymatgen(), target.to_pymatgen())
    with_sg = generator.sample_csp(pair[1:], k=2, spacegroup=True, seed=1)
    assert len(with_sg) == 2 and "_symmetry_space_group_name_H-M" in with_sg[0].properties["prompt"]
    dng = generator.generate(4, seed=0)
    assert generator.last_report["requested"] == 4
    assert len(dng) + generator.last_report["given_up"] == 4
    assert all(d.properties["prompt"] == "data_" for d in dng)


def test_user_composition_draws_z_from_the_prior(run: Path, pair) -> None:
    generator = load_model(run)
    formula = pair[0].composition.reduced_formula
    out = generator.generate(3, composition=formula, seed=0)
    report = generator.last_report
    assert len(out) + report["given_up"] == 3
    assert sum(report["failed_attempts"].values()) == len(report["failed_texts"])
    for sample in out:
        assert sample.properties["z"] >= 1 and sample.properties["prompt"].startswith("data_")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"spacegroup": 225}, "give --composition"),
    ({"composition": "NaCl", "spacegroup": 231}, "1-230"),
    ({"composition": "Na0.5Cl"}, "whole numbers"),
    ({"condition": {"band_gap": 1.0}}, "property conditions"),
])
def test_bad_conditions_are_one_clear_error(run: Path, kwargs, message: str) -> None:
    with pytest.raises(XtalgenError, match=message):
        load_model(run).generate(2, **kwargs)


def test_unparseable_texts_are_counted_with_their_reason(run: Path) -> None:
    generator = load_model(run, temperature=3.0, top_k=None, max_rounds=1)
    generator.model.config.transformer.max_len = 60  # too short to end: every text fails
    out = generator.generate(3, seed=0)
    assert out == [] and generator.last_report["given_up"] == 3
    failed = generator.last_report["failed_attempts"]
    # most texts run out of context; at temperature 3 one may first write a line that is not CIF
    assert sum(failed.values()) == 3 and failed.get("no end within the context", 0) >= 1
    assert set(failed) <= {"no end within the context", "unknown line"}
    assert len(generator.last_report["failed_texts"]) == 3


def test_crystallm_checks(pair) -> None:
    good = T.crystal_to_cif_text(pair[0])
    checks = check_cif_text(good)
    assert checks.parseable and checks.formula and checks.multiplicity and checks.spacegroup
    assert checks.sensible
    bad_formula = good.replace("_chemical_formula_structural ", "_chemical_formula_structural Xe", 1)
    assert not check_cif_text(bad_formula).formula
    lines = good.splitlines()
    site = lines[-1].split()
    site[2] = str(int(site[2]) + 1)  # a multiplicity that no longer adds up
    assert not check_cif_text("\n".join([*lines[:-1], " ".join(site)]) + "\n").multiplicity
    squeezed = good.replace("_cell_angle_alpha 90.0000", "_cell_angle_alpha 5.0000")
    assert not check_cif_text(squeezed).sensible
    summary = cif_validity([good, "data_garbage"], n_jobs=1, progress=False)
    assert summary["rates"]["parseable"] == 0.5 and summary["checks"][1]["reason"].startswith("not parseable")


def _run_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xtalgen.cli.main", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_cli_samples_and_writes_texts(run: Path, tmp_path: Path, pair) -> None:
    ok = _run_cli("sample", run, "--n", "2", "--composition", pair[0].formula,
                  "--temperature", "0", "--out", tmp_path / "s")
    assert ok.returncode == 0, ok.stderr
    assert list((tmp_path / "s" / "text").glob("*.cif"))
    bad = _run_cli("sample", run, "--n", "2", "--spacegroup", "225", "--out", tmp_path / "t")
    assert bad.returncode == 1
    assert [line for line in bad.stderr.splitlines() if line.startswith("error:")] == [
        "error: cif-lm: a space group is prompted after the formula; give --composition with "
        "--spacegroup"]
