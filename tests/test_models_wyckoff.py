"""The Wyckoff-token transformer through the one training loop: train, checkpoint, load, sample
de novo, in a space group and at a composition; bad conditions are one clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from xtalgen.crystal import Crystal
from xtalgen.data import load_dataset
from xtalgen.errors import XtalgenError
from xtalgen.models import load_model
from xtalgen.models.autoregressive.wyckoff import WyckoffConfig, WyckoffGenerator
from xtalgen.models.checkpoint import read_checkpoint
from xtalgen.models.iterative.generator import IterativeGenerator
from xtalgen.models.learned import LearnedGenerator, slim_checkpoint
from xtalgen.nn.transformer import TransformerConfig
from xtalgen.representations import wyckoff as W
from xtalgen.train import TrainConfig, train

TINY = TransformerConfig(d_model=32, num_layers=1, num_heads=2, dropout=0.0)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def crystals() -> list[Crystal]:
    return list(load_dataset("perov5", "val", progress=False))[:48]


@pytest.fixture(scope="module")
def run(tmp_path_factory, crystals) -> Path:
    out = tmp_path_factory.mktemp("wyckoff")
    config = TrainConfig(max_steps=40, batch_size=16, lr=3e-3, warmup_steps=5, val_every=20,
                         log_every=10, checkpoint_every_s=1e9, seed=0)
    train(WyckoffConfig(transformer=TransformerConfig(**vars(TINY))), crystals[:40],
          crystals[40:], config, out, provenance={"dataset": "perov5"}, progress=False)
    return out


def test_checkpoint_records_family_and_statistics(run: Path) -> None:
    payload = read_checkpoint(run / "last.pt")
    assert payload["family"] == "wyckoff" and payload["step"] == 40
    config = WyckoffConfig.from_dict(payload["model_config"])
    assert config.max_atoms == 5 and 8 in config.elements and config.spacegroups
    assert (run / "best.pt").exists()


def test_resume_continues_the_run(run: Path, crystals) -> None:
    config = TrainConfig(max_steps=45, batch_size=16, warmup_steps=5, checkpoint_every_s=1e9)
    train(WyckoffConfig(transformer=TransformerConfig(**vars(TINY))), crystals[:40], None, config,
          run, progress=False)
    assert read_checkpoint(run / "last.pt")["step"] == 45


def test_load_model_dispatches_on_the_family(run: Path, tmp_path: Path) -> None:
    slim = slim_checkpoint(run / "last.pt", tmp_path / "slim.pt")
    generator = load_model(slim)
    assert isinstance(generator, WyckoffGenerator) and isinstance(generator, LearnedGenerator)
    assert read_checkpoint(slim)["ema_state_dict"]["core.head.weight"].dtype == torch.float16
    with pytest.raises(XtalgenError, match="wyckoff model, not a iterative"):
        IterativeGenerator.load(slim)


def test_dng_samples_are_legal_crystals(run: Path) -> None:
    generator = load_model(run / "last.pt")
    crystals = generator.generate(12, seed=0)
    report = generator.last_report
    assert report["requested"] == 12 and report["decoded"] == len(crystals)
    assert len(crystals) + report["given_up"] == 12
    for crystal in crystals:  # each says which Wyckoff sites it was built on
        label = crystal.properties["wyckoff"]
        assert W.crystal_system(int(label.split(" | ")[0]))
        assert crystal.num_sites <= 5 and crystal.volume > 1.0
    again = generator.generate(12, seed=0)
    assert [c.properties["wyckoff"] for c in again] == [c.properties["wyckoff"] for c in crystals]


def test_spacegroup_condition_holds_for_every_sample(run: Path) -> None:
    import spglib

    generator = load_model(run / "last.pt")
    crystals = generator.generate(6, spacegroup=221, seed=1)
    assert crystals
    for crystal in crystals:
        cell = (crystal.lattice, crystal.frac_coords, crystal.species)
        assert spglib.get_symmetry_dataset(cell, symprec=0.1).number == 221
        assert crystal.properties["spacegroup_requested"] == 221


def test_csp_meets_the_composition(run: Path, crystals) -> None:
    generator = load_model(run / "last.pt")
    out = generator.generate(4, composition="SrTiO3", seed=2)
    assert out and all(c.formula == "SrTiO3" for c in out)
    targets = crystals[40:43]
    samples = generator.sample_csp(targets, k=2, seed=0)
    keys = [(t.properties["material_id"], j) for t in targets for j in range(2)]
    got = [(s.properties["material_id"], s.properties["sample_index"]) for s in samples]
    assert got == [key for key in keys if key in got]  # target by target, in order
    assert len(got) + generator.last_report["given_up"] == len(keys)  # a failure is counted
    formulas = {t.properties["material_id"]: t.formula for t in targets}
    assert all(s.formula == formulas[s.properties["material_id"]] for s in samples)


@pytest.mark.parametrize("kwargs, message", [
    ({"composition": "Uuo2"}, "cannot parse composition"),
    ({"composition": "Pu2O3"}, "never occur in its training set"),
    ({"composition": "Sr2Ti2O6Sr"}, "at most 5"),
    ({"spacegroup": 231}, "1-230"),
    ({"spacegroup": 0}, "1-230"),
    ({"composition": "SrTiO3", "spacegroup": 225}, "cannot be realised in space group 225"),
    ({"condition": {"band_gap": 1.0}}, "property conditions"),
])
def test_bad_conditions_are_one_clear_error(run: Path, kwargs, message) -> None:
    with pytest.raises(XtalgenError, match=message):
        load_model(run / "last.pt").generate(2, **kwargs)


def test_train_step_hook_replaces_the_default_step(crystals, tmp_path: Path) -> None:
    """A family with its own optimisation step (GAN, GFlowNet) plugs into the one loop."""
    from xtalgen.models.autoregressive import wyckoff

    calls = []

    def train_step(self, batch, optimizer, step, grad_clip):
        calls.append(step)
        losses = self.loss(batch)
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
        return {**losses, "grad_norm": torch.tensor(0.0)}

    wyckoff.WyckoffTransformer.train_step = train_step
    try:
        train(WyckoffConfig(transformer=TransformerConfig(**vars(TINY))), crystals[:16], None,
              TrainConfig(max_steps=3, batch_size=8, warmup_steps=1), tmp_path, progress=False)
    finally:
        del wyckoff.WyckoffTransformer.train_step
    assert calls == [0, 1, 2]


def run_cli(*args: str | Path):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "xtalgen.cli.main", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_cli_samples_in_a_space_group_and_rejects_bad_ones(run: Path, tmp_path: Path) -> None:
    from xtalgen.io import read

    ok = run_cli("sample", run / "last.pt", "--n", "3", "--spacegroup", "221", "--out", tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert all(c.properties["spacegroup_requested"] == 221
               for c in read(tmp_path / "samples.extxyz"))
    bad = run_cli("sample", run / "last.pt", "--n", "3", "--spacegroup", "231", "--out", tmp_path)
    assert bad.returncode == 1
    assert [line for line in bad.stderr.splitlines() if line.startswith("error:")] == [
        "error: space group must be in 1-230, got 231"]
