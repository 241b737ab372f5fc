"""Benchmark datasets (MP-20, Perov-5, Carbon-24, MPTS-52) and a user's own structures.

>>> from xtalgen.data import load_dataset
>>> test = load_dataset("mp20", "offline_test")        # bundled: works offline
>>> test[0].properties["formation_energy_per_atom"]     # eV/atom
>>> test.table                                          # material_id + property columns

Standard splits (``train``/``val``/``test``) are bundled where complete, else downloaded with
``xtalgen data download NAME``; offline substitutes are described in :mod:`xtalgen.data.splits`.
"""

from xtalgen.data.cache import cache_dir
from xtalgen.data.dataset import CrystalDataset
from xtalgen.data.download import download_split, git_blob_id, verify_blob
from xtalgen.data.load import list_datasets, load_dataset
from xtalgen.data.registry import DATASETS, reference_file

__all__ = [
    "DATASETS",
    "CrystalDataset",
    "cache_dir",
    "download_split",
    "git_blob_id",
    "list_datasets",
    "load_dataset",
    "reference_file",
    "verify_blob",
]
