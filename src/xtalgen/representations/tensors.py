"""``CrystalBatch``: a batch of crystals as flat torch tensors, without padding.

Layout (PyG-style, as in CDVAE / DiffCSP / MatterGen):

* ``lattices``: (B, 3, 3) float, angstrom, rows are lattice vectors.
* ``frac_coords``: (N, 3) float, fractional coordinates in [0, 1); N = total atoms.
* ``atom_types``: (N,) long, atomic numbers (1-118).
* ``num_atoms``: (B,) long, atoms per crystal.
* ``batch``: (N,) long, index of the crystal each atom belongs to.

Atoms of crystal ``i`` are the contiguous slice ``ptr[i]:ptr[i + 1]``. A conditional model's
batch also carries ``conditions``: condition name -> a per-crystal tensor with B rows
(:mod:`xtalgen.models.iterative.conditioning`); None otherwise.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from xtalgen.crystal import Crystal, CrystalError
from xtalgen.errors import XtalgenError

__all__ = ["CrystalBatch", "collate"]


@dataclass
class CrystalBatch:
    """A batch of B crystals with N atoms in total (see the module docstring)."""

    lattices: torch.Tensor
    frac_coords: torch.Tensor
    atom_types: torch.Tensor
    num_atoms: torch.Tensor
    batch: torch.Tensor
    conditions: dict[str, torch.Tensor] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.lattices.ndim != 3 or self.lattices.shape[1:] != (3, 3):
            raise XtalgenError(f"lattices must be (B, 3, 3), got {tuple(self.lattices.shape)}")
        n = self.frac_coords.shape[0]
        if self.frac_coords.shape != (n, 3):
            raise XtalgenError(f"frac_coords must be (N, 3), got {tuple(self.frac_coords.shape)}")
        if self.atom_types.shape != (n,) or self.batch.shape != (n,):
            raise XtalgenError("atom_types and batch must be (N,) with N = len(frac_coords)")
        if self.num_atoms.shape != (self.lattices.shape[0],):
            raise XtalgenError("num_atoms must be (B,) with B = len(lattices)")
        if int(self.num_atoms.sum()) != n:
            raise XtalgenError(f"num_atoms sums to {int(self.num_atoms.sum())}, expected {n}")

    @classmethod
    def from_crystals(
        cls,
        crystals: Sequence[Crystal],
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> CrystalBatch:
        """Stack crystals into one batch (disordered sites keep their majority species)."""
        crystals = list(crystals)
        if not crystals:
            raise XtalgenError("cannot build a CrystalBatch from an empty list of crystals")
        for c in crystals:
            if not isinstance(c, Crystal):
                raise XtalgenError(f"expected Crystal records, got {type(c).__name__}")
        num_atoms = torch.tensor([c.num_sites for c in crystals], dtype=torch.long)
        lattices = torch.from_numpy(np.stack([c.lattice for c in crystals])).to(dtype)
        frac = torch.from_numpy(np.concatenate([c.frac_coords for c in crystals])).to(dtype)
        types = torch.from_numpy(np.concatenate([c.species for c in crystals])).long()
        batch = torch.repeat_interleave(torch.arange(len(crystals)), num_atoms)
        out = cls(lattices, frac, types, num_atoms, batch)
        return out.to(device) if device is not None else out

    def to_crystals(self, invalid_as_none: bool = False) -> list[Crystal | None]:
        """Split back into Crystal records (float64; frac coords wrapped to [0, 1)). With
        ``invalid_as_none``, None where a lattice is degenerate or not finite (a sampler's
        output) instead of the :class:`CrystalError`."""
        lattices = self.lattices.detach().cpu().double().numpy()
        frac = self.frac_coords.detach().cpu().double().numpy()
        types = self.atom_types.detach().cpu().numpy()
        ptr = self.ptr.cpu().numpy()
        out: list[Crystal | None] = []
        for i, (s, e) in enumerate(itertools.pairwise(ptr)):
            try:
                out.append(Crystal(lattice=lattices[i], frac_coords=frac[s:e], species=types[s:e]))
            except CrystalError:
                if not invalid_as_none:
                    raise
                out.append(None)
        return out

    def to(self, device: torch.device | str) -> CrystalBatch:
        """A copy on ``device``."""
        return CrystalBatch(
            lattices=self.lattices.to(device),
            frac_coords=self.frac_coords.to(device),
            atom_types=self.atom_types.to(device),
            num_atoms=self.num_atoms.to(device),
            batch=self.batch.to(device),
            conditions=None if self.conditions is None else {
                k: v.to(device) for k, v in self.conditions.items()},
        )

    @property
    def num_graphs(self) -> int:
        """Number of crystals B."""
        return int(self.lattices.shape[0])

    @property
    def device(self) -> torch.device:
        return self.frac_coords.device

    @property
    def ptr(self) -> torch.Tensor:
        """(B + 1,) offsets: atoms of crystal i are ``ptr[i]:ptr[i + 1]``."""
        zero = torch.zeros(1, dtype=torch.long, device=self.num_atoms.device)
        return torch.cat([zero, torch.cumsum(self.num_atoms, 0)])

    @property
    def cart_coords(self) -> torch.Tensor:
        """(N, 3) Cartesian coordinates in angstrom."""
        return torch.einsum("ni,nij->nj", self.frac_coords, self.lattices[self.batch])

    def __len__(self) -> int:
        return self.num_graphs


def collate(crystals: Sequence[Crystal]) -> CrystalBatch:
    """``collate_fn`` for a torch ``DataLoader`` whose dataset yields Crystal records."""
    return CrystalBatch.from_crystals(crystals)
