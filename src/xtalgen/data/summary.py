"""Descriptive statistics of a dataset: elements, space groups, atoms per cell."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xtalgen.crystal import element_symbol
from xtalgen.data.dataset import CrystalDataset

__all__ = ["DatasetSummary", "plot_summary", "spacegroup_numbers", "summarize"]

SYMPREC = 0.1
"""spglib tolerance (angstrom) for space groups computed from structures."""

SPACEGROUP_COLUMNS = ("spacegroup.number", "spacegroup", "space_group", "spg")


@dataclass
class DatasetSummary:
    """Counts over a dataset.

    ``elements``: number of crystals containing each element symbol; ``spacegroups``: crystals
    per international space-group number (0 where spglib failed); ``spacegroup_source``: the
    table column they came from or ``"spglib (symprec=0.1)"``; ``atoms_per_cell``: crystals per
    number of sites.
    """

    name: str
    split: str | None
    num_crystals: int
    num_atoms: int
    num_errors: int
    elements: Counter[str]
    spacegroups: Counter[int]
    spacegroup_source: str
    atoms_per_cell: Counter[int]

    @property
    def atoms_stats(self) -> dict[str, float]:
        """min, median, mean and max atoms per cell."""
        values = np.repeat(list(self.atoms_per_cell), list(self.atoms_per_cell.values()))
        return {
            "min": float(values.min()),
            "median": float(np.median(values)),
            "mean": float(values.mean()),
            "max": float(values.max()),
        }


def spacegroup_numbers(dataset: CrystalDataset, *, progress: bool = True) -> tuple[np.ndarray, str]:
    """Space-group number of each crystal and where it came from: the dataset's column when it
    has one, else spglib with symprec=0.1 (0 where spglib finds none)."""
    for column in SPACEGROUP_COLUMNS:
        if column in dataset.table.columns:
            values = dataset.table[column].to_numpy()
            if np.issubdtype(values.dtype, np.number):
                return values.astype(np.int64), f"column {column!r}"
    import spglib
    from tqdm.auto import tqdm

    numbers = np.zeros(len(dataset), dtype=np.int64)
    for i in tqdm(range(len(dataset)), desc="spglib", disable=not progress, leave=False):
        start, stop = dataset.offsets[i], dataset.offsets[i + 1]
        cell = (dataset.lattices[i], dataset.frac_coords[start:stop], dataset.species[start:stop])
        result = spglib.get_symmetry_dataset(cell, symprec=SYMPREC)
        numbers[i] = result.number if result is not None else 0
    return numbers, f"spglib (symprec={SYMPREC})"


def summarize(dataset: CrystalDataset, *, progress: bool = True) -> DatasetSummary:
    """Element, space-group and atoms-per-cell counts of ``dataset``."""
    elements: Counter[str] = Counter()
    for i in range(len(dataset)):
        present = np.unique(dataset.species[dataset.offsets[i] : dataset.offsets[i + 1]])
        elements.update(element_symbol(int(z)) for z in present)
    numbers, source = spacegroup_numbers(dataset, progress=progress)
    return DatasetSummary(
        name=dataset.name,
        split=dataset.split,
        num_crystals=len(dataset),
        num_atoms=int(dataset.num_atoms.sum()),
        num_errors=len(dataset.errors),
        elements=elements,
        spacegroups=Counter(int(n) for n in numbers),
        spacegroup_source=source,
        atoms_per_cell=Counter(int(n) for n in dataset.num_atoms),
    )


def plot_summary(summary: DatasetSummary, path: Path, *, top: int = 20) -> None:
    """Bar charts of the top elements, the top space groups and atoms per cell, as one image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    elements = summary.elements.most_common(top)
    axes[0].bar([e for e, _ in elements], [c for _, c in elements])
    axes[0].set_title(f"top {len(elements)} elements (crystals containing)")
    axes[0].tick_params(axis="x", rotation=90)
    groups = summary.spacegroups.most_common(top)
    axes[1].bar([str(g) for g, _ in groups], [c for _, c in groups])
    axes[1].set_title(f"top {len(groups)} space groups ({summary.spacegroup_source})")
    axes[1].tick_params(axis="x", rotation=90)
    sizes = sorted(summary.atoms_per_cell.items())
    axes[2].bar([n for n, _ in sizes], [c for _, c in sizes])
    axes[2].set_title("atoms per cell")
    axes[2].set_xlabel("atoms")
    split = f" {summary.split}" if summary.split else ""
    fig.suptitle(f"{summary.name}{split}: {summary.num_crystals:,} crystals")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
