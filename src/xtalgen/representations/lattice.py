"""Lattice forms: parameters, reduced cells, and the rotation-invariant symmetric (polar) form.

Conventions: lattice matrices are (..., 3, 3) in angstrom with **rows** = lattice vectors a, b, c;
parameters are (a, b, c, alpha, beta, gamma) in angstrom and degrees, with pymatgen's
``Lattice.from_parameters`` orientation (c along z).

Polar form (DiffCSP++ / MatterGen style). Any lattice factors as ``L = S @ U`` (rows = vectors;
``L.T = U.T @ S`` is the column-vector ``L = U S`` of the papers) with ``U`` orthogonal and
``S = (L @ L.T)^(1/2)`` symmetric positive definite. ``S`` depends only on the Gram matrix, so it
is invariant to rotations of the crystal. Its matrix logarithm is written in a fixed basis of
symmetric matrices, ``log S = sum_i k_i B_i``:

    B0 = E01 + E10, B1 = E02 + E20, B2 = E12 + E21, B3 = diag(1, -1, 0), B4 = diag(1, 1, -2), B5 = I

``k`` (6 floats, unconstrained) is the lattice's log-space coordinate (``lattice_ks`` in
DiffCSP++); ``encode`` maps a lattice to ``k`` and ``decode`` maps ``k`` back to ``S``, which is the
input lattice up to a rotation (same lengths and angles). ``k5`` is log(volume) / 3.
"""

from __future__ import annotations

import numpy as np
import torch

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError

__all__ = [
    "KS_BASIS",
    "decode",
    "encode",
    "ks_to_matrix",
    "ks_to_matrix_torch",
    "lll_reduce",
    "matrix_to_ks",
    "matrix_to_ks_torch",
    "matrix_to_params",
    "matrix_to_params_torch",
    "niggli_reduce",
    "params_to_matrix",
    "params_to_matrix_torch",
    "polar_decomposition",
]

KS_BASIS = np.array(
    [
        [[0, 1, 0], [1, 0, 0], [0, 0, 0]],
        [[0, 0, 1], [0, 0, 0], [1, 0, 0]],
        [[0, 0, 0], [0, 0, 1], [0, 1, 0]],
        [[1, 0, 0], [0, -1, 0], [0, 0, 0]],
        [[1, 0, 0], [0, 1, 0], [0, 0, -2]],
        [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
    ],
    dtype=np.float64,
)
"""(6, 3, 3) symmetric basis of log S (see the module docstring)."""


def _check_matrix(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape[-2:] != (3, 3):
        raise XtalgenError(f"lattice matrices must be (..., 3, 3), got {matrix.shape}")
    if np.any(np.abs(np.linalg.det(matrix)) < 1e-8):
        raise XtalgenError("lattice matrix is singular (zero volume)")
    return matrix


# -- parameters ----------------------------------------------------------------------------------
def matrix_to_params(matrix: np.ndarray) -> np.ndarray:
    """(..., 3, 3) lattice -> (..., 6) parameters (a, b, c in angstrom; alpha, beta, gamma in deg)."""
    matrix = _check_matrix(matrix)
    lengths = np.linalg.norm(matrix, axis=-1)
    a, b, c = (matrix[..., i, :] for i in range(3))

    def angle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        cos = np.sum(u * v, axis=-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))
        return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))

    angles = np.stack([angle(b, c), angle(a, c), angle(a, b)], axis=-1)
    return np.concatenate([lengths, angles], axis=-1)


def params_to_matrix(params: np.ndarray) -> np.ndarray:
    """(6,) parameters -> (3, 3) matrix in pymatgen's ``Lattice.from_parameters`` orientation."""
    from pymatgen.core import Lattice

    params = np.asarray(params, dtype=np.float64).reshape(-1)
    if params.shape != (6,) or not np.all(np.isfinite(params)):
        raise XtalgenError(f"lattice parameters must be 6 finite numbers, got {params.tolist()}")
    a, b, c, alpha, beta, gamma = params
    if min(a, b, c) <= 0 or not all(0 < x < 180 for x in (alpha, beta, gamma)):
        raise XtalgenError(f"invalid lattice parameters {params.tolist()}")
    return _check_matrix(Lattice.from_parameters(a, b, c, alpha, beta, gamma).matrix.copy())


def params_to_matrix_torch(lengths: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """(B, 3) lengths (angstrom) and (B, 3) angles (degrees) -> (B, 3, 3); pymatgen orientation."""
    alpha, beta, gamma = torch.deg2rad(angles).unbind(-1)
    val = (torch.cos(alpha) * torch.cos(beta) - torch.cos(gamma)) / (
        torch.sin(alpha) * torch.sin(beta)
    )
    gamma_star = torch.arccos(val.clamp(-1.0, 1.0))
    a, b, c = lengths.unbind(-1)
    zeros = torch.zeros_like(a)
    vec_a = torch.stack([a * torch.sin(beta), zeros, a * torch.cos(beta)], -1)
    vec_b = torch.stack(
        [
            -b * torch.sin(alpha) * torch.cos(gamma_star),
            b * torch.sin(alpha) * torch.sin(gamma_star),
            b * torch.cos(alpha),
        ],
        -1,
    )
    vec_c = torch.stack([zeros, zeros, c], -1)
    return torch.stack([vec_a, vec_b, vec_c], -2)


def matrix_to_params_torch(lattices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 3, 3) lattices -> (lengths (B, 3) angstrom, angles (B, 3) degrees)."""
    lengths = lattices.norm(dim=-1)
    angles = []
    for i, j in ((1, 2), (0, 2), (0, 1)):
        cos = (lattices[..., i, :] * lattices[..., j, :]).sum(-1) / (
            lengths[..., i] * lengths[..., j]
        )
        angles.append(torch.rad2deg(torch.arccos(cos.clamp(-1.0, 1.0))))
    return lengths, torch.stack(angles, -1)


# -- polar (symmetric) form ----------------------------------------------------------------------
def polar_decomposition(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lattice (..., 3, 3) -> (S, U) with ``matrix = S @ U``, S symmetric positive definite."""
    matrix = _check_matrix(matrix)
    eigval, eigvec = np.linalg.eigh(matrix @ np.swapaxes(matrix, -1, -2))
    sym = (eigvec * np.sqrt(eigval)[..., None, :]) @ np.swapaxes(eigvec, -1, -2)
    inv_sym = (eigvec / np.sqrt(eigval)[..., None, :]) @ np.swapaxes(eigvec, -1, -2)
    return sym, inv_sym @ matrix


def _log_sym_to_ks(log_s):  # works for numpy arrays and torch tensors alike
    return [
        log_s[..., 0, 1],
        log_s[..., 0, 2],
        log_s[..., 1, 2],
        (log_s[..., 0, 0] - log_s[..., 1, 1]) / 2,
        (log_s[..., 0, 0] + log_s[..., 1, 1] - 2 * log_s[..., 2, 2]) / 6,
        (log_s[..., 0, 0] + log_s[..., 1, 1] + log_s[..., 2, 2]) / 3,
    ]


def matrix_to_ks(matrix: np.ndarray) -> np.ndarray:
    """Lattice (..., 3, 3) -> (..., 6) log-space coordinates k of its symmetric part S."""
    matrix = _check_matrix(matrix)
    eigval, eigvec = np.linalg.eigh(matrix @ np.swapaxes(matrix, -1, -2))
    log_s = (eigvec * (0.5 * np.log(eigval))[..., None, :]) @ np.swapaxes(eigvec, -1, -2)
    return np.stack(_log_sym_to_ks(log_s), axis=-1)


def ks_to_matrix(ks: np.ndarray) -> np.ndarray:
    """(..., 6) k -> symmetric lattice S = exp(sum_i k_i B_i), (..., 3, 3), rows = vectors."""
    ks = np.asarray(ks, dtype=np.float64)
    if ks.shape[-1] != 6 or not np.all(np.isfinite(ks)):
        raise XtalgenError(f"k-vectors must be (..., 6) finite numbers, got shape {ks.shape}")
    log_s = np.einsum("...i,ijk->...jk", ks, KS_BASIS)
    eigval, eigvec = np.linalg.eigh(log_s)
    return (eigvec * np.exp(eigval)[..., None, :]) @ np.swapaxes(eigvec, -1, -2)


def matrix_to_ks_torch(lattices: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) lattices -> (B, 6) k (differentiable, via ``eigh``)."""
    eigval, eigvec = torch.linalg.eigh(lattices @ lattices.transpose(-1, -2))
    log_s = (eigvec * (0.5 * torch.log(eigval)).unsqueeze(-2)) @ eigvec.transpose(-1, -2)
    return torch.stack(_log_sym_to_ks(log_s), dim=-1)


def ks_to_matrix_torch(ks: torch.Tensor) -> torch.Tensor:
    """(B, 6) k -> (B, 3, 3) symmetric lattices (differentiable, via ``matrix_exp``)."""
    basis = torch.as_tensor(KS_BASIS, dtype=ks.dtype, device=ks.device)
    return torch.linalg.matrix_exp(torch.einsum("...i,ijk->...jk", ks, basis))


encode = matrix_to_ks
decode = ks_to_matrix


# -- reduced cells -------------------------------------------------------------------------------
def _reduce(crystal: Crystal, algo: str) -> Crystal:
    structure = crystal.to_pymatgen().get_reduced_structure(reduction_algo=algo)
    return Crystal.from_pymatgen(structure, properties=dict(crystal.properties))


def niggli_reduce(crystal: Crystal) -> Crystal:
    """The same crystal on its Niggli-reduced cell (pymatgen), sites remapped into it."""
    return _reduce(crystal, "niggli")


def lll_reduce(crystal: Crystal) -> Crystal:
    """The same crystal on its LLL-reduced cell (pymatgen, delta = 0.75), sites remapped."""
    return _reduce(crystal, "LLL")
