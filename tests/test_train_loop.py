"""The training loop end to end on a handful of crystals: train, checkpoint, resume, sample."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.models import load_generator, load_model
from xtalgen.models.checkpoint import read_checkpoint
from xtalgen.models.iterative.diffusion import DiffusionConfig
from xtalgen.models.iterative.generative import ModelConfig
from xtalgen.models.learned import LearnedGenerator, composition_species, slim_checkpoint
from xtalgen.nn.backbone import BackboneConfig
from xtalgen.train import TrainConfig, train

TINY = BackboneConfig(hidden_dim=16, num_layers=1, n_freqs=2, time_dim=8)


pytestmark = pytest.mark.usefixtures("one_thread")


def perovskites(n: int = 12) -> list[Crystal]:
    """Cubic ABO3 perovskites with jittered lattice constants (5 sites each)."""
    rng = np.random.default_rng(0)
    frac = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    pairs = [(38, 22), (56, 22), (20, 40), (57, 13)]
    return [
        Crystal(np.eye(3) * rng.uniform(3.8, 4.2), frac, [*pairs[i % 4], 8, 8, 8],
                {"material_id": f"toy-{i}"})
        for i in range(n)
    ]


def quick_config(**changes) -> TrainConfig:
    base = dict(max_steps=12, batch_size=4, lr=1e-3, warmup_steps=0, min_lr_ratio=1.0,
                val_every=6, log_every=3, checkpoint_every_s=1e9, seed=3)
    return TrainConfig(**{**base, **changes})


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    crystals = perovskites()
    train(ModelConfig(process="flow", task="csp", backbone=TINY), crystals[:10], crystals[10:],
          quick_config(), out, provenance={"dataset": "toy"}, progress=False)
    return out


def test_training_writes_checkpoints_and_logs(trained: Path) -> None:
    ckpt = read_checkpoint(trained / "last.pt")
    assert ckpt["step"] == 12 and ckpt["provenance"]["dataset"] == "toy"
    assert ckpt["provenance"]["n_train"] == 10
    assert ckpt["model_config"]["lattice_scale"] == pytest.approx(4.0, abs=0.25)
    assert ckpt["model_config"]["num_atoms_counts"] == {5: 10}
    assert (trained / "best.pt").exists()
    records = [json.loads(line) for line in (trained / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "val_loss" in r] == [6, 12]
    assert all(np.isfinite(r["loss"]) for r in records if "loss" in r)


def test_resume_reproduces_an_uninterrupted_run(tmp_path: Path) -> None:
    crystals = perovskites()
    def config() -> ModelConfig:
        return ModelConfig(process="diffusion", task="csp", backbone=TINY, lattice_repr="matrix",
                           diffusion=DiffusionConfig(timesteps=50))

    straight = train(config(), crystals, None, quick_config(max_steps=8), tmp_path / "a",
                     progress=False)
    train(config(), crystals, None, quick_config(max_steps=4), tmp_path / "b", progress=False)
    resumed = train(config(), crystals, None, quick_config(max_steps=8), tmp_path / "b",
                    progress=False)
    a, b = read_checkpoint(straight), read_checkpoint(resumed)
    assert b["step"] == 8
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, msg=key)


def test_time_schedule_decays_over_the_budget_and_stops_there() -> None:
    from xtalgen.train import _lr_factor

    config = TrainConfig(max_steps=10**9, max_time_s=100.0, lr_schedule="time", warmup_steps=10,
                         min_lr_ratio=0.1)
    assert _lr_factor(4, config, elapsed_s=50.0) == pytest.approx(0.5)  # still warming up
    assert _lr_factor(500, config, elapsed_s=0.0) == pytest.approx(1.0)
    assert _lr_factor(500, config, elapsed_s=50.0) == pytest.approx(0.55)
    assert _lr_factor(500, config, elapsed_s=200.0) == pytest.approx(0.1)
    # by steps, elapsed time does not matter
    steps = TrainConfig(max_steps=110, warmup_steps=10, min_lr_ratio=0.1)
    assert _lr_factor(60, steps, elapsed_s=1e6) == pytest.approx(0.55)


def test_time_budget_run_stops_and_needs_a_budget(tmp_path: Path) -> None:
    crystals = perovskites()
    model = ModelConfig(process="flow", task="csp", backbone=TINY)
    path = train(model, crystals, None, quick_config(max_steps=10**6, max_time_s=1.0,
                                                     lr_schedule="time", min_lr_ratio=0.1),
                 tmp_path / "t", progress=False)
    ckpt = read_checkpoint(path)
    assert 0 < ckpt["step"] < 10**6 and ckpt["wall_time_s"] >= 1.0
    # the last step ran at the end of the budget: the rate had decayed most of the way
    assert ckpt["optimizer"]["param_groups"][0]["lr"] < 0.3 * 1e-3
    with pytest.raises(XtalgenError, match="max_time_s"):
        train(model, crystals, None, quick_config(lr_schedule="time"), tmp_path / "u",
              progress=False)


DDP_SCRIPT = """
import sys
import numpy as np
from xtalgen.crystal import Crystal
from xtalgen.models.iterative.generative import ModelConfig
from xtalgen.nn.backbone import BackboneConfig
from xtalgen.train import TrainConfig, train

frac = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
crystals = [Crystal(np.eye(3) * (3.9 + 0.01 * i), frac, [38, 22, 8, 8, 8]) for i in range(8)]
config = TrainConfig(max_steps=10**6, max_time_s=float(sys.argv[2]), lr_schedule="time",
                     batch_size=4, warmup_steps=0, num_threads=1, checkpoint_every_s=1e9)
train(ModelConfig(process="flow", task="csp",
                  backbone=BackboneConfig(hidden_dim=16, num_layers=1, n_freqs=2, time_dim=8)),
      crystals, None, config, sys.argv[1], progress=False)
"""


def test_ddp_ranks_train_and_stop_together_on_a_time_budget(tmp_path: Path) -> None:
    """Two CPU ranks (gloo) under torchrun: the run ends on its time budget without a hang."""
    import socket
    import subprocess
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT)
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
         "--master_addr=127.0.0.1", f"--master_port={port}", str(script), str(out), "2.0"],
        capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    ckpt = read_checkpoint(out / "last.pt")
    assert ckpt["step"] > 0 and ckpt["wall_time_s"] >= 2.0


def test_ema_update_is_the_moving_average() -> None:
    from xtalgen.train import EMA

    module = torch.nn.Linear(3, 2)
    ema = EMA(module, decay=0.9)
    before = {k: v.clone() for k, v in ema.state_dict().items()}
    with torch.no_grad():
        module.weight.add_(1.0)
    ema.update(module, step=10**6)  # past the warmup: decay 0.9
    for key, value in module.state_dict().items():
        torch.testing.assert_close(ema.state_dict()[key], 0.9 * before[key] + 0.1 * value)


@pytest.mark.parametrize("composition", ["SrTiO3", {"Ba": 1, "Ti": 1, "O": 3}])
def test_sample_from_checkpoint(trained: Path, composition) -> None:
    generator = load_model(trained / "last.pt", n_steps=5)
    crystals = generator.sample(3, composition=composition, seed=1)
    assert len(crystals) == 3
    for c in crystals:
        assert c.num_sites == 5 and sorted(c.species) == sorted(composition_species(composition))
        assert c.properties["generator"] == "flow-csp" and c.properties["seed"] == 1
        assert np.all(np.isfinite(c.lattice)) and np.all((c.frac_coords >= 0) & (c.frac_coords < 1))
    again = load_generator(trained / "last.pt", n_steps=5).generate(3, composition=composition, seed=1)
    np.testing.assert_allclose(again[0].lattice, crystals[0].lattice)  # seeded


def test_sample_csp_tags_targets(trained: Path) -> None:
    generator = load_model(trained / "last.pt", n_steps=3)
    targets = perovskites(2)
    out = generator.sample_csp(targets, k=2, seed=0)
    assert [(c.properties["material_id"], c.properties["sample_index"]) for c in out] == [
        ("toy-0", 0), ("toy-0", 1), ("toy-1", 0), ("toy-1", 1)]
    assert [c.formula for c in out] == [targets[0].formula] * 2 + [targets[1].formula] * 2


def test_sample_csp_from_templates(trained: Path) -> None:
    """At a tiny noise level the sample stays at its template (species order included)."""
    generator = load_model(trained / "last.pt", n_steps=2)
    targets = perovskites(2)
    template = targets[1].replace(species=[8, 38, 8, 22, 8], lattice=np.eye(3) * 4.5)
    out = generator.sample_csp(targets, k=1, templates=[[template], []], noise_level=0.01)
    assert [c.properties["material_id"] for c in out] == ["toy-0", "toy-1"]
    assert "template_noise" in out[0].properties and "template_noise" not in out[1].properties
    assert out[0].species.tolist() == [8, 38, 8, 22, 8]
    np.testing.assert_allclose(out[0].lattice_parameters, (4.5, 4.5, 4.5, 90, 90, 90), rtol=0.03)
    diff = out[0].frac_coords - template.frac_coords
    assert np.abs(diff - np.round(diff)).max() < 0.03


def test_dng_diffusion_trains_and_samples(tmp_path: Path) -> None:
    crystals = perovskites()
    config = ModelConfig(process="diffusion", task="dng", backbone=TINY,
                         diffusion=DiffusionConfig(timesteps=20))
    path = train(config, crystals, None, quick_config(max_steps=4), tmp_path, progress=False)
    slim = slim_checkpoint(path, tmp_path / "slim.pt")
    assert slim.stat().st_size < path.stat().st_size  # no optimiser state, half precision
    weights = read_checkpoint(slim)["ema_state_dict"]
    assert weights["backbone.type_head.weight"].dtype == torch.float16
    assert weights["process.alpha_bars"].dtype == torch.float32  # schedules stay exact
    generator = LearnedGenerator.load(slim)
    crystals_out = generator.generate(4, seed=0)
    assert len(crystals_out) == 4
    for c in crystals_out:
        assert c.num_sites == 5 and set(c.species) <= {8, 13, 20, 22, 38, 40, 56, 57}
    with pytest.raises(XtalgenError, match="composition"):
        generator.generate(2, composition="SrTiO3")


def test_bad_requests_and_files(trained: Path, tmp_path: Path) -> None:
    generator = load_model(trained / "last.pt")
    with pytest.raises(XtalgenError, match="give a composition"):
        generator.generate(2)
    with pytest.raises(XtalgenError, match="whole numbers"):
        generator.generate(2, composition="Fe0.5O")
    with pytest.raises(XtalgenError, match="does not exist"):
        read_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(XtalgenError, match="corrupt"):
        load_model(tmp_path / "bad.pt")
    torch.save({"hello": 1}, tmp_path / "other.pt")
    with pytest.raises(XtalgenError, match="not an xtalgen generator checkpoint"):
        load_model(tmp_path / "other.pt")


def _cli(capsys, *args: str) -> tuple[int, str]:
    """Run ``xtalgen ARGS`` in-process; (exit status, stderr)."""
    from xtalgen.cli.main import main

    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def test_cli_sample_writes_files_and_reports_bad_checkpoints(
    trained: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "samples"
    code, err = _cli(capsys, "sample", str(trained / "last.pt"), "--n", "2", "--composition",
                     "CaZrO3", "--steps", "3", "--out", str(out))
    assert code == 0, err
    assert len(list((out / "cif").glob("*.cif"))) == 2
    from xtalgen import io as xio

    back = xio.read(out / "samples.extxyz")
    assert len(back) == 2 and back[0].formula == "CaZrO3"
    assert back[0].properties["generator"] == "flow-csp"
    (tmp_path / "broken.pt").write_bytes(b"\x00\x01")
    code, err = _cli(capsys, "sample", str(tmp_path / "broken.pt"), "--n", "2",
                     "--composition", "CaZrO3")
    assert code == 1
    assert err.strip().count("\n") == 0 and err.startswith("error: ") and "corrupt" in err


def test_lattice_representations_round_trip() -> None:
    from xtalgen.models.iterative.generative import CrystalGenerativeModel
    from xtalgen.representations.tensors import CrystalBatch

    rng = np.random.default_rng(1)
    crystals = [Crystal(np.diag(rng.uniform(3, 6, 3)) + rng.normal(0, 0.5, (3, 3)), [[0, 0, 0]], [6])
                for _ in range(6)]
    batch = CrystalBatch.from_crystals(crystals, dtype=torch.float64)
    for repr_ in ("ks", "matrix"):
        model = CrystalGenerativeModel(
            ModelConfig(lattice_repr=repr_, backbone=TINY).fit_statistics(crystals)).double()
        state = model.encode_lattices(batch.lattices)
        assert state.shape[1:] == ((6,) if repr_ == "ks" else (3, 3))
        if repr_ == "ks":  # standardised: zero mean, unit (or floored) spread
            assert torch.allclose(state.mean(0), torch.zeros(6, dtype=torch.float64), atol=1e-5)
        back = model.decode_lattices(state)
        for c, lattice in zip(crystals, back):
            got = Crystal(lattice.numpy(), [[0, 0, 0]], [6]).lattice_parameters
            np.testing.assert_allclose(got, c.lattice_parameters, rtol=1e-6, atol=1e-6)
