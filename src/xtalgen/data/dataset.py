"""``CrystalDataset``: a sequence of crystals stored as flat arrays plus a property table.

Crystals are built on access (``dataset[i]``), so loading a cached split of 27,000 structures
costs a few array reads, not 27,000 object constructions.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any, overload

import numpy as np
import pandas as pd

from xtalgen.crystal import Crystal, SiteOccupancy
from xtalgen.errors import XtalgenError

__all__ = ["CrystalDataset", "RowError"]

RowError = tuple[str, int, str]
"""A row that could not be parsed: (source file, row number in that file, message)."""


def _plain(value: Any) -> Any:
    """Numpy scalars to plain Python values (JSON-friendly crystal properties)."""
    return value.item() if isinstance(value, np.generic) else value


class CrystalDataset(Sequence[Crystal]):
    """Crystals of one dataset split.

    Attributes:
        name: dataset name (``mp20``, ..., or the file / folder name of a user's data).
        split: split name (``train``, ``offline_test``, ...) or ``None`` for a user's data.
        table: pandas DataFrame, one row per crystal: ``material_id`` plus the dataset's
            property columns (no ``cif`` column), in dataset order.
        source_files: ``{path: sha256}`` of the files the crystals were read from.
        errors: rows of the source files that could not be parsed (file, row, message).
        lattices: (n, 3, 3) angstrom, rows are lattice vectors.
        frac_coords: (sum of atoms, 3) fractional coordinates in [0, 1), crystal after crystal.
        species: (sum of atoms,) atomic numbers.
        num_atoms: (n,) atoms per cell.
    """

    def __init__(
        self,
        *,
        lattices: np.ndarray,
        frac_coords: np.ndarray,
        species: np.ndarray,
        num_atoms: np.ndarray,
        table: pd.DataFrame,
        name: str,
        split: str | None,
        source_files: dict[str, str] | None = None,
        occupancies: Sequence[tuple[SiteOccupancy | None, ...] | None] | None = None,
        errors: Sequence[RowError] = (),
    ) -> None:
        n = len(num_atoms)
        if lattices.shape != (n, 3, 3) or len(table) != n:
            raise XtalgenError(
                f"inconsistent dataset arrays: {n} crystals, lattices {lattices.shape}, "
                f"{len(table)} table rows"
            )
        if int(np.sum(num_atoms)) != len(species) or frac_coords.shape != (len(species), 3):
            raise XtalgenError("inconsistent dataset arrays: atom counts do not add up")
        if "material_id" not in table.columns:
            raise XtalgenError("a dataset table needs a material_id column")
        self.lattices = lattices
        self.frac_coords = frac_coords
        self.species = species
        self.num_atoms = np.asarray(num_atoms, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.num_atoms)])
        self.table = table.reset_index(drop=True)
        self.name = name
        self.split = split
        self.source_files = dict(source_files or {})
        self.occupancies = list(occupancies) if occupancies is not None else None
        self.errors = list(errors)
        self._records: list[dict[str, Any]] | None = None

    # -- Sequence protocol -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.num_atoms)

    @overload
    def __getitem__(self, index: int) -> Crystal: ...

    @overload
    def __getitem__(self, index: slice) -> CrystalDataset: ...

    def __getitem__(self, index: int | slice) -> Crystal | CrystalDataset:
        if isinstance(index, slice):
            return self.subset(np.arange(len(self))[index])
        if not isinstance(index, (int, np.integer)):
            raise TypeError(f"dataset indices must be int or slice, not {type(index).__name__}")
        i = int(index)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} crystals")
        start, stop = self.offsets[i], self.offsets[i + 1]
        properties = dict(self._row_records()[i])
        properties["dataset"] = self.name
        properties["split"] = self.split
        return Crystal(
            lattice=self.lattices[i],
            frac_coords=self.frac_coords[start:stop],
            species=self.species[start:stop],
            properties=properties,
            site_occupancies=self.occupancies[i] if self.occupancies is not None else None,
        )

    def __iter__(self) -> Iterator[Crystal]:
        for i in range(len(self)):
            yield self[i]

    def _row_records(self) -> list[dict[str, Any]]:
        if self._records is None:
            records = self.table.to_dict(orient="records")
            self._records = [
                {
                    k: None if isinstance(v, float) and math.isnan(v) else _plain(v)
                    for k, v in r.items()
                }
                for r in records
            ]
        return self._records

    # -- selection and combination -----------------------------------------------------------
    def subset(
        self, indices: Sequence[int] | np.ndarray, *, split: str | None = None
    ) -> CrystalDataset:
        """A new dataset with the crystals at ``indices`` (in that order)."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(idx) and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"subset indices out of range for a dataset of {len(self)} crystals")
        idx = np.where(idx < 0, idx + len(self), idx)
        atom_idx = (
            np.concatenate([np.arange(self.offsets[i], self.offsets[i + 1]) for i in idx])
            if len(idx)
            else np.zeros(0, dtype=np.int64)
        )
        return CrystalDataset(
            lattices=self.lattices[idx],
            frac_coords=self.frac_coords[atom_idx],
            species=self.species[atom_idx],
            num_atoms=self.num_atoms[idx],
            table=self.table.iloc[idx],
            name=self.name,
            split=self.split if split is None else split,
            source_files=self.source_files,
            occupancies=[self.occupancies[i] for i in idx] if self.occupancies else None,
            errors=self.errors,
        )

    @classmethod
    def concat(
        cls, parts: Sequence[CrystalDataset], *, name: str, split: str | None
    ) -> CrystalDataset:
        """Concatenate datasets (tables are aligned on their columns)."""
        if not parts:
            raise XtalgenError("cannot concatenate zero datasets")
        occupancies = None
        if any(p.occupancies for p in parts):
            occupancies = [o for p in parts for o in (p.occupancies or [None] * len(p))]
        return cls(
            lattices=np.concatenate([p.lattices for p in parts]).reshape(-1, 3, 3),
            frac_coords=np.concatenate([p.frac_coords for p in parts]).reshape(-1, 3),
            species=np.concatenate([p.species for p in parts]),
            num_atoms=np.concatenate([p.num_atoms for p in parts]),
            table=pd.concat([p.table for p in parts], ignore_index=True),
            name=name,
            split=split,
            source_files={k: v for p in parts for k, v in p.source_files.items()},
            occupancies=occupancies,
            errors=[e for p in parts for e in p.errors],
        )

    # -- conveniences ------------------------------------------------------------------------
    @property
    def material_ids(self) -> list[str]:
        """``material_id`` of each crystal, in order."""
        return self.table["material_id"].astype(str).tolist()

    def to_list(self) -> list[Crystal]:
        """All crystals as a list."""
        return list(self)

    def __repr__(self) -> str:
        split = f", split={self.split!r}" if self.split else ""
        return f"CrystalDataset(name={self.name!r}{split}, {len(self)} crystals)"

    @staticmethod
    def from_crystals(
        crystals: Sequence[Crystal],
        *,
        name: str,
        split: str | None = None,
        source_files: dict[str, str] | None = None,
        errors: Sequence[RowError] = (),
    ) -> CrystalDataset:
        """Pack ``Crystal`` records (e.g. from :func:`xtalgen.io.read_many`) into a dataset.

        The table holds each crystal's properties; a crystal without ``material_id`` gets its
        ``source`` property (the file it came from) or else ``<name>-<index>``.
        """
        if not crystals:
            raise XtalgenError(f"no crystals could be read from {name}")
        records = []
        for i, c in enumerate(crystals):
            row = {k: v for k, v in c.properties.items() if k not in ("dataset", "split")}
            row["material_id"] = str(row.get("material_id") or row.get("source") or f"{name}-{i}")
            records.append(row)
        table = pd.DataFrame.from_records(records)
        table = table[["material_id", *[c for c in table.columns if c != "material_id"]]]
        has_disorder = any(c.site_occupancies is not None for c in crystals)
        return CrystalDataset(
            lattices=np.stack([c.lattice for c in crystals]),
            frac_coords=np.concatenate([c.frac_coords for c in crystals]),
            species=np.concatenate([c.species for c in crystals]).astype(np.int16),
            num_atoms=np.array([c.num_sites for c in crystals]),
            table=table,
            name=name,
            split=split,
            source_files=source_files,
            occupancies=[c.site_occupancies for c in crystals] if has_disorder else None,
            errors=errors,
        )
