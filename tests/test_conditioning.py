"""Conditioning: the condition vocabulary, classifier-free guidance of tiny flow and diffusion
models (chemical system, space group, band gap, formation energy), the rejection filter for any
generator, and the one-line errors of bad conditions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from xtalgen.conditions import (
    Conditions,
    check_spacegroup,
    parse_chemical_system,
    parse_condition_args,
)
from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.models import load_model
from xtalgen.models.base import Generator
from xtalgen.models.checkpoint import read_checkpoint
from xtalgen.models.iterative.diffusion import DiffusionConfig
from xtalgen.models.iterative.flow import FlowConfig
from xtalgen.models.iterative.generative import CrystalGenerativeModel, ModelConfig
from xtalgen.models.iterative.generator import IterativeGenerator
from xtalgen.nn.backbone import BackboneConfig
from xtalgen.pipelines.conditioned import RejectionGenerator, satisfies
from xtalgen.train import TrainConfig, train

TINY = BackboneConfig(hidden_dim=16, num_layers=1, n_freqs=2, time_dim=8)
ALL = ["chemical_system", "spacegroup", "band_gap", "formation_energy"]


pytestmark = pytest.mark.usefixtures("one_thread")


def toy_crystals(n: int = 12) -> list[Crystal]:
    """Cubic perovskites (Pm-3m, 221) and rock salts (Fm-3m, 225) with band gaps and formation
    energies; one crystal lacks both properties (it trains their null embeddings)."""
    rng = np.random.default_rng(0)
    perov = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    salt = [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0],
            [0.5, 0.5, 0.5], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]]
    out = []
    for i in range(n):
        if i % 2:
            a, b = [(38, 22), (56, 22), (20, 40)][i % 3]
            c = Crystal(np.eye(3) * rng.uniform(3.8, 4.2), perov, [a, b, 8, 8, 8])
        else:
            a, b = [(11, 17), (3, 9), (19, 35)][i % 3]
            c = Crystal(np.eye(3) * rng.uniform(4.5, 6.5), salt, [a] * 4 + [b] * 4)
        props = {"material_id": f"toy-{i}", "band_gap": float(rng.uniform(0, 5)),
                 "formation_energy_per_atom": float(rng.uniform(-3, 0))}
        if i == 3:
            props = {"material_id": "toy-3"}
        out.append(c.with_properties(**props))
    return out


def quick(**changes) -> TrainConfig:
    base = dict(max_steps=8, batch_size=4, lr=1e-3, warmup_steps=0, min_lr_ratio=1.0,
                val_every=4, log_every=2, checkpoint_every_s=1e9, seed=3)
    return TrainConfig(**{**base, **changes})


@pytest.fixture(scope="module")
def flow_run(tmp_path_factory) -> Path:
    """A tiny DNG flow (masked types) trained with all four conditions."""
    out = tmp_path_factory.mktemp("cond-flow")
    crystals = toy_crystals()
    config = ModelConfig(process="flow", task="dng", backbone=TINY, conditions=ALL,
                         cond_dropout=0.2, flow=FlowConfig(type_path="masked", n_steps=6))
    train(config, crystals[:10], crystals[10:], quick(), out, progress=False)
    return out


@pytest.fixture(scope="module")
def flow(flow_run: Path) -> IterativeGenerator:
    return load_model(flow_run / "last.pt", n_steps=6)


# -- the vocabulary ---------------------------------------------------------------------------
def test_parse_chemical_system() -> None:
    assert parse_chemical_system("Li-Mn-O") == (3, 8, 25)
    assert parse_chemical_system(["O", "li", "Mn"]) == (3, 8, 25)
    with pytest.raises(XtalgenError, match=r"unknown element 'Xx' in chemical system 'Li-Xx-O'"):
        parse_chemical_system("Li-Xx-O")
    with pytest.raises(XtalgenError, match="empty chemical system"):
        parse_chemical_system("")


@pytest.mark.parametrize("number", [0, 231, -1, 2.5])
def test_spacegroup_outside_1_to_230_is_one_error(number) -> None:
    with pytest.raises(XtalgenError, match="space group must be"):
        check_spacegroup(number)
    assert check_spacegroup(225) == 225


def test_parse_condition_args() -> None:
    assert parse_condition_args(["band_gap=2.0", "formation_energy_per_atom=-1.5"]) == {
        "band_gap": 2.0, "formation_energy": -1.5}
    for bad, message in [(["band_gap"], "NAME=VALUE"), (["bulk_modulus=3"], "unknown condition"),
                         (["band_gap=wide"], "needs a number"), (["spacegroup=0"], "1-230")]:
        with pytest.raises(XtalgenError, match=message):
            parse_condition_args(bad)
    c = Conditions.from_mapping({"chemical_system": "Li-Mn-O", "band_gap": 2}, spacegroup=12)
    assert c.names == ("chemical_system", "spacegroup", "band_gap")
    assert c.as_dict() == {"chemical_system": "Li-Mn-O", "spacegroup": 12, "band_gap": 2.0}


# -- checkpoints --------------------------------------------------------------------------------
def test_condition_config_round_trips_through_a_checkpoint(flow_run: Path, flow) -> None:
    saved = read_checkpoint(flow_run / "last.pt")["model_config"]
    assert saved["conditions"] == ALL and saved["cond_dropout"] == 0.2
    low, high = saved["condition_ranges"]["band_gap"]
    assert 0 <= low < high <= 5  # fitted on the training values, the crystal without one skipped
    config = ModelConfig.from_dict(saved)
    assert config.conditions == ALL and config.condition_ranges == saved["condition_ranges"]
    assert flow.native_conditions == frozenset(ALL)
    records = [json.loads(line) for line in (flow_run / "log.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["loss"]) for r in records if "loss" in r)


def test_old_checkpoints_without_conditions_still_load() -> None:
    old = ModelConfig(process="flow", task="dng", backbone=TINY).to_dict()
    for key in ("conditions", "cond_dropout", "condition_ranges"):
        old.pop(key)
    config = ModelConfig.from_dict(old)
    assert config.conditions == []
    model = CrystalGenerativeModel(config)
    assert model.condition_embedding is None
    assert not any(k.startswith("condition") for k in model.state_dict())
    from xtalgen.models import load_generator

    shipped = load_generator("perov5-dng-flow", n_steps=2)  # written before conditions existed
    assert shipped.model.config.conditions == [] and shipped.generate(1, seed=0)


# -- guided sampling ------------------------------------------------------------------------------
@pytest.mark.parametrize("request_", [
    {"condition": {"chemical_system": "Na-Cl"}},
    {"spacegroup": 225},
    {"condition": {"band_gap": 2.0}},
    {"condition": {"formation_energy": -1.5}},
], ids=["chemical_system", "spacegroup", "band_gap", "formation_energy"])
def test_each_condition_samples_and_guidance_changes_the_samples(flow, request_) -> None:
    plain = flow.sample(4, seed=1, guidance=1.0, **request_)
    guided = flow.sample(4, seed=1, guidance=2.0, **request_)
    assert len(plain) == len(guided) == 4
    assert not np.allclose(np.concatenate([c.frac_coords for c in plain]),
                           np.concatenate([c.frac_coords for c in guided]))
    assert guided[0].properties["guidance"] == 2.0
    (name,) = Conditions.from_mapping(request_.get("condition"),
                                      spacegroup=request_.get("spacegroup")).names
    assert f"condition_{name}" in guided[0].properties


def test_guidance_one_is_plain_conditional_sampling(flow) -> None:
    """w = 1 never evaluates the null branch: the same samples as the conditional net alone."""
    a = flow.sample(3, seed=2, condition={"band_gap": 1.0}, guidance=1.0)
    b = flow.sample(3, seed=2, condition={"band_gap": 1.0})
    assert all(np.allclose(x.frac_coords, y.frac_coords) for x, y in zip(a, b))


def test_chemical_system_samples_hold_only_its_elements(flow) -> None:
    for system in ("Na-Cl", "Li-F", "Sr-Ti-O"):
        allowed = set(parse_chemical_system(system))
        crystals = flow.sample(6, seed=0, condition={"chemical_system": system}, guidance=2.0)
        assert crystals and all(set(c.species.tolist()) <= allowed for c in crystals)


def test_chemical_system_masks_an_unconditional_dng_model() -> None:
    crystals = toy_crystals()
    config = ModelConfig(process="flow", task="dng", backbone=TINY,
                         flow=FlowConfig(type_path="masked", n_steps=3)).fit_statistics(crystals)
    gen = IterativeGenerator(CrystalGenerativeModel(config))
    out = gen.sample(4, seed=0, condition={"chemical_system": "Li-F"})
    assert all(set(c.species.tolist()) <= {3, 9} for c in out)


def test_a_conditional_diffusion_model_trains_and_guides(tmp_path: Path) -> None:
    config = ModelConfig(process="diffusion", task="dng", backbone=TINY,
                         conditions=["spacegroup", "band_gap"],
                         diffusion=DiffusionConfig(timesteps=20))
    path = train(config, toy_crystals(), None, quick(max_steps=4), tmp_path, progress=False)
    gen = load_model(path, n_steps=5)
    a = gen.sample(3, seed=0, spacegroup=221, condition={"band_gap": 3.0}, guidance=1.0)
    b = gen.sample(3, seed=0, spacegroup=221, condition={"band_gap": 3.0}, guidance=3.0)
    assert not np.allclose(a[0].lattice, b[0].lattice)


# -- errors ---------------------------------------------------------------------------------------
def test_bad_conditions_are_one_clear_error_each(flow) -> None:
    cases = [
        ({"condition": {"chemical_system": "Na-Xx"}}, "unknown element 'Xx' in chemical system"),
        ({"spacegroup": 0}, "space group must be in 1-230, got 0"),
        ({"spacegroup": 231}, "space group must be in 1-230, got 231"),
        ({"condition": {"bulk_modulus": 100}}, "unknown condition 'bulk_modulus'"),
        ({"condition": {"chemical_system": "U-Pu"}}, "never saw U, Pu in training"),
        ({"condition": {"band_gap": 1.0}, "guidance": -1.0}, "guidance must be >= 0"),
    ]
    for kwargs, message in cases:
        with pytest.raises(XtalgenError, match=message):
            flow.sample(2, seed=0, **kwargs)


def test_a_condition_the_model_was_not_trained_on_is_refused(tmp_path: Path) -> None:
    crystals = toy_crystals()
    config = ModelConfig(process="flow", task="dng", backbone=TINY,
                         conditions=["chemical_system"]).fit_statistics(crystals)
    gen = IterativeGenerator(CrystalGenerativeModel(config), checkpoint="runs/cs/last.pt")
    with pytest.raises(XtalgenError, match=r"runs/cs/last.pt was not trained with the band_gap condition "
                       r"\(it knows: chemical_system\); use a predictor filter"):
        gen.sample(2, condition={"band_gap": 2.0})
    with pytest.raises(XtalgenError, match="spacegroup condition"):
        gen.sample(2, spacegroup=225)
    plain = IterativeGenerator(CrystalGenerativeModel(
        ModelConfig(process="flow", task="dng", backbone=TINY).fit_statistics(crystals)))
    with pytest.raises(XtalgenError, match="not trained with conditions, so guidance"):
        plain.sample(2, condition={"chemical_system": "Na-Cl"}, guidance=2.0)


# -- the rejection filter --------------------------------------------------------------------------
class Fixed(Generator):
    """A stand-in base generator: cycles through given crystals, counting its calls."""

    name = "fixed"

    def __init__(self, crystals: list[Crystal]) -> None:
        self.crystals, self.calls = crystals, []

    def generate(self, n, *, composition=None, spacegroup=None, condition=None, seed=None):
        self.calls.append((n, spacegroup, condition, seed))
        return [self.crystals[(i + (seed or 0)) % len(self.crystals)] for i in range(n)]


def fake_gap(crystals) -> np.ndarray:
    """A fake band-gap predictor: 3 eV for halides, 0 eV otherwise, NaN for one-element cells."""
    return np.array([np.nan if len(set(c.species.tolist())) == 1 else
                     3.0 if {9, 17, 35} & set(c.species.tolist()) else 0.0 for c in crystals])


def test_the_filter_keeps_only_satisfying_samples(ordered_crystals: list[Crystal]) -> None:
    base = Fixed(ordered_crystals)  # NaCl (225), Si (227), CsCl (221), SrTiO3 (221)
    gen = RejectionGenerator(base, predictors={"band_gap": fake_gap}, max_rounds=5)
    out = gen.generate(5, spacegroup=221, condition={"band_gap": 2.8}, seed=0)
    assert len(out) == 5 and all(c.formula == "CsCl" for c in out)
    assert out[0].properties["predicted_band_gap"] == 3.0
    assert out[0].properties["detected_spacegroup"] == 221
    report = gen.last_report
    assert report["accepted"] == 5 and report["acceptance_rate"] == pytest.approx(5 / report["drawn"])
    assert report["rejected"]["spacegroup"] > 0 and report["rejected"]["band_gap"] > 0
    assert all(call[1] is None and call[2] is None for call in base.calls)  # nothing native
    keep = satisfies(ordered_crystals, Conditions.from_mapping({"chemical_system": "Na-Cl"}))
    assert keep.tolist() == [True, False, False, False]


def test_the_filter_passes_native_conditions_on_and_warns_when_short(
    ordered_crystals: list[Crystal],
) -> None:
    base = Fixed(ordered_crystals)
    base.native_conditions = frozenset({"spacegroup"})
    gen = RejectionGenerator(base, max_rounds=2, min_draw=4, max_draw=4)
    with pytest.warns(UserWarning, match="only 2 of 3"):
        out = gen.generate(3, condition={"chemical_system": "Na-Cl"}, spacegroup=225, seed=0)
    assert [c.formula for c in out] == ["NaCl", "NaCl"]
    assert {call[1] for call in base.calls} == {225}


def test_the_filter_tolerance_and_a_guided_base(flow) -> None:
    wide = RejectionGenerator(flow, predictors={"band_gap": lambda cs: np.full(len(cs), 2.4)},
                              tolerances={"band_gap": 0.5}, max_rounds=1)
    assert len(wide.generate(3, condition={"band_gap": 2.0}, seed=0)) == 3
    assert wide.last_report["native"] == ["band_gap"]  # guided and checked
    narrow = RejectionGenerator(flow, predictors={"band_gap": lambda cs: np.full(len(cs), 2.4)},
                                tolerances={"band_gap": 0.3}, max_rounds=1)
    with pytest.warns(UserWarning, match="only 0 of 3"):
        assert narrow.generate(3, condition={"band_gap": 2.0}, seed=0) == []


# -- the command line -----------------------------------------------------------------------------
def test_cli_samples_with_conditions_and_guidance(flow_run: Path, tmp_path: Path, capsys) -> None:
    from xtalgen.cli.main import main
    from xtalgen.io import read

    out = tmp_path / "s"
    main(["sample", str(flow_run / "last.pt"), "--n", "3", "--steps", "4",
          "--chemical-system", "Na-Cl", "--condition", "band_gap=2.0", "--guidance", "2.0",
          "--out", str(out)])
    crystals = read(out / "samples.extxyz")
    assert len(crystals) == 3 and all(set(c.species.tolist()) <= {11, 17} for c in crystals)


@pytest.mark.parametrize(("args", "message"), [
    (["--chemical-system", "Li-Xx-O"], "error: unknown element 'Xx' in chemical system 'Li-Xx-O'"),
    (["--spacegroup", "0"], "error: space group must be in 1-230, got 0"),
    (["--spacegroup", "231"], "error: space group must be in 1-230, got 231"),
    (["--condition", "bulk_modulus=1"], "error: unknown condition 'bulk_modulus'"),
    (["--condition", "band_gap=1", "--no-filter"], "error: perov5-dng-flow was not trained with "
     "the band_gap condition"),
])
def test_cli_bad_conditions_are_one_error_line(args, message, tmp_path: Path, capsys) -> None:
    from xtalgen.cli.main import main

    with pytest.raises(SystemExit) as info:
        main(["sample", "perov5-dng-flow", "--n", "2", "--steps", "2", "--out", str(tmp_path),
              *args])
    assert info.value.code == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith(message), err
    assert "Traceback" not in err


def test_cli_filters_a_generator_that_cannot_condition(tmp_path: Path, capsys,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """An unconditional checkpoint asked for a band gap: the filter, with a note."""
    import xtalgen.properties.trained as predictor_module
    from xtalgen.cli.main import main

    monkeypatch.setattr(predictor_module, "load_predictor",
                        lambda spec, **kw: (lambda cs: np.full(len(cs), 1.0)))
    main(["sample", "perov5-dng-flow", "--n", "2", "--steps", "2", "--condition",
          "band_gap=1.2", "--predictor", "band_gap=fake.pt", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert "note: perov5-dng-flow cannot condition on band_gap itself" in err
    assert "filter: 2 kept of" in err

