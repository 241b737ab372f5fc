"""CrystalBatch: round trip from/to Crystal records, shapes, DataLoader collate."""

from __future__ import annotations

import pytest
import torch

from test_representations_examples import EXAMPLES
from xtalgen.errors import XtalgenError
from xtalgen.representations.tensors import CrystalBatch, collate


@pytest.fixture(scope="module")
def crystals():
    return [build() for build in EXAMPLES.values()]


def test_from_to_crystals_round_trip(crystals) -> None:
    batch = CrystalBatch.from_crystals(crystals, dtype=torch.float64)
    assert batch.num_graphs == len(crystals)
    n = sum(c.num_sites for c in crystals)
    assert batch.frac_coords.shape == (n, 3)
    assert batch.lattices.shape == (len(crystals), 3, 3)
    assert batch.atom_types.dtype == torch.long
    assert batch.num_atoms.tolist() == [c.num_sites for c in crystals]
    assert batch.batch.tolist() == [i for i, c in enumerate(crystals) for _ in range(c.num_sites)]
    back = batch.to_crystals()
    assert len(back) == len(crystals)
    for a, b in zip(crystals, back):
        assert a.allclose(b, atol=1e-10)


def test_float32_round_trip_and_cart_coords(crystals) -> None:
    batch = CrystalBatch.from_crystals(crystals)
    assert batch.frac_coords.dtype == torch.float32
    for a, b in zip(crystals, batch.to_crystals()):
        assert a.allclose(b, atol=1e-5)
    cart = torch.cat([torch.from_numpy(c.cart_coords) for c in crystals]).float()
    assert torch.allclose(batch.cart_coords, cart, atol=1e-4)
    assert batch.to("cpu").device.type == "cpu"
    assert batch.ptr.tolist()[-1] == len(batch.frac_coords)


def test_dataloader_collate(crystals) -> None:
    loader = torch.utils.data.DataLoader(crystals, batch_size=4, collate_fn=collate)
    batches = list(loader)
    assert [b.num_graphs for b in batches] == [4, 2]
    assert sum(int(b.num_atoms.sum()) for b in batches) == sum(c.num_sites for c in crystals)


def test_bad_input() -> None:
    with pytest.raises(XtalgenError):
        CrystalBatch.from_crystals([])
    with pytest.raises(XtalgenError):
        CrystalBatch(
            lattices=torch.eye(3)[None],
            frac_coords=torch.zeros(2, 3),
            atom_types=torch.ones(2, dtype=torch.long),
            num_atoms=torch.tensor([3]),
            batch=torch.zeros(2, dtype=torch.long),
        )
