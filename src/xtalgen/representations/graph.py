"""Crystal graphs: periodic neighbour lists and the fully connected in-cell graph.

Edge convention (everywhere in xtalgen): an edge ``(i, j, image)`` goes from atom i to the
periodic image of atom j shifted by the integer lattice translation ``image``; its vector is

    r_ij = (frac_coords[j] + image - frac_coords[i]) @ lattice      (angstrom)

so ``distances = |r_ij|``. ``encode`` builds the neighbour list of a Crystal within a cutoff
(ase's ``neighbor_list``, all images, both directions i->j and j->i); ``decode`` rebuilds the
edge vectors from fractional coordinates and image offsets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.representations.tensors import CrystalBatch

__all__ = [
    "NeighborList",
    "batch_neighbor_list",
    "decode",
    "edge_vectors",
    "edge_vectors_torch",
    "encode",
    "fully_connected_edges",
    "in_cell_pairs",
    "neighbor_list",
]


@dataclass(frozen=True)
class NeighborList:
    """Directed periodic edges of one crystal (see the module docstring for the convention).

    ``edge_index``: (2, E) int64 (source i, target j); ``image``: (E, 3) int64 lattice shifts of
    the target; ``distances``: (E,) float64 in angstrom, sorted by source then distance.
    """

    edge_index: np.ndarray
    image: np.ndarray
    distances: np.ndarray

    @property
    def num_edges(self) -> int:
        return int(self.distances.shape[0])


def neighbor_list(crystal: Crystal, cutoff: float) -> NeighborList:
    """All pairs (i, j, image) with 0 < |r_ij| <= cutoff (angstrom), self-images included."""
    from ase.neighborlist import neighbor_list as ase_neighbor_list

    if not cutoff > 0:
        raise XtalgenError(f"cutoff must be positive (angstrom), got {cutoff}")
    i, j, image, dist = ase_neighbor_list("ijSd", crystal.to_ase(), float(cutoff))
    order = np.lexsort((dist, i))
    return NeighborList(
        edge_index=np.stack([i[order], j[order]]).astype(np.int64),
        image=image[order].astype(np.int64),
        distances=dist[order].astype(np.float64),
    )


def edge_vectors(
    lattice: np.ndarray, frac_coords: np.ndarray, edge_index: np.ndarray, image: np.ndarray
) -> np.ndarray:
    """(E, 3) Cartesian edge vectors r_ij in angstrom from fractional coordinates and images."""
    src, dst = edge_index
    return (frac_coords[dst] + image - frac_coords[src]) @ lattice


encode = neighbor_list


def decode(crystal: Crystal, graph: NeighborList) -> np.ndarray:
    """Edge vectors (E, 3) of ``graph`` on ``crystal``; their norms equal ``graph.distances``."""
    return edge_vectors(crystal.lattice, crystal.frac_coords, graph.edge_index, graph.image)


# -- batched (torch) ------------------------------------------------------------------------------
def batch_neighbor_list(batch: CrystalBatch, cutoff: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Periodic neighbour list of a whole batch: (edge_index (2, E) long, image (E, 3)).

    Indices are global atom indices of the batch; built on the CPU with ase, returned on the
    batch's device. ``image`` has the dtype of ``batch.frac_coords``.
    """
    edges, images = [], []
    ptr = batch.ptr.tolist()
    for offset, crystal in zip(ptr, batch.to_crystals()):
        graph = neighbor_list(crystal, cutoff)
        edges.append(torch.from_numpy(graph.edge_index) + offset)
        images.append(torch.from_numpy(graph.image))
    edge_index = torch.cat(edges, dim=1).to(batch.device)
    image = torch.cat(images).to(device=batch.device, dtype=batch.frac_coords.dtype)
    return edge_index, image


def edge_vectors_torch(
    batch: CrystalBatch, edge_index: torch.Tensor, image: torch.Tensor
) -> torch.Tensor:
    """(E, 3) Cartesian edge vectors (angstrom) of a batch; differentiable in coords and lattice."""
    src, dst = edge_index
    frac = batch.frac_coords[dst] + image - batch.frac_coords[src]
    return torch.einsum("ei,eij->ej", frac, batch.lattices[batch.batch[src]])


def in_cell_pairs(
    num_atoms: torch.Tensor, *, self_pairs: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All ordered pairs ``(i, j)`` of atoms of the same crystal of a batch.

    ``num_atoms`` (B,) gives the crystals' sizes; atoms are numbered globally, crystal after
    crystal. Returns ``(src, dst, graph)``: (E,) long tensors of atom indices and the crystal of
    each pair, sorted by source then destination; E = sum(n_b ** 2) with ``self_pairs`` (the
    backbone's message graph) and sum(n_b (n_b - 1)) without.
    """
    device = num_atoms.device
    ptr = torch.cumsum(num_atoms, 0) - num_atoms
    n_pairs = num_atoms * num_atoms
    graph = torch.repeat_interleave(torch.arange(len(num_atoms), device=device), n_pairs)
    pair_ptr = torch.cumsum(n_pairs, 0) - n_pairs
    local = torch.arange(int(n_pairs.sum()), device=device) - pair_ptr[graph]
    n = num_atoms[graph]
    src, dst = local // n + ptr[graph], local % n + ptr[graph]
    if not self_pairs:
        keep = src != dst
        src, dst, graph = src[keep], dst[keep], graph[keep]
    return src, dst, graph


def fully_connected_edges(batch: CrystalBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """All ordered pairs i != j within each crystal, and their periodic fractional differences.

    Returns ``edge_index`` (2, E) long with E = sum_b n_b (n_b - 1) (global indices, sorted by
    source) and ``frac_diff`` (E, 3) = frac[j] - frac[i] wrapped to [-0.5, 0.5), the
    minimum-image difference in fractional space used by DiffCSP-style denoisers.
    """
    if int(batch.num_atoms.min()) < 1:
        raise XtalgenError("every crystal of the batch needs at least one atom")
    src, dst, _ = in_cell_pairs(batch.num_atoms)
    edge_index = torch.stack([src, dst])
    diff = batch.frac_coords[dst] - batch.frac_coords[src]
    return edge_index, diff - torch.floor(diff + 0.5)
