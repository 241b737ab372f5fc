"""Hard space-group constraints: Wyckoff-template projections and sampling inside templates."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.models.iterative.diffusion import DiffusionConfig, DiffusionProcess
from xtalgen.models.iterative.flow import FlowProcess
from xtalgen.models.iterative.process import State
from xtalgen.nn.backbone import BackboneOutput
from xtalgen.representations import wyckoff as W
from xtalgen.representations.symmetry_projection import (
    SymmetryProjector,
    SymmetryTemplate,
    lattice_with_metric,
)
from xtalgen.representations.wyckoff import detected_spacegroup

WYCKOFF = {  # space group -> a crystal of it (Wyckoff string), decoded to its primitive cell
    194: "194 | 3.2 3.2 5.2 90 90 120 | Mg 2c",
    166: "166 | 4.3 4.3 30.0 90 90 120 | Bi 6c 0.4 | Te 3a",
    62: "62 | 5.5 7.6 5.4 90 90 90 | Ca 4c 0.03 0.49 | Ti 4b | O 4c 0.08 0.02 | O 8d 0.29 0.04 0.71",
    14: "14 | 5.1 5.2 5.3 90 99 90 | Zr 4e 0.27 0.04 0.21 | O 4e 0.07 0.33 0.34 | O 4e 0.45 0.76 0.48",
}


def crystal_of(group: int, nacl: Crystal) -> Crystal:
    if group == 225:
        return nacl  # the conventional cell: operations include the centring translations
    return W.decode(W.WyckoffRepresentation.from_string(WYCKOFF[group]), primitive=True)


GROUPS = (225, 194, 166, 62, 14)


def _frac_close(a: np.ndarray, b: np.ndarray, atol: float = 1e-9) -> bool:
    diff = a - b
    return bool(np.abs(diff - np.round(diff)).max() < atol)


@pytest.mark.parametrize("group", GROUPS)
def test_template_is_a_fixed_point_and_projection_is_idempotent(group: int, nacl: Crystal) -> None:
    template = SymmetryTemplate.from_crystal(crystal_of(group, nacl))
    assert template.spacegroup == group
    ideal = template.crystal
    assert _frac_close(template.project_frac(ideal.frac_coords), ideal.frac_coords)
    metric = ideal.lattice @ ideal.lattice.T
    np.testing.assert_allclose(template.project_metric(metric), metric, atol=1e-9)

    rng = np.random.default_rng(group)
    once = template.project_frac(rng.random((template.num_sites, 3)))
    assert _frac_close(template.project_frac(once), once)
    g = rng.normal(size=(3, 3))
    g_once = template.project_metric(g @ g.T + 3 * np.eye(3))
    np.testing.assert_allclose(template.project_metric(g_once), g_once, atol=1e-12)


@pytest.mark.parametrize("group", GROUPS)
def test_perturbed_and_random_crystals_regain_the_group(group: int, nacl: Crystal) -> None:
    template = SymmetryTemplate.from_crystal(crystal_of(group, nacl))
    ideal = template.crystal
    rng = np.random.default_rng(0)
    perturbed = ideal.replace(frac_coords=ideal.frac_coords + rng.normal(0, 0.02, (ideal.num_sites, 3)),
                              lattice=ideal.lattice + rng.normal(0, 0.1, (3, 3)))
    assert detected_spacegroup(perturbed, 1e-3) != group
    assert detected_spacegroup(template.project(perturbed), 1e-3) == group
    # even uniformly random positions land inside the template (generic free parameters)
    scrambled = ideal.replace(frac_coords=rng.random((ideal.num_sites, 3)))
    assert detected_spacegroup(template.project(scrambled), 1e-3) == group


def test_metric_projection_gives_the_crystal_system(nacl: Crystal) -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(3, 3))
    metric = a @ a.T + 4 * np.eye(3)
    expect = {  # lattice parameters fixed by the system in the template's cell, free metric parameters
        225: (lambda p: np.allclose(p[:3], p[0]) and np.allclose(p[3:], 90), 1),  # conventional cubic
        194: (lambda p: np.isclose(p[0], p[1]) and np.allclose(p[3:5], 90) and np.isclose(p[5], 120), 2),
        166: (lambda p: True, 2),  # a primitive (Niggli) cell of a rhombohedral lattice
        62: (lambda p: np.allclose(p[3:], 90), 3),
        14: (lambda p: sum(np.isclose(p[3:], 90)) == 2, 4),
    }
    basis = [np.outer(np.eye(3)[i], np.eye(3)[j]) + np.outer(np.eye(3)[j], np.eye(3)[i])
             for i in range(3) for j in range(i, 3)]
    for group, (check, n_free) in expect.items():
        template = SymmetryTemplate.from_crystal(crystal_of(group, nacl))
        projected = template.project_metric(metric)
        for rot in template.rotations:  # W^T G W = G for every operation
            np.testing.assert_allclose(rot.T @ projected @ rot, projected, atol=1e-9)
        images = np.array([template.project_metric(b).ravel() for b in basis])
        assert np.linalg.matrix_rank(images, tol=1e-9) == n_free
        lattice = lattice_with_metric(template.crystal.lattice, projected)
        params = np.array(Crystal(lattice, [[0, 0, 0]], [1]).lattice_parameters)
        assert check(params), (group, params)


def test_template_errors(nacl: Crystal) -> None:
    with pytest.raises(XtalgenError, match="not 194"):
        SymmetryTemplate.from_crystal(nacl, spacegroup=194)
    supercell = Crystal(np.diag([8.24, 4.12, 4.12]), [[0, 0, 0], [0.5, 0, 0], [0.25, 0.5, 0.5], [0.75, 0.5, 0.5]],
                        [55, 55, 17, 17])
    with pytest.raises(XtalgenError, match="primitive=True"):
        SymmetryTemplate.from_crystal(supercell, niggli=False)
    assert SymmetryTemplate.from_crystal(supercell, primitive=True).num_sites == 2
    template = SymmetryTemplate.from_crystal(nacl)
    with pytest.raises(XtalgenError, match="fractional coordinates"):
        template.project_frac(np.zeros((3, 3)))
    assert template.label == "225 | Na a | Cl b"


class _Recorder:
    """A projection that counts its calls and snaps the state with a real projector."""

    def __init__(self, projector: SymmetryProjector) -> None:
        self.projector, self.calls = projector, 0

    def __call__(self, state: State) -> State:
        self.calls += 1
        return self.projector(state)


def _random_net(t, types, frac, lattices):  # any field: the projection must hold regardless
    g = torch.Generator().manual_seed(int(t[0] * 1000))
    return BackboneOutput(torch.randn(lattices.shape, generator=g), torch.randn(frac.shape, generator=g),
                          torch.zeros_like(types))


@pytest.mark.parametrize("process", [FlowProcess(), DiffusionProcess(DiffusionConfig(timesteps=50))])
def test_processes_apply_the_projection_every_step(process, nacl: Crystal) -> None:
    templates = [SymmetryTemplate.from_crystal(crystal_of(g, nacl)) for g in (194, 62)]
    recorder = _Recorder(SymmetryProjector(templates))  # lattices in process space = matrices
    num_atoms = torch.tensor([t.num_sites for t in templates])
    batch = torch.repeat_interleave(torch.arange(2), num_atoms)
    types = torch.zeros((len(batch), 4))
    state = process.sample(_random_net, batch, types, 4, 5, torch.Generator().manual_seed(0),
                           project=recorder)
    per_step = 2 if isinstance(process, DiffusionProcess) else 1
    assert recorder.calls == 1 + per_step * 5
    for i, template in enumerate(templates):
        lattice = state.lattices[i].double().numpy()
        lattice = lattice * (10 * template.num_sites / abs(np.linalg.det(lattice))) ** (1 / 3)  # 10 A^3/atom
        frac = state.frac_coords[batch == i].double().numpy()
        crystal = Crystal(lattice, frac, template.crystal.species)
        assert detected_spacegroup(crystal, 1e-3) == template.spacegroup


@pytest.fixture(scope="module")
def tiny_models(request):
    """Untrained CSP flow and diffusion models with MP-20-like lattice statistics."""
    from xtalgen.models.iterative import CrystalGenerativeModel, IterativeGenerator, ModelConfig
    from xtalgen.nn.backbone import BackboneConfig

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    nacl = request.getfixturevalue("nacl")
    fit = [crystal_of(g, nacl) for g in GROUPS]
    out = {}
    for process in ("flow", "diffusion"):
        torch.manual_seed(0)
        config = ModelConfig(process=process, task="csp", diffusion=DiffusionConfig(timesteps=50),
                             backbone=BackboneConfig(hidden_dim=16, num_layers=1, n_freqs=2, time_dim=8))
        model = CrystalGenerativeModel(config.fit_statistics(fit))
        out[process] = IterativeGenerator(model, n_steps=4)
    yield out
    torch.set_num_threads(previous)


@pytest.mark.parametrize("process", ["flow", "diffusion"])
def test_untrained_model_keeps_the_template_symmetry(process: str, tiny_models, nacl: Crystal) -> None:
    from xtalgen.pipelines.symmetric_sampling import SymmetricSampler

    pool = [crystal_of(g, nacl) for g in GROUPS]
    sampler = SymmetricSampler(tiny_models[process], pool, min_distance=0.5)
    for group in (225, 194, 62, 14):
        out = sampler.generate(3, spacegroup=group, seed=1)
        report = sampler.last_report
        assert report["returned"] + report["given_up"] == 3
        assert out, report
        for crystal in out:
            assert detected_spacegroup(crystal, 0.1) == group
            assert detected_spacegroup(crystal, 0.01) == group
            assert crystal.properties["spacegroup_requested"] == group
            assert crystal.properties["template_source"] == "pool"


def test_sampler_settings_and_template_sources(tiny_models, nacl: Crystal) -> None:
    from xtalgen.pipelines.symmetric_sampling import PoolTemplates, SymmetricSampler

    pool = PoolTemplates([crystal_of(g, nacl) for g in GROUPS])
    assert sorted(pool.spacegroups()) == sorted(GROUPS)
    assert pool.draw(2, spacegroup=221, composition=None, seed=0) == []
    sampler = SymmetricSampler(tiny_models["flow"], pool, noise_level=0.3)
    with pytest.warns(UserWarning, match="returning 0 of 2"):
        assert sampler.generate(2, spacegroup=221) == []
    assert sampler.last_report["failed_attempts"]["no template"] == 6  # 3 rounds of 2
    samples = sampler.sample_templates([crystal_of(194, nacl)], seed=0)
    assert len(samples) == 1 and detected_spacegroup(samples[0], 0.01) == 194
    strict = SymmetricSampler(tiny_models["flow"], pool, enforce_spacegroup=True)
    assert all(detected_spacegroup(c, 0.1) == 62 for c in strict.generate(2, spacegroup=62, seed=3))
    with pytest.raises(XtalgenError, match="noise_level"):
        SymmetricSampler(tiny_models["flow"], pool, noise_level=0.0)
    with pytest.raises(XtalgenError, match="unknown symmetric sampler setting"):
        SymmetricSampler(tiny_models["flow"], pool, steps=3)
