"""``load_dataset``: a benchmark split by name, or a user's CSV / folder of structure files."""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from xtalgen.data.cache import load_parsed, save_parsed, sha256_file
from xtalgen.data.dataset import CrystalDataset, RowError
from xtalgen.data.download import downloaded_path
from xtalgen.data.parse import parse_cifs
from xtalgen.data.registry import (
    BUNDLED_DIR,
    DATASETS,
    STANDARD_SPLITS,
    DatasetSpec,
    bundled_manifest,
    get_spec,
)
from xtalgen.data.splits import RECIPES, select_rows
from xtalgen.errors import XtalgenError

__all__ = ["count_rows", "list_datasets", "load_csv", "load_dataset", "read_table"]

CSV_SUFFIXES = (".csv", ".csv.gz")


def _is_csv(path: Path) -> bool:
    return path.name.lower().endswith(CSV_SUFFIXES)


def read_table(path: Path, *, usecols: list[str] | None = None) -> pd.DataFrame:
    """Read a dataset CSV (plain or gzip): the pandas index column is dropped and
    ``material_id`` (when present) is a string."""
    try:
        table = pd.read_csv(path, usecols=usecols, low_memory=False)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise XtalgenError(f"cannot read CSV {path}: {exc}") from None
    table = table.drop(columns=[c for c in table.columns if str(c).startswith("Unnamed:")])
    if "material_id" in table.columns:
        table["material_id"] = table["material_id"].astype(str)
    return table


@lru_cache(maxsize=64)
def _material_ids(path: str, sha256: str) -> frozenset[str]:
    return frozenset(read_table(Path(path), usecols=["material_id"])["material_id"])


def load_csv(path: Path, *, name: str, split: str | None, progress: bool = True) -> CrystalDataset:
    """Crystals of a CSV with a ``cif`` column (plus property columns), parsed once and cached
    by the file's sha256. Rows whose CIF does not parse are listed in ``dataset.errors``."""
    path = Path(path)
    sha256 = sha256_file(path)
    cached = load_parsed(sha256)
    if cached is None:
        table = read_table(path)
        if "cif" not in table.columns:
            raise XtalgenError(
                f"{path} has no 'cif' column (columns: {', '.join(map(str, table.columns))})"
            )
        if "material_id" not in table.columns:
            stem = path.name.split(".")[0]
            table.insert(0, "material_id", [f"{stem}-{i}" for i in range(len(table))])
        parsed = parse_cifs(
            table["cif"].tolist(), progress=progress, desc=f"parsing {path.name} (first load)"
        )
        properties = table.drop(columns=["cif"]).iloc[parsed.rows].reset_index(drop=True)
        save_parsed(sha256, parsed, properties)
    else:
        parsed, properties = cached
    errors: list[RowError] = [(str(path), row, message) for row, message in parsed.errors]
    return CrystalDataset(
        lattices=parsed.lattices,
        frac_coords=parsed.frac_coords,
        species=parsed.species,
        num_atoms=parsed.num_atoms,
        table=properties,
        name=name,
        split=split,
        source_files={str(path): sha256},
        occupancies=parsed.occupancies,
        errors=errors,
    )


def _warn_errors(dataset: CrystalDataset, what: str) -> None:
    if dataset.errors:
        file, row, message = dataset.errors[0]
        warnings.warn(
            f"{len(dataset.errors)} entries of {what} could not be read and were skipped "
            f"(listed in dataset.errors); first: {file} row {row}: {message}",
            stacklevel=3,
        )


def _part_files(spec: DatasetSpec, part: str) -> list[Path]:
    return [BUNDLED_DIR / f for f in spec.bundled[part]]


def _standard_split(spec: DatasetSpec, split: str, progress: bool) -> CrystalDataset:
    if split in spec.bundled:
        files = _part_files(spec, split)
    elif (path := downloaded_path(spec, split)) is not None:
        files = [path]
    else:
        raise XtalgenError(
            f"the {spec.title} {split} split ({spec.published_rows[split]:,} rows) is not bundled "
            f"and not downloaded: run `xtalgen data download {spec.name} --split {split}` "
            f"(needs a network), or work offline with split 'offline_{split}' "
            f"({spec.offline_splits[f'offline_{split}']})"
        )
    parts = [load_csv(f, name=spec.name, split=split, progress=progress) for f in files]
    return CrystalDataset.concat(parts, name=spec.name, split=split)


def _offline_split(spec: DatasetSpec, split: str, progress: bool) -> CrystalDataset:
    recipe = RECIPES[spec.name][split]
    parts = [
        load_csv(f, name=spec.name, split=split, progress=progress)
        for part in recipe.parts
        for f in _part_files(spec, part)
    ]
    pool = CrystalDataset.concat(parts, name=spec.name, split=split)
    exclude: set[str] = set()
    for part in recipe.exclude:
        for f in _part_files(spec, part):
            exclude |= _material_ids(str(f), sha256_file(f))
    return pool.subset(select_rows(recipe, pool.table, exclude))


def _load_user_path(path: Path, progress: bool) -> CrystalDataset:
    if path.is_file() and _is_csv(path):
        dataset = load_csv(path, name=path.name.split(".")[0], split=None, progress=progress)
        if len(dataset) == 0:
            raise XtalgenError(
                f"no crystal in {path} could be parsed ({len(dataset.errors)} bad rows)"
            )
        _warn_errors(dataset, str(path))
        return dataset
    try:
        from xtalgen.io import read_many
    except ImportError as exc:
        raise XtalgenError(f"reading structure files needs xtalgen.io ({exc})") from None
    result = read_many(path, progress=progress)
    errors: list[RowError] = []
    for err in result.errors:
        if isinstance(err, tuple) and len(err) == 2:
            errors.append((str(err[0]), -1, str(err[1])))
        else:
            errors.append((str(getattr(err, "path", path)), -1, str(getattr(err, "message", err))))
    if not result.crystals:
        detail = f": {errors[0][0]}: {errors[0][2]}" if errors else ""
        raise XtalgenError(f"no structure could be read from {path}{detail}")
    files = list(getattr(result, "files", None) or ([path] if path.is_file() else []))
    dataset = CrystalDataset.from_crystals(
        result.crystals,
        name=path.stem if path.is_file() else path.name,
        source_files={str(f): sha256_file(f) for f in files},
        errors=errors,
    )
    _warn_errors(dataset, str(path))
    return dataset


def load_dataset(
    name_or_path: str | Path, split: str | None = None, *, progress: bool = True
) -> CrystalDataset:
    """Load a benchmark split or a user's structures as a :class:`CrystalDataset`.

    Args:
        name_or_path: ``mp20``, ``perov5``, ``carbon24`` or ``mpts52`` (see
            :func:`xtalgen.data.list_datasets`), or a path: a CSV (``.csv`` / ``.csv.gz``) with a
            ``cif`` column plus property columns, a structure file, or a folder of them.
        split: for a benchmark, ``train`` / ``val`` / ``test`` (the CDVAE / DiffCSP splits:
            bundled, or downloaded with ``xtalgen data download``) or an offline split
            (``offline_train``, ``offline_val``, ``offline_test``; MP-20 also ``pilot_test`` and
            ``biternary_test``; see :mod:`xtalgen.data.splits`). Must be ``None`` for a path.
        progress: show a progress bar while parsing (first load only; later loads hit the cache).

    Each crystal's ``properties`` hold its row's columns plus ``material_id``, ``dataset`` and
    ``split``. CSV files are parsed once and cached (see :mod:`xtalgen.data.cache`).
    """
    is_path = isinstance(name_or_path, Path)
    if not is_path:
        try:
            spec = get_spec(str(name_or_path))
        except XtalgenError:
            is_path = True
    if is_path:
        if not Path(name_or_path).expanduser().exists():
            raise XtalgenError(
                f"unknown dataset {str(name_or_path)!r}: not one of {', '.join(DATASETS)} and no "
                "such file or folder"
            )
        if split is not None:
            raise XtalgenError(f"split={split!r} applies to a named benchmark dataset, not a path")
        return _load_user_path(Path(name_or_path).expanduser(), progress)
    if split is None:
        raise XtalgenError(
            f"choose a split of {spec.title}: {', '.join(spec.splits)} (bundled offline: "
            f"{', '.join(s for s in spec.splits if s in spec.bundled or s.startswith('offline'))})"
        )
    if split in STANDARD_SPLITS:
        dataset = _standard_split(spec, split, progress)
    elif split in RECIPES[spec.name]:
        dataset = _offline_split(spec, split, progress)
    else:
        raise XtalgenError(
            f"unknown split {split!r} of {spec.title}: choose one of {', '.join(spec.splits)}"
        )
    _warn_errors(dataset, f"{spec.title} {split}")
    return dataset


def count_rows(path: Path) -> int:
    """Number of data rows of a dataset CSV, without parsing its CIFs."""
    return len(read_table(Path(path), usecols=["material_id"]))


def list_datasets() -> dict[str, dict[str, Any]]:
    """Each dataset, its splits, the published row counts and which splits are available offline.

    For every split: ``rows`` (published count for the standard splits, bundled count for the
    bundled subsets, ``None`` for derived offline splits), ``bundled`` (True when it loads from
    the package alone), ``downloaded`` (True when the canonical file is in the download cache)
    and ``description``.
    """
    manifest = bundled_manifest()
    out: dict[str, dict[str, Any]] = {}
    for spec in DATASETS.values():
        splits: dict[str, dict[str, Any]] = {}
        for split in STANDARD_SPLITS:
            splits[split] = {
                "rows": spec.published_rows[split],
                "bundled": split in spec.bundled,
                "downloaded": downloaded_path(spec, split) is not None,
                "description": f"standard {split} split",
            }
        for split, text in spec.offline_splits.items():
            files = spec.bundled.get(split, ())
            splits[split] = {
                "rows": sum(manifest[f]["rows"] for f in files) if files else None,
                "bundled": True,
                "downloaded": False,
                "description": text,
            }
        out[spec.name] = {
            "title": spec.title,
            "description": spec.description,
            "published_rows": dict(spec.published_rows),
            "splits": splits,
            "bundled_files": {
                f: manifest[f]["rows"] for files in spec.bundled.values() for f in files
            },
            "source": f"https://github.com/{spec.download_repo}",
        }
    return out
