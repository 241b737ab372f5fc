"""The backbone's symmetries on random inputs: rotations, periodic translations, permutations."""

from __future__ import annotations

import pytest
import torch

from xtalgen.nn import Backbone, BackboneConfig, types_to_onehot
from xtalgen.representations.graph import in_cell_pairs


@pytest.fixture(scope="module")
def model() -> Backbone:
    torch.manual_seed(0)
    return Backbone(BackboneConfig(hidden_dim=32, num_layers=2, n_freqs=4, time_dim=16)).double()


@pytest.fixture
def inputs() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    num_atoms = torch.tensor([3, 5, 1])
    n = int(num_atoms.sum())
    return {
        "t": torch.rand(3, generator=g, dtype=torch.float64),
        "type_features": types_to_onehot(torch.randint(1, 90, (n,), generator=g)).double(),
        "frac_coords": torch.rand(n, 3, generator=g, dtype=torch.float64),
        "lattices": 4.0 * torch.eye(3, dtype=torch.float64)
        + torch.randn(3, 3, 3, generator=g, dtype=torch.float64),
        "num_atoms": num_atoms,
        "batch": torch.repeat_interleave(torch.arange(3), num_atoms),
    }


def _random_rotation(seed: int) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(seed)).double())
    q = q * torch.sign(torch.diagonal(r))
    return q  # orthogonal; det may be -1 (a reflection), also a symmetry of the network


def test_rotation_invariance(model: Backbone, inputs: dict) -> None:
    out = model(**inputs)
    rot = _random_rotation(2)
    rotated = dict(inputs, lattices=inputs["lattices"] @ rot.T)  # rows v -> R v
    out_rot = model(**rotated)
    torch.testing.assert_close(out_rot.frac, out.frac)
    torch.testing.assert_close(out_rot.types, out.types)
    torch.testing.assert_close(out_rot.lattice, out.lattice @ rot.T)


def test_periodic_translation_invariance(model: Backbone, inputs: dict) -> None:
    out = model(**inputs)
    g = torch.Generator().manual_seed(3)
    shift = torch.rand(3, 3, generator=g, dtype=torch.float64)[inputs["batch"]]  # per crystal
    lattice_shift = torch.randint(-2, 3, inputs["frac_coords"].shape, generator=g).double()
    moved = dict(inputs, frac_coords=(inputs["frac_coords"] + shift) % 1.0 + lattice_shift)
    out_moved = model(**moved)
    torch.testing.assert_close(out_moved.frac, out.frac)
    torch.testing.assert_close(out_moved.lattice, out.lattice)
    torch.testing.assert_close(out_moved.types, out.types)


def test_permutation_equivariance(model: Backbone, inputs: dict) -> None:
    out = model(**inputs)
    # permute atoms within each crystal (atoms of a crystal stay contiguous)
    perm = torch.cat([torch.tensor([2, 0, 1]), 3 + torch.tensor([4, 1, 3, 0, 2]), torch.tensor([8])])
    permuted = dict(
        inputs,
        type_features=inputs["type_features"][perm],
        frac_coords=inputs["frac_coords"][perm],
    )
    out_perm = model(**permuted)
    torch.testing.assert_close(out_perm.frac, out.frac[perm])
    torch.testing.assert_close(out_perm.types, out.types[perm])
    torch.testing.assert_close(out_perm.lattice, out.lattice)


def test_outputs_depend_on_geometry(model: Backbone, inputs: dict) -> None:
    """Guards the symmetry tests against a network that ignores its inputs."""
    out = model(**inputs)
    moved = dict(inputs, frac_coords=inputs["frac_coords"] + 0.1 * torch.eye(3)[0].double())
    moved["frac_coords"][0, 1] += 0.2  # a non-rigid change of the first crystal
    assert not torch.allclose(model(**moved).frac[:3], out.frac[:3])
    stretched = dict(inputs, lattices=inputs["lattices"] * 1.3)
    assert not torch.allclose(model(**stretched).frac, out.frac)


def test_in_cell_pairs_with_and_without_self_pairs() -> None:
    src, dst, graph = in_cell_pairs(torch.tensor([2, 1]), self_pairs=True)
    assert src.tolist() == [0, 0, 1, 1, 2]
    assert dst.tolist() == [0, 1, 0, 1, 2]
    assert graph.tolist() == [0, 0, 0, 0, 1]
    src, dst, graph = in_cell_pairs(torch.tensor([2, 1]))
    assert (src.tolist(), dst.tolist(), graph.tolist()) == ([0, 1], [1, 0], [0, 0])


def test_ks_lattice_output_is_rotation_invariant(inputs: dict) -> None:
    torch.manual_seed(0)
    config = BackboneConfig(hidden_dim=32, num_layers=2, n_freqs=4, time_dim=16, lattice_output="ks")
    model = Backbone(config).double()
    out = model(**inputs)
    assert out.lattice.shape == (3, 6)
    rotated = dict(inputs, lattices=inputs["lattices"] @ _random_rotation(5).T)
    torch.testing.assert_close(model(**rotated).lattice, out.lattice)
