"""The benchmark datasets xtalgen knows: names, standard splits, bundled files, download sources.

Standard splits are those of CDVAE (MP-20, Perov-5, Carbon-24) and DiffCSP (MPTS-52, a
chronological split of Materials Project structures). Only some files are bundled in the package
(``data/files/``, see ``DATA_LICENSES.md``); the others are downloaded on request and checked
against the git blob ids of the CDVAE originals.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from xtalgen.errors import XtalgenError

__all__ = [
    "BUNDLED_DIR",
    "DATASETS",
    "STANDARD_SPLITS",
    "DatasetSpec",
    "bundled_manifest",
    "get_spec",
    "reference_file",
]

BUNDLED_DIR = Path(__file__).parent / "files"
"""Folder of the data files shipped inside the package."""

STANDARD_SPLITS: tuple[str, ...] = ("train", "val", "test")

CDVAE_COMMIT = "f857f598d6f6cca5dc1ea0582d228f12dcc2c2ea"
DIFFCSP_COMMIT = "7121d159826efa2ba9500bf299250d96da37f146"


@dataclass(frozen=True)
class DatasetSpec:
    """One benchmark dataset.

    ``folder`` is the folder name in the CDVAE / DiffCSP repositories and in ``data/files``;
    ``published_rows`` are the row counts of the standard splits; ``bundled`` maps a split name to
    the bundled files (relative to ``data/files``) that hold it completely; ``offline_splits``
    describes the splits built from the bundled files (see :mod:`xtalgen.data.splits`).
    """

    name: str
    title: str
    folder: str
    description: str
    published_rows: dict[str, int]
    bundled: dict[str, tuple[str, ...]]
    offline_splits: dict[str, str]
    download_repo: str
    download_commit: str
    git_blob_ids: dict[str, str] = field(default_factory=dict)
    property_columns: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()

    def download_url(self, split: str) -> str:
        """Raw GitHub URL of the canonical CSV of ``split``."""
        return (
            f"https://raw.githubusercontent.com/{self.download_repo}/{self.download_commit}"
            f"/data/{self.folder}/{split}.csv"
        )

    @property
    def splits(self) -> tuple[str, ...]:
        """Every split name that :func:`xtalgen.data.load_dataset` accepts for this dataset."""
        return STANDARD_SPLITS + tuple(self.offline_splits)


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="mp20",
            title="MP-20",
            folder="mp_20",
            description="45,229 Materials Project structures with at most 20 atoms per cell "
            "(CDVAE split 60/20/20; the paper quotes 45,231).",
            published_rows={"train": 27136, "val": 9047, "test": 9046},
            bundled={
                "pilot_train": ("mp_20/pilot/train.csv.gz",),
                "pilot_val": ("mp_20/pilot/val.csv.gz",),
                "pilot_test": ("mp_20/pilot/test.csv.gz",),
                "biternary_val": ("mp_20/biternary/val.csv.gz",),
                "biternary_test": ("mp_20/biternary/test.csv.gz",),
            },
            offline_splits={
                "offline_train": "97% (seeded) of pilot/train+val + biternary/val, unique ids, "
                "no test ids",
                "offline_val": "the other 3% of that pool",
                "offline_test": "= pilot_test",
                "pilot_test": "first 1,000 rows of the (shuffled) standard test split",
                "biternary_test": "every standard test row with 2-3 elements",
            },
            download_repo="txie-93/cdvae",
            download_commit=CDVAE_COMMIT,
            git_blob_ids={
                "train": "b1c9d498565ac2fd8d075a51ff2ef5e51ba6c21f",
                "val": "7efe4d7ebeb4f460ceaad35e5326c42111d9c9a1",
                "test": "5dc643041df53f5ce4970a79930ad262b4f07acd",
            },
            property_columns=(
                "formation_energy_per_atom",
                "band_gap",
                "pretty_formula",
                "e_above_hull",
                "elements",
                "spacegroup.number",
            ),
            aliases=("mp_20", "mp-20"),
        ),
        DatasetSpec(
            name="perov5",
            title="Perov-5",
            folder="perov_5",
            description="18,928 cubic perovskites ABX3, 5 atoms per cell (Castelli et al. 2012; "
            "CDVAE split 60/20/20).",
            published_rows={"train": 11356, "val": 3787, "test": 3785},
            bundled={
                "train": ("perov_5/train_structures.csv.gz",),  # structures only, no properties
                "val": ("perov_5/val.csv.gz",),
                "test": ("perov_5/test.csv.gz",),
            },
            offline_splits={
                "offline_train": "97% (seeded) of the standard val split (1/3 of train's size)",
                "offline_val": "the other 3% of the standard val split",
                "offline_test": "= the standard test split",
            },
            download_repo="txie-93/cdvae",
            download_commit=CDVAE_COMMIT,
            git_blob_ids={
                "train": "0769074b5d51d293b765c4371b8f55c468c9c9f2",
                "val": "4a2c8dde98347dd0e01fa83dcf3982c2abe98f9f",
                "test": "d3c5d5af4b27a2a139149f2bb73c8a3dba9d8ac1",
            },
            property_columns=("formula", "heat_all", "heat_ref", "dir_gap", "ind_gap"),
            aliases=("perov_5", "perov-5"),
        ),
        DatasetSpec(
            name="carbon24",
            title="Carbon-24",
            folder="carbon_24",
            description="10,153 carbon structures with 6-24 atoms per cell (AIRSS at 10 GPa, "
            "Pickard 2020; CDVAE split 60/20/20).",
            published_rows={"train": 6091, "val": 2032, "test": 2030},
            bundled={
                "train": ("carbon_24/train_structures.csv.gz",),  # structures only, no properties
                "val": ("carbon_24/val.csv.gz",),
                "test": ("carbon_24/test.csv.gz",),
            },
            offline_splits={
                "offline_train": "97% (seeded) of the standard val split (1/3 of train's size)",
                "offline_val": "the other 3% of the standard val split",
                "offline_test": "= the standard test split",
            },
            download_repo="txie-93/cdvae",
            download_commit=CDVAE_COMMIT,
            git_blob_ids={
                "train": "5e7ae970fbad8ddc46b6963e8cd6e425f11783a6",
                "val": "b3e29b927883642426ca1d9632d00359b412742b",
                "test": "9beca843fde489de1fe288b32f9e3ff710d42803",
            },
            property_columns=("energy_per_atom",),
            aliases=("carbon_24", "carbon-24", "carbon"),
        ),
        DatasetSpec(
            name="mpts52",
            title="MPTS-52",
            folder="mpts_52",
            description="40,476 Materials Project structures with at most 52 atoms per cell, "
            "split chronologically (DiffCSP): train oldest, test newest.",
            published_rows={"train": 27380, "val": 5000, "test": 8096},
            bundled={"val": ("mpts_52/val.csv.gz",)},
            offline_splits={
                "offline_train": "standard val rows of years 1997-2001 (chronological)",
                "offline_val": "standard val rows of 2002",
                "offline_test": "standard val rows of 2003-2004",
            },
            download_repo="jiaor17/DiffCSP",
            download_commit=DIFFCSP_COMMIT,
            git_blob_ids={},  # not published in the data README: downloads are not verified
            property_columns=(
                "theoretical",
                "energy_above_hull",
                "formation_energy_per_atom",
                "year",
            ),
            aliases=("mpts_52", "mpts-52"),
        ),
    )
}


def get_spec(name: str) -> DatasetSpec:
    """The dataset called ``name`` (case-insensitive; ``mp20``, ``mp_20`` and ``MP-20`` agree)."""
    key = name.strip().lower()
    for spec in DATASETS.values():
        if key == spec.name or key in spec.aliases:
            return spec
    known = ", ".join(DATASETS)
    raise XtalgenError(
        f"unknown dataset {name!r}: known datasets are {known} (or give a path to a folder of "
        "structure files or a CSV with a 'cif' column)"
    )


@cache
def bundled_manifest() -> dict[str, dict[str, Any]]:
    """``MANIFEST.json`` of the bundled files, keyed by path relative to ``data/files``."""
    entries = json.loads((BUNDLED_DIR / "MANIFEST.json").read_text())
    return {entry["path"]: entry for entry in entries}


def reference_file(name: str) -> Path:
    """Path of a bundled reference file, e.g. ``reference_file('cdvae_constants.json')``."""
    path = BUNDLED_DIR / "reference" / name
    if not path.is_file():
        raise XtalgenError(f"no bundled reference file {name!r} in {path.parent}")
    return path
