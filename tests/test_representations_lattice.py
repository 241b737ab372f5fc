"""Lattice forms: parameters <-> matrix, polar k-vector round trip, Niggli/LLL reduction."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice
from scipy.spatial.transform import Rotation

from test_representations_examples import EXAMPLES, triclinic
from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.representations import lattice as L

PARAMS = np.array(
    [
        [5.64, 5.64, 5.64, 90, 90, 90],
        [3.1, 3.1, 5.0, 90, 90, 120],
        [4.1, 5.3, 6.2, 81.0, 97.0, 104.0],
        [7.0, 3.2, 9.9, 90, 112.5, 90],
    ]
)


@pytest.mark.parametrize("params", PARAMS)
def test_params_matrix_round_trip(params) -> None:
    matrix = L.params_to_matrix(params)
    np.testing.assert_allclose(matrix, Lattice.from_parameters(*params).matrix, atol=1e-12)
    np.testing.assert_allclose(L.matrix_to_params(matrix), params, atol=1e-9)


def test_torch_params_match_numpy() -> None:
    lengths = torch.tensor(PARAMS[:, :3])
    angles = torch.tensor(PARAMS[:, 3:])
    matrices = L.params_to_matrix_torch(lengths, angles)
    for m, p in zip(matrices.numpy(), PARAMS):
        np.testing.assert_allclose(m, L.params_to_matrix(p), atol=1e-10)
    lengths2, angles2 = L.matrix_to_params_torch(matrices)
    np.testing.assert_allclose(lengths2.numpy(), PARAMS[:, :3], atol=1e-9)
    np.testing.assert_allclose(angles2.numpy(), PARAMS[:, 3:], atol=1e-7)


def test_polar_decomposition() -> None:
    matrix = triclinic().lattice
    sym, rot = L.polar_decomposition(matrix)
    np.testing.assert_allclose(sym @ rot, matrix, atol=1e-10)
    np.testing.assert_allclose(sym, sym.T, atol=1e-12)
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-10)
    assert np.all(np.linalg.eigvalsh(sym) > 0)


def test_ks_round_trip_is_rotation_invariant() -> None:
    matrices = np.stack([L.params_to_matrix(p) for p in PARAMS])
    rotation = Rotation.from_euler("xyz", [0.3, -1.1, 2.0]).as_matrix()
    ks = L.encode(matrices)
    assert ks.shape == (4, 6)
    # rotating the crystal (rows @ R^T) leaves k unchanged
    np.testing.assert_allclose(L.encode(matrices @ rotation.T), ks, atol=1e-10)
    # decode gives the symmetric part: same Gram matrix, hence same lengths and angles
    decoded = L.decode(ks)
    np.testing.assert_allclose(decoded, np.swapaxes(decoded, -1, -2), atol=1e-12)
    np.testing.assert_allclose(L.matrix_to_params(decoded), PARAMS, atol=1e-8)
    np.testing.assert_allclose(L.encode(decoded), ks, atol=1e-10)
    # k5 is log(volume) / 3
    np.testing.assert_allclose(ks[:, 5], np.log(np.abs(np.linalg.det(matrices))) / 3, atol=1e-12)


def test_ks_torch_matches_numpy_and_is_differentiable() -> None:
    matrices = torch.tensor(np.stack([L.params_to_matrix(p) for p in PARAMS]), requires_grad=True)
    ks = L.matrix_to_ks_torch(matrices)
    np.testing.assert_allclose(ks.detach().numpy(), L.encode(matrices.detach().numpy()), atol=1e-10)
    back = L.ks_to_matrix_torch(ks)
    np.testing.assert_allclose(back.detach().numpy(), L.decode(ks.detach().numpy()), atol=1e-10)
    back.sum().backward()
    assert matrices.grad is not None and torch.isfinite(matrices.grad).all()


@pytest.mark.parametrize("name", list(EXAMPLES))
@pytest.mark.parametrize("reduce", [L.niggli_reduce, L.lll_reduce])
def test_reductions_keep_the_structure(name, reduce) -> None:
    crystal = EXAMPLES[name]()
    # skew the cell first so that reduction has work to do
    skew = np.array([[1, 0, 0], [1, 1, 0], [2, -1, 1]])
    skewed = Crystal(
        lattice=skew @ crystal.lattice,
        frac_coords=crystal.frac_coords @ np.linalg.inv(skew),
        species=crystal.species,
        properties={"tag": name},
    )
    reduced = reduce(skewed)
    assert reduced.num_sites == crystal.num_sites
    assert reduced.properties["tag"] == name
    assert np.isclose(reduced.volume, crystal.volume)
    assert (
        np.linalg.norm(reduced.lattice, axis=1).sum() < np.linalg.norm(skewed.lattice, axis=1).sum()
    )
    assert StructureMatcher().fit(reduced.to_pymatgen(), crystal.to_pymatgen())


def test_bad_lattices() -> None:
    with pytest.raises(XtalgenError):
        L.params_to_matrix([1, 2, 3, 90, 90])
    with pytest.raises(XtalgenError):
        L.params_to_matrix([1, 2, -3, 90, 90, 90])
    with pytest.raises(XtalgenError):
        L.encode(np.zeros((3, 3)))
