"""The crystal GAN: WGAN-GP through the one training loop's hook, checkpoints, sampling, critic."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.models import load_model
from xtalgen.models.checkpoint import read_checkpoint
from xtalgen.models.learned import slim_checkpoint
from xtalgen.models.oneshot.gan import CrystalGAN, GANConfig, GANGenerator
from xtalgen.models.oneshot.gan_nets import Slots, gradient_penalty
from xtalgen.nn.backbone import BackboneConfig
from xtalgen.train import TrainConfig, train

TINY_CRITIC = BackboneConfig(hidden_dim=16, num_layers=1, n_freqs=2, time_dim=8)


pytestmark = pytest.mark.usefixtures("one_thread")


def crystals(n: int = 12) -> list[Crystal]:
    """Cubic ABO3 perovskites (5 sites) and rock-salt pairs (2 sites), jittered."""
    rng = np.random.default_rng(0)
    perovskite = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    pairs = [(38, 22), (56, 22), (20, 40)]
    out = []
    for i in range(n):
        if i % 4 == 3:
            out.append(Crystal(np.eye(3) * rng.uniform(2.8, 3.2), [[0, 0, 0], [0.5, 0.5, 0.5]],
                               [11, 17]))
        else:
            out.append(Crystal(np.eye(3) * rng.uniform(3.8, 4.2), perovskite,
                               [*pairs[i % 3], 8, 8, 8]))
    return out


def tiny_config(**changes) -> GANConfig:
    return GANConfig(latent_dim=8, hidden_dim=16, num_blocks=1, critic=BackboneConfig(
        **{**TINY_CRITIC.__dict__}), n_critic=2, **changes)


def quick(**changes) -> TrainConfig:
    base = dict(max_steps=8, batch_size=4, lr=1e-3, warmup_steps=0, min_lr_ratio=1.0,
                val_every=4, log_every=2, checkpoint_every_s=1e9, seed=5)
    return TrainConfig(**{**base, **changes})


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gan")
    data = crystals()
    train(tiny_config(), data[:10], data[10:], quick(), out, provenance={"dataset": "toy"},
          progress=False)
    return out


def fitted_model(seed: int = 0) -> CrystalGAN:
    torch.manual_seed(seed)
    return CrystalGAN(tiny_config().fit_statistics(crystals()[:10]))


def test_trains_through_the_hook_and_updates_both_networks(run: Path) -> None:
    ckpt = read_checkpoint(run / "last.pt")
    assert ckpt["family"] == "gan" and ckpt["step"] == 8
    initial = fitted_model(seed=5).state_dict()  # the loop seeds the model with config.seed
    for prefix in ("generator.", "critic.head", "critic.backbone.layers"):
        changed = [not torch.equal(v, initial[k]) for k, v in ckpt["state_dict"].items()
                   if k.startswith(prefix)]
        assert changed and any(changed), prefix
        ema = [not torch.equal(v, initial[k]) for k, v in ckpt["ema_state_dict"].items()
               if k.startswith(prefix)]
        assert any(ema), prefix
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    logged = [r for r in records if "gp" in r]
    assert logged and all(np.isfinite(r[k]) for r in logged
                          for k in ("loss", "wasserstein", "gp", "g_loss", "grad_norm"))
    assert all(0 < r["comp_unique"] <= 1 for r in logged)
    assert any("val_loss" in r and np.isfinite(r["val_loss"]) for r in records)


def test_one_optimiser_holds_both_networks_and_resume_restores_it(run: Path,
                                                                   tmp_path: Path) -> None:
    ckpt = read_checkpoint(run / "last.pt")
    groups = ckpt["optimizer"]["param_groups"]
    assert len(groups) == 2 and all(tuple(g["betas"]) == (0.5, 0.9) for g in groups)
    steps = {int(i): float(s["step"]) for i, s in ckpt["optimizer"]["state"].items()}
    # the generator is stepped once per loop step, the critic n_critic = 2 times (the
    # backbone's unused field heads get no gradient, hence no state)
    assert {steps[i] for i in groups[0]["params"]} == {8.0}
    assert {steps[i] for i in groups[1]["params"] if i in steps} == {16.0}

    data = crystals()
    shutil.copytree(run, tmp_path / "resumed")
    train(tiny_config(), data[:10], data[10:], quick(max_steps=10), tmp_path / "resumed",
          progress=False)
    train(tiny_config(), data[:10], data[10:], quick(max_steps=10), tmp_path / "straight",
          progress=False)
    a = read_checkpoint(tmp_path / "resumed" / "last.pt")
    b = read_checkpoint(tmp_path / "straight" / "last.pt")
    assert a["step"] == b["step"] == 10
    for key, value in b["state_dict"].items():
        torch.testing.assert_close(a["state_dict"][key], value, msg=key)
    for i, state in b["optimizer"]["state"].items():
        torch.testing.assert_close(a["optimizer"]["state"][i]["exp_avg_sq"], state["exp_avg_sq"])


def test_load_model_samples_crystals_of_the_training_counts(run: Path, tmp_path: Path) -> None:
    generator = load_model(run / "last.pt")
    assert isinstance(generator, GANGenerator)
    samples = generator.generate(9, seed=1)
    assert len(samples) == 9 and all(isinstance(c, Crystal) for c in samples)
    assert {c.num_sites for c in samples} <= {2, 5}
    assert {int(z) for c in samples for z in c.species} <= {8, 11, 17, 20, 22, 38, 40, 56}
    assert all(((c.frac_coords >= 0) & (c.frac_coords < 1)).all() for c in samples)
    assert all(abs(np.linalg.det(c.lattice)) > 1 for c in samples)
    again = generator.generate(9, seed=1)
    assert [c.formula for c in again] == [c.formula for c in samples]
    slim = slim_checkpoint(run / "last.pt", tmp_path / "slim.pt")
    assert len(load_model(slim).generate(3, seed=0)) == 3
    with pytest.raises(XtalgenError, match="takes no composition"):
        generator.generate(2, composition="SrTiO3")
    with pytest.raises(XtalgenError, match="unconditional"):
        generator.generate(2, spacegroup=221)


def test_sample_command_reads_a_gan_checkpoint(run: Path, tmp_path: Path) -> None:
    from xtalgen.cli.main import main
    from xtalgen.io import read

    main(["sample", str(run / "last.pt"), "--n", "4", "--out", str(tmp_path)])
    assert len(read(tmp_path / "samples.extxyz")) == 4


def _shuffled_and_shifted(x: Slots) -> Slots:
    """Every crystal's atoms in another order, all coordinates shifted by one vector."""
    frac, types = x.frac.clone(), x.types.clone()
    for b, n in enumerate(x.num_atoms.tolist()):
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(b))
        frac[b, :n], types[b, :n] = x.frac[b, perm], x.types[b, perm]
    return Slots(x.ks, frac + torch.tensor([0.31, -0.17, 0.62]), types, x.num_atoms)


def test_critic_is_invariant_to_atom_order_and_translations() -> None:
    model = fitted_model().eval()
    real = model.collate(model.prepare(crystals()))
    with torch.no_grad():
        fake = model.fake(real.num_atoms, torch.Generator().manual_seed(0))
        for x in (real, fake):
            torch.testing.assert_close(model.score(_shuffled_and_shifted(x)), model.score(x),
                                       atol=1e-5, rtol=1e-5)


def test_gradient_penalty_is_zero_for_a_unit_slope_critic_and_finite_otherwise() -> None:
    model = fitted_model()
    real = model.collate(model.prepare(crystals()[:6]))
    with torch.no_grad():
        fake = model.fake(real.num_atoms)
    direction = torch.tensor([3.0, 0, 0, 4.0, 0, 0]) / 5.0  # unit norm

    def unit(x: Slots) -> torch.Tensor:
        return x.ks @ direction + 0.0 * x.frac.sum((1, 2))

    def steep(x: Slots) -> torch.Tensor:
        return 2 * unit(x)

    assert float(gradient_penalty(unit, real, fake)) == pytest.approx(0.0, abs=1e-6)
    assert float(gradient_penalty(steep, real, fake)) == pytest.approx(1.0, abs=1e-5)
    gp = gradient_penalty(model.score, real, fake)
    assert torch.isfinite(gp) and gp > 0
    gp.backward()  # second-order gradients reach the critic's weights
    assert model.critic.head[0].weight.grad is not None


def test_bad_settings_are_one_clear_error() -> None:
    with pytest.raises(XtalgenError, match="n_critic"):
        GANConfig(n_critic=0)
    with pytest.raises(XtalgenError, match="fit_statistics"):
        CrystalGAN(GANConfig())
    round_trip = GANConfig.from_dict(tiny_config().fit_statistics(crystals()).to_dict())
    assert round_trip.num_atoms_counts == {2: 3, 5: 9} and round_trip.critic.n_types == 8
