"""Crystal graphs: neighbour lists against pymatgen, edge-vector round trip, full graph."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from test_representations_examples import EXAMPLES
from xtalgen.errors import XtalgenError
from xtalgen.representations import graph as G
from xtalgen.representations.tensors import CrystalBatch

CUTOFF = 4.0


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_neighbor_list_matches_pymatgen(name) -> None:
    crystal = EXAMPLES[name]()
    graph = G.encode(crystal, CUTOFF)
    i, j, image, dist = crystal.to_pymatgen().get_neighbor_list(CUTOFF)
    ours = sorted(
        (a, b, *map(int, s), round(d, 8))
        for a, b, s, d in zip(*graph.edge_index, graph.image, graph.distances)
    )
    theirs = sorted((a, b, *map(int, s), round(d, 8)) for a, b, s, d in zip(i, j, image, dist))
    assert graph.num_edges > 0
    assert ours == theirs
    # decode: Cartesian vectors rebuilt from frac coords + images have the listed lengths
    vectors = G.decode(crystal, graph)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), graph.distances, atol=1e-10)
    assert np.all(graph.distances <= CUTOFF) and np.all(graph.distances > 0)


def test_nacl_first_shell() -> None:
    graph = G.encode(EXAMPLES["NaCl"](), 2.9)
    assert graph.num_edges == 8 * 6
    np.testing.assert_allclose(graph.distances, 2.82, atol=1e-9)


def test_batch_neighbor_list_and_vectors() -> None:
    crystals = [build() for build in EXAMPLES.values()]
    batch = CrystalBatch.from_crystals(crystals, dtype=torch.float64)
    edge_index, image = G.batch_neighbor_list(batch, CUTOFF)
    lengths = G.edge_vectors_torch(batch, edge_index, image).norm(dim=1)
    expected = np.concatenate([G.encode(c, CUTOFF).distances for c in crystals])
    np.testing.assert_allclose(lengths.numpy(), expected, atol=1e-10)
    # edges never cross crystals
    assert torch.equal(batch.batch[edge_index[0]], batch.batch[edge_index[1]])


def test_fully_connected_edges() -> None:
    crystals = [EXAMPLES[n]() for n in ("CsCl", "SrTiO3", "NaCl")]
    batch = CrystalBatch.from_crystals(crystals, dtype=torch.float64)
    edge_index, frac_diff = G.fully_connected_edges(batch)
    sizes = [c.num_sites for c in crystals]
    assert edge_index.shape == (2, sum(n * (n - 1) for n in sizes))
    pairs = {tuple(e) for e in edge_index.T.tolist()}
    expected = set()
    start = 0
    for n in sizes:
        expected |= {(start + a, start + b) for a in range(n) for b in range(n) if a != b}
        start += n
    assert pairs == expected
    assert frac_diff.min() >= -0.5 and frac_diff.max() < 0.5
    raw = batch.frac_coords[edge_index[1]] - batch.frac_coords[edge_index[0]]
    shift = raw - frac_diff
    assert torch.allclose(shift, shift.round(), atol=1e-12)


def test_single_atom_crystal_has_no_in_cell_edges() -> None:
    single = EXAMPLES["CsCl"]().replace(frac_coords=[[0, 0, 0]], species=[55])
    batch = CrystalBatch.from_crystals([single, EXAMPLES["CsCl"]()])
    edge_index, frac_diff = G.fully_connected_edges(batch)
    assert edge_index.tolist() == [[1, 2], [2, 1]]
    assert frac_diff.shape == (2, 3)


def test_bad_cutoff() -> None:
    with pytest.raises(XtalgenError):
        G.encode(EXAMPLES["NaCl"](), 0.0)
