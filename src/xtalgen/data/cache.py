"""The on-disk cache: parsed CSV files in a fast binary form, keyed by file content.

Layout under :func:`cache_dir` (``$XTALGEN_CACHE``, else ``~/.cache/xtalgen``)::

    parsed/<sha256 of the source file>-v<FORMAT_VERSION>.npz      crystal arrays + errors
    parsed/<sha256 of the source file>-v<FORMAT_VERSION>.parquet  property table
    downloads/<dataset folder>/<split>.csv                         verified downloads

A changed source file has a new sha256 and therefore a new entry; a change to the parsing code
bumps :data:`FORMAT_VERSION`. Files are written to a temporary name and renamed, so concurrent
processes never read a half-written entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from xtalgen.data.parse import ParsedCifs

__all__ = ["FORMAT_VERSION", "cache_dir", "load_parsed", "save_parsed", "sha256_file"]

FORMAT_VERSION = 1
"""Version of the parsed-file format; bump it when parsing or the layout changes."""


def cache_dir() -> Path:
    """Root of the xtalgen cache: ``$XTALGEN_CACHE`` or ``~/.cache/xtalgen``."""
    root = os.environ.get("XTALGEN_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "xtalgen"


@lru_cache(maxsize=256)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes (memoised per path, size and modification time)."""
    stat = Path(path).stat()
    return _sha256_cached(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


def _entry(sha256: str) -> Path:
    return cache_dir() / "parsed" / f"{sha256}-v{FORMAT_VERSION}"


def _atomic_write(target: Path, write) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=target.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_parsed(sha256: str, parsed: ParsedCifs, table: pd.DataFrame) -> None:
    """Store parsed crystals and their property table (one row per parsed crystal)."""
    entry = _entry(sha256)
    extra = {
        "errors": parsed.errors,
        "occupancies": parsed.occupancies,
        "format_version": FORMAT_VERSION,
    }
    _atomic_write(entry.with_suffix(".parquet"), lambda tmp: table.to_parquet(tmp, index=False))
    _atomic_write(
        entry.with_suffix(".npz"),
        lambda tmp: np.savez(
            tmp,
            lattices=parsed.lattices,
            frac_coords=parsed.frac_coords,
            species=parsed.species,
            num_atoms=parsed.num_atoms,
            rows=parsed.rows,
            extra=np.array(json.dumps(extra)),
        ),
    )


def load_parsed(sha256: str) -> tuple[ParsedCifs, pd.DataFrame] | None:
    """The cached entry for a source file with this sha256, or ``None`` on a miss."""
    entry = _entry(sha256)
    npz_path, table_path = entry.with_suffix(".npz"), entry.with_suffix(".parquet")
    if not (npz_path.is_file() and table_path.is_file()):
        return None
    try:
        with np.load(npz_path, allow_pickle=False) as arrays:
            extra = json.loads(str(arrays["extra"]))
            occ = extra["occupancies"]
            parsed = ParsedCifs(
                lattices=arrays["lattices"],
                frac_coords=arrays["frac_coords"],
                species=arrays["species"],
                num_atoms=arrays["num_atoms"],
                rows=arrays["rows"],
                occupancies=None
                if occ is None
                else [
                    None
                    if sites is None
                    else tuple(None if s is None else tuple(map(tuple, s)) for s in sites)
                    for sites in occ
                ],
                errors=[(int(i), str(m)) for i, m in extra["errors"]],
            )
        table = pd.read_parquet(table_path)
    except (OSError, ValueError, KeyError) as exc:  # a damaged entry is a miss, not a crash
        import warnings

        warnings.warn(f"ignoring damaged cache entry {npz_path}: {exc}", stacklevel=2)
        return None
    if len(table) != len(parsed.rows):
        return None
    return parsed, table
