"""Diffusion and flow-matching processes: torus helpers and samplers driven by exact oracles.

With one training crystal the optimal network is known in closed form (the noise that was added,
the wrapped-normal score towards the crystal, the straight-line velocity); sampling with that
oracle must land on the crystal. This checks schedules, signs and strides without training.
"""

from __future__ import annotations

import math

import pytest
import torch

from xtalgen.models.iterative.diffusion import DiffusionConfig, DiffusionProcess, cosine_alpha_bars
from xtalgen.models.iterative.flow import FlowConfig, FlowProcess
from xtalgen.models.iterative.process import State
from xtalgen.models.iterative.torus import (
    wrap,
    wrapped_displacement,
    wrapped_normal_score,
    wrapped_normal_score_norm,
)
from xtalgen.nn.backbone import BackboneOutput

LATTICE = torch.tensor([[[1.0, 0.1, 0.0], [0.0, 0.9, 0.2], [0.1, 0.0, 1.1]]])  # scaled units
FRAC = torch.tensor([[0.05, 0.1, 0.95], [0.5, 0.45, 0.5], [0.25, 0.8, 0.6]])
BATCH = torch.zeros(3, dtype=torch.long)


def test_wrapped_normal_score_matches_finite_differences() -> None:
    sigma = torch.full((7,), 0.3, dtype=torch.float64)
    x = torch.linspace(-0.45, 0.45, 7, dtype=torch.float64)
    k = torch.arange(-10, 11, dtype=torch.float64)

    def log_p(v: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(-((v[:, None] + k) ** 2) / (2 * 0.3**2), -1)

    h = 1e-5
    numeric = (log_p(x + h) - log_p(x - h)) / (2 * h)
    torch.testing.assert_close(wrapped_normal_score(x, sigma), numeric, atol=1e-6, rtol=1e-6)
    # periodic in x
    torch.testing.assert_close(wrapped_normal_score(x + 1.0, sigma), wrapped_normal_score(x, sigma))


def test_score_norm_matches_monte_carlo() -> None:
    g = torch.Generator().manual_seed(0)
    for s in (0.05, 0.3, 0.5):
        x = wrapped_displacement(torch.randn(200_000, generator=g, dtype=torch.float64) * s)
        mc = (wrapped_normal_score(x, torch.full_like(x, s)) ** 2).mean()
        exact = wrapped_normal_score_norm(torch.tensor([s]))[0]
        assert abs(float(mc / exact) - 1) < 0.03, (s, float(mc), float(exact))


def test_torus_geodesic() -> None:
    d = wrapped_displacement(torch.tensor([0.7, -0.7, 0.2, 1.49]))
    torch.testing.assert_close(d, torch.tensor([-0.3, 0.3, 0.2, 0.49]))
    assert torch.all((wrap(torch.tensor([-0.25, 1.0, 2.5])) - torch.tensor([0.75, 0.0, 0.5])).abs() < 1e-6)


def test_cosine_schedule() -> None:
    ab = cosine_alpha_bars(1000)
    assert ab[0] == 1 and torch.all(ab[1:] < ab[:-1]) and ab[-1] < 1e-3


def _diffusion_oracle(process: DiffusionProcess):
    T = process.config.timesteps

    def net(t, types, frac, lattices):
        step = round(float(t[0]) * T)
        ab = process.alpha_bars[step]
        eps = (lattices - ab.sqrt() * LATTICE) / (1 - ab).sqrt()
        sigma = process.sigmas[step].expand(frac.shape)
        score = wrapped_normal_score(wrapped_displacement(frac - FRAC), sigma)
        return BackboneOutput(eps, score / process.sigma_norms[step].sqrt(), torch.zeros_like(types))

    return net


@pytest.mark.parametrize("n_steps", [None, 40])
def test_diffusion_sampler_reaches_the_data_with_an_oracle(n_steps: int | None) -> None:
    process = DiffusionProcess(DiffusionConfig(timesteps=200, corrector_step_lr=1e-5))
    types = torch.eye(4)[:3]
    state = process.sample(_diffusion_oracle(process), BATCH, types, 4, n_steps,
                           torch.Generator().manual_seed(0))
    torch.testing.assert_close(state.lattices, LATTICE, atol=2e-3, rtol=0)
    assert wrapped_displacement(state.frac_coords - FRAC).abs().max() < 0.02
    assert torch.equal(state.types, types)  # CSP: types are never touched


def test_diffusion_sampler_from_a_template() -> None:
    process = DiffusionProcess(DiffusionConfig(timesteps=200))
    template = State(LATTICE + 0.05, wrap(FRAC + 0.03), torch.eye(4)[:3])
    state = process.sample(_diffusion_oracle(process), BATCH, template.types, 4, None,
                           torch.Generator().manual_seed(0), init=template, noise_level=0.3)
    torch.testing.assert_close(state.lattices, LATTICE, atol=2e-3, rtol=0)
    assert wrapped_displacement(state.frac_coords - FRAC).abs().max() < 0.02


@pytest.mark.parametrize("noise_level", [1.0, 0.4])
def test_flow_sampler_reaches_the_data_with_an_oracle(noise_level: float) -> None:
    process = FlowProcess(FlowConfig(n_steps=50))
    template = State(LATTICE + 0.05, wrap(FRAC + 0.03), torch.eye(4)[:3])

    def net(t, types, frac, lattices):
        remaining = 1 - t[0]
        return BackboneOutput(
            (LATTICE - lattices) / remaining,
            wrapped_displacement(FRAC - frac) / remaining,
            (torch.eye(4)[:3] - types) / remaining,
        )

    state = process.sample(net, BATCH, None, 4, None, torch.Generator().manual_seed(0),
                           init=template, noise_level=noise_level)
    torch.testing.assert_close(state.lattices, LATTICE, atol=1e-4, rtol=0)
    assert wrapped_displacement(state.frac_coords - FRAC).abs().max() < 1e-4
    assert state.types.argmax(-1).tolist() == [0, 1, 2]


@pytest.mark.parametrize("process", [DiffusionProcess(), FlowProcess()])
def test_losses_of_a_null_network(process) -> None:
    """Every loss term is reported, finite and positive for a network that predicts zeros."""
    clean = State(LATTICE, FRAC, torch.eye(4)[:3])
    zero = process.loss(lambda t, a, x, lat: BackboneOutput(torch.zeros_like(lat), torch.zeros_like(x),
                                                            torch.zeros_like(a)), clean, BATCH, True)
    assert set(zero) >= {"loss", "loss_lattice", "loss_coord", "loss_type"}
    assert all(math.isfinite(float(v)) and float(v) > 0 for v in zero.values())


def test_masked_type_path_reveals_every_atom_with_the_oracle_type() -> None:
    process = FlowProcess(FlowConfig(n_steps=20, type_path="masked"))
    target = torch.tensor([2, 0, 3])

    def net(t, types, frac, lattices):
        assert ((types == 0) | (types == 1)).all()  # masked rows are zero, revealed are one-hot
        return BackboneOutput(torch.zeros_like(lattices), torch.zeros_like(frac),
                              20.0 * torch.nn.functional.one_hot(target, 4).float())

    state = process.sample(net, BATCH, None, 4, None, torch.Generator().manual_seed(0))
    assert state.types.sum(-1).tolist() == [1.0, 1.0, 1.0]
    assert state.types.argmax(-1).tolist() == target.tolist()


@pytest.mark.parametrize("seed", range(5))
def test_masked_type_path_conditions_later_atoms_on_revealed_ones(seed: int) -> None:
    """An oracle that copies the first revealed type makes every crystal single-element."""
    process = FlowProcess(FlowConfig(n_steps=500, type_path="masked"))  # one reveal per step

    def net(t, types, frac, lattices):
        revealed = types.sum(0)
        logits = torch.zeros(len(types), 4) if revealed.sum() == 0 else 50.0 * revealed.expand(len(types), 4)
        return BackboneOutput(torch.zeros_like(lattices), torch.zeros_like(frac), logits)

    state = process.sample(net, BATCH, None, 4, None, torch.Generator().manual_seed(seed))
    assert len(set(state.types.argmax(-1).tolist())) == 1


def test_masked_type_loss_is_cross_entropy_on_masked_atoms() -> None:
    process = FlowProcess(FlowConfig(type_path="masked"))
    clean = State(LATTICE, FRAC, torch.eye(4)[:3])
    torch.manual_seed(0)
    losses = [process.loss(lambda t, a, x, lat: BackboneOutput(torch.zeros_like(lat), torch.zeros_like(x),
                                                               torch.zeros_like(a)), clean, BATCH, True)
              for _ in range(20)]
    # zero logits over 4 types: the cross-entropy of any masked atom is log 4
    values = {round(float(v["loss_type"]), 6) for v in losses if float(v["loss_type"]) > 0}
    assert values == {round(math.log(4), 6)}
    with pytest.raises(ValueError, match="type_path"):
        FlowConfig(type_path="gaussian")
