"""CIF strings to flat crystal arrays, in parallel processes.

Each CIF is read with ``pymatgen.core.Structure.from_str(cif, fmt="cif")``, exactly as CDVAE and
DiffCSP read their CSV files (``build_crystal`` in their ``common/data_utils.py``). Unlike them we
keep the cell as written in the file: no Niggli reduction, no primitive cell, no rebuilding of the
lattice from its parameters (that is a choice of a representation, see
:mod:`xtalgen.representations`). Fractional coordinates are wrapped to [0, 1).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from xtalgen.crystal import SiteOccupancy, wrap_frac_coords

__all__ = ["ParsedCifs", "parse_cifs"]

SERIAL_BELOW = 300
"""Inputs with fewer CIFs than this are parsed in the calling process (no pool start-up)."""


@dataclass
class ParsedCifs:
    """Crystals parsed from a list of CIFs, as concatenated arrays.

    ``lattices`` (n, 3, 3) angstrom, rows are vectors; ``frac_coords`` (sum N, 3) in [0, 1);
    ``species`` (sum N,) atomic numbers; ``num_atoms`` (n,); ``rows`` (n,) index of each crystal
    in the input list; ``occupancies`` one entry per crystal (``None`` when ordered, else one
    entry per site) or ``None`` when every crystal is ordered; ``errors`` (input index, message)
    for each CIF that could not be parsed.
    """

    lattices: np.ndarray
    frac_coords: np.ndarray
    species: np.ndarray
    num_atoms: np.ndarray
    rows: np.ndarray
    occupancies: list[tuple[SiteOccupancy | None, ...] | None] | None
    errors: list[tuple[int, str]]

    @classmethod
    def concat(cls, parts: Sequence[ParsedCifs]) -> ParsedCifs:
        """Concatenate parsed chunks (their ``rows`` are already global)."""
        occ = None
        if any(p.occupancies is not None for p in parts):
            occ = []
            for p in parts:
                occ.extend(p.occupancies if p.occupancies is not None else [None] * len(p.rows))
        return cls(
            lattices=np.concatenate([p.lattices for p in parts]).reshape(-1, 3, 3),
            frac_coords=np.concatenate([p.frac_coords for p in parts]).reshape(-1, 3),
            species=np.concatenate([p.species for p in parts]).astype(np.int16),
            num_atoms=np.concatenate([p.num_atoms for p in parts]).astype(np.int32),
            rows=np.concatenate([p.rows for p in parts]).astype(np.int64),
            occupancies=occ,
            errors=[e for p in parts for e in p.errors],
        )


def _parse_chunk(start: int, cifs: Sequence[str]) -> ParsedCifs:
    """Parse ``cifs`` whose first element has input index ``start``."""
    from pymatgen.core import Structure

    from xtalgen.crystal import Crystal

    lattices, fracs, species, num_atoms, rows, errors = [], [], [], [], [], []
    occupancies: list[tuple[SiteOccupancy | None, ...] | None] = []
    for i, cif in enumerate(cifs):
        try:
            if not isinstance(cif, str) or not cif.strip():
                raise ValueError("empty CIF")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                structure = Structure.from_str(cif, fmt="cif")
            if len(structure) == 0:
                raise ValueError("CIF has no atoms")
            if structure.is_ordered:
                z = np.array(structure.atomic_numbers, dtype=np.int16)
                occ = None
            else:
                crystal = Crystal.from_pymatgen(structure)
                z, occ = crystal.species.astype(np.int16), crystal.site_occupancies
        except Exception as exc:  # any parser failure is reported per row, not raised
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            errors.append((start + i, f"{type(exc).__name__}: {message}"[:300]))
            continue
        lattices.append(structure.lattice.matrix)
        fracs.append(wrap_frac_coords(np.asarray(structure.frac_coords, dtype=np.float64)))
        species.append(z)
        num_atoms.append(len(z))
        rows.append(start + i)
        occupancies.append(occ)
    return ParsedCifs(
        lattices=np.array(lattices, dtype=np.float64).reshape(-1, 3, 3),
        frac_coords=np.concatenate(fracs) if fracs else np.zeros((0, 3)),
        species=np.concatenate(species) if species else np.zeros(0, np.int16),
        num_atoms=np.array(num_atoms, dtype=np.int32),
        rows=np.array(rows, dtype=np.int64),
        occupancies=occupancies if any(o is not None for o in occupancies) else None,
        errors=errors,
    )


def parse_cifs(
    cifs: Sequence[str],
    *,
    progress: bool = True,
    desc: str = "parsing CIFs",
    workers: int | None = None,
    chunk_size: int = 250,
) -> ParsedCifs:
    """Parse CIF strings into :class:`ParsedCifs`, using ``workers`` processes (default: all
    CPUs, at most 8) and a tqdm progress bar. Unparsable CIFs land in ``errors``."""
    from tqdm.auto import tqdm

    cifs = list(cifs)
    n_workers = workers or min(8, os.cpu_count() or 1)
    starts = range(0, len(cifs), chunk_size)
    chunks = [(s, cifs[s : s + chunk_size]) for s in starts]
    bar = tqdm(total=len(cifs), desc=desc, unit="cif", disable=not progress, leave=False)
    parts: list[ParsedCifs] = []
    with bar:
        # daemonic processes (a multiprocessing or Dask worker) may not start a pool of their own
        serial = n_workers <= 1 or len(cifs) < SERIAL_BELOW or mp.current_process().daemon
        if serial:
            for start, chunk in chunks:
                parts.append(_parse_chunk(start, chunk))
                bar.update(len(chunk))
        else:
            with ProcessPoolExecutor(max_workers=n_workers) as pool:
                futures = [pool.submit(_parse_chunk, s, c) for s, c in chunks]
                for future, (_, chunk) in zip(futures, chunks):
                    parts.append(future.result())
                    bar.update(len(chunk))
    if not parts:
        return _parse_chunk(0, [])
    return ParsedCifs.concat(parts)
