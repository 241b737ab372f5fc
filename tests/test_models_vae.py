"""The CDVAE-style VAE: one-loop training, checkpoints, sampling, reconstruction, interpolation,
latent optimisation, KL annealing and resume, on a tiny model and a handful of perovskites."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.models import load_model
from xtalgen.models.checkpoint import read_checkpoint
from xtalgen.models.iterative.flow import FlowConfig
from xtalgen.models.iterative.generative import ModelConfig
from xtalgen.models.oneshot.vae import (
    CrystalVAE,
    VAEConfig,
    VAEGenerator,
    score_trajectories,
    success_rates,
)
from xtalgen.models.oneshot.vae_model import apportion
from xtalgen.nn.backbone import BackboneConfig
from xtalgen.train import TrainConfig, train


def tiny_backbone() -> BackboneConfig:
    return BackboneConfig(hidden_dim=16, num_layers=1, n_freqs=2, time_dim=8)


def tiny_config(**changes) -> VAEConfig:
    decoder = ModelConfig(process="flow", task="csp", backbone=tiny_backbone(),
                          flow=FlowConfig(n_steps=4))
    base = dict(latent_dim=8, head_dim=16, encoder=tiny_backbone(), decoder=decoder,
                kl_anneal_steps=10)
    return VAEConfig(**{**base, **changes})


pytestmark = pytest.mark.usefixtures("one_thread")


def perovskites(n: int = 12) -> list[Crystal]:
    """Cubic ABO3 (5 sites) and A2O (3 sites) toy crystals with a formation-energy label on
    all but every fourth."""
    rng = np.random.default_rng(0)
    frac5 = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    pairs = [(38, 22), (56, 22), (20, 40), (57, 13)]
    out = []
    for i in range(n):
        label = {} if i % 4 == 3 else {"formation_energy_per_atom": -1.0 - 0.2 * (i % 5)}
        if i % 3 == 2:
            out.append(Crystal(np.eye(3) * rng.uniform(3.0, 3.4), [[0, 0, 0], [0.25] * 3, [0.75] * 3],
                               [8, 3, 3], {"material_id": f"toy-{i}", **label}))
        else:
            out.append(Crystal(np.eye(3) * rng.uniform(3.8, 4.2), frac5, [*pairs[i % 4], 8, 8, 8],
                               {"material_id": f"toy-{i}", **label}))
    return out


def quick(**changes) -> TrainConfig:
    base = dict(max_steps=12, batch_size=4, lr=2e-3, warmup_steps=0, min_lr_ratio=1.0,
                val_every=6, log_every=3, checkpoint_every_s=1e9, seed=3)
    return TrainConfig(**{**base, **changes})


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("vae")
    crystals = perovskites()
    train(tiny_config(), crystals[:10], crystals[10:], quick(), out,
          provenance={"dataset": "toy"}, progress=False)
    return out


@pytest.fixture(scope="module")
def gen(run) -> VAEGenerator:
    loaded = load_model(run / "last.pt")
    assert isinstance(loaded, VAEGenerator)
    return loaded


def test_trains_through_the_one_loop(run):
    ckpt = read_checkpoint(run / "last.pt")
    assert ckpt["family"] == "vae" and ckpt["step"] == 12
    config = VAEConfig.from_dict(ckpt["model_config"])
    assert config.max_atoms == 5 and config.property_column == "formation_energy_per_atom"
    assert config.property_name == "formation_energy" and len(config.property_values) == 101
    assert int(ckpt["state_dict"]["kl_step"]) == 12  # validation does not count as training
    assert (run / "best.pt").exists()


def test_kl_annealing_schedule():
    model = CrystalVAE(tiny_config(beta=0.5, kl_anneal_steps=10))
    values = []
    for step in (0, 5, 10, 20):
        model.kl_step.fill_(step)
        values.append(model.kl_weight())
    assert values == pytest.approx([0.0, 0.25, 0.5, 0.5])
    assert CrystalVAE(tiny_config(beta=0.5, kl_anneal_steps=0)).kl_weight() == 0.5


def test_loss_terms_and_unlabelled_batch():
    crystals = perovskites()
    config = tiny_config().fit_statistics(crystals)
    model = CrystalVAE(config)
    losses = model.loss(model.collate([crystals[3], crystals[7]]))  # both unlabelled
    assert float(losses["loss_property"].detach()) == 0.0
    for key in ("loss", "loss_kl", "loss_num_atoms", "loss_composition", "loss_lattice_head",
                "decoder_loss_coord", "decoder_loss_lattice"):
        assert torch.isfinite(losses[key]), key
    losses["loss"].backward()  # the property head's zero term still has a graph


def test_apportion_keeps_atom_counts():
    fractions = torch.tensor([[0.2, 0.2, 0.6, 0.0], [0.5, 0.5, 0.0, 0.0], [0.34, 0.33, 0.33, 0.0]])
    counts = apportion(fractions, torch.tensor([5, 3, 7]))
    assert counts.sum(1).tolist() == [5, 3, 7]
    assert counts[0].tolist() == [1, 1, 3, 0]


def test_sampling_gives_valid_crystals(gen):
    samples = gen.generate(6, seed=1)
    sizes = set(gen.config.decoder.num_atoms_counts)
    assert len(samples) == 6
    for c in samples:
        assert isinstance(c, Crystal) and c.num_sites in sizes
        assert set(c.species) <= set(gen.config.decoder.elements)
        assert np.isfinite(c.frac_coords).all() and abs(np.linalg.det(c.lattice)) > 1e-3
    again = gen.generate(6, seed=1)
    assert [c.formula for c in again] == [c.formula for c in samples]
    with pytest.raises(XtalgenError, match="de novo"):
        gen.generate(2, composition="SrTiO3")


def test_reconstruct_and_interpolate(gen):
    targets = perovskites()[:3]
    recon = gen.reconstruct(targets, seed=0)
    assert [c.properties["material_id"] for c in recon] == ["toy-0", "toy-1", "toy-2"]
    assert all(c.properties["sample_index"] == 0 for c in recon)
    path = gen.interpolate(targets[0], targets[2], steps=4, seed=0)
    assert len(path) == 4 and path[0].properties["interpolation_weight"] == 0.0


def test_decoder_sees_z_and_the_lattice_head(gen):
    """Regression: the flow's sampler once dropped the explicit ``cond`` (z was ignored)."""
    model = gen.model
    num_atoms = torch.tensor([5, 5])
    types = torch.tensor([38, 22, 8, 8, 8] * 2)
    z = torch.randn(2, gen.config.latent_dim, generator=torch.Generator().manual_seed(0))

    def decode(zz, lattices=None):
        with torch.no_grad():
            return model.decoder.sample(num_atoms, types, n_steps=4,
                                        generator=torch.Generator().manual_seed(0),
                                        cond=model.cond_proj(zz), fixed_lattices=lattices)

    assert not torch.allclose(decode(z).frac_coords, decode(-z).frac_coords)
    with torch.no_grad():
        head = model.lattice_head(z)
    decoded = decode(z, head)  # the known lattice comes back exactly
    expected = model.decoder.decode_lattices(head)
    assert torch.allclose(decoded.lattices, expected, atol=1e-4)
    assert gen.config.lattice_from_head


def test_optimize_lowers_the_head(gen):
    trajectories = gen.optimize(8, prop="formation_energy", steps=30, lr=0.05, seed=0,
                                n_decoded=3)
    assert len(trajectories) == 8 and trajectories[0].steps == [0, 15, 30]
    first = np.mean([t.predicted[0] for t in trajectories])
    last = np.mean([t.predicted[-1] for t in trajectories])
    assert last < first
    assert all(p.requires_grad for p in gen.model.parameters())  # restored afterwards
    scores = score_trajectories(trajectories, lambda cs: np.array([-float(c.num_sites) for c in cs]))
    rates = success_rates(scores, {"easy": 0.0, "hard": -100.0})
    assert rates == {"easy": 1.0, "hard": 0.0}
    with pytest.raises(XtalgenError, match="predicts formation_energy"):
        gen.optimize(2, prop="band_gap", steps=1)


def test_resume_continues_the_kl_schedule(tmp_path):
    crystals = perovskites()
    train(tiny_config(), crystals, None, quick(max_steps=4), tmp_path, progress=False)
    train(tiny_config(), crystals, None, quick(max_steps=7), tmp_path, progress=False)
    ckpt = read_checkpoint(tmp_path / "last.pt")
    assert ckpt["step"] == 7 and int(ckpt["state_dict"]["kl_step"]) == 7
    assert int(ckpt["ema_state_dict"]["kl_step"]) == 7


def test_cli_train_sample_optimize(tmp_path):
    from xtalgen.cli.main import main

    out = tmp_path / "run"
    main(["train", "--model", "vae", "--dataset", "perov5", "--split", "offline_val",
          "--val-split", "", "--hidden-dim", "16", "--num-layers", "1", "--latent-dim", "8",
          "--max-steps", "3", "--batch-size", "8", "--threads", "1", "--out", str(out)])
    ckpt = out / "last.pt"
    assert VAEConfig.from_dict(read_checkpoint(ckpt)["model_config"]).property_name == \
        "heat_of_formation"
    for argv in (["sample", str(ckpt), "--n", "4", "--steps", "2", "--out", str(tmp_path / "s")],
                 ["optimize", str(ckpt), "--n", "2", "--steps", "2", "--n-decoded", "2",
                  "--decoder-steps", "2", "--no-score", "--out", str(tmp_path / "o")]):
        main(argv)  # a failure exits with status 1
    assert (tmp_path / "s" / "samples.extxyz").exists()
    assert (tmp_path / "o" / "trajectories.csv").read_text().count("\n") == 5
