"""Download the canonical split files that are not bundled, verify them, keep them in the cache.

The files come from pinned commits of the CDVAE (MP-20, Perov-5, Carbon-24) and DiffCSP
(MPTS-52) repositories and are checked against the git blob id of the original file: the sha1 of
``b"blob <size>\\0" + content``, the id GitHub shows for the file. MPTS-52 has no published
blob id, so its downloads are stored unverified (with a warning).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path

from xtalgen.data.cache import cache_dir
from xtalgen.data.registry import BUNDLED_DIR, STANDARD_SPLITS, DatasetSpec, get_spec
from xtalgen.errors import XtalgenError

__all__ = ["download_split", "downloaded_path", "git_blob_id", "verify_blob"]


def git_blob_id(data: bytes) -> str:
    """Git blob id (hex sha1) of file content ``data``: sha1(b"blob <len>\\0" + data)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def verify_blob(data: bytes, expected: str, *, what: str = "file") -> None:
    """Raise :class:`XtalgenError` unless ``data`` has the git blob id ``expected``."""
    actual = git_blob_id(data)
    if actual != expected.lower():
        raise XtalgenError(
            f"{what} does not match the published file: git blob id {actual}, expected "
            f"{expected} ({len(data):,} bytes received; a truncated download or a changed file)"
        )


LFS_POINTER = b"version https://git-lfs"
RAW_HOST = "https://raw.githubusercontent.com/"
LFS_HOST = "https://media.githubusercontent.com/media/"


def _check_rows(data: bytes, expected: int, *, what: str) -> None:
    """Raise an XtalgenError unless ``data`` is a CSV with a cif column and ``expected`` rows."""
    import io

    import pandas as pd

    try:
        table = pd.read_csv(io.BytesIO(data), usecols=["cif"])
    except (ValueError, pd.errors.ParserError) as exc:
        raise XtalgenError(f"{what} is not a dataset CSV with a 'cif' column ({exc})") from None
    if len(table) != expected:
        raise XtalgenError(f"{what} has {len(table):,} rows, expected the published {expected:,}")


def _download_target(spec: DatasetSpec, split: str) -> Path:
    return cache_dir() / "downloads" / spec.folder / f"{split}.csv"


def downloaded_path(spec: DatasetSpec, split: str) -> Path | None:
    """The cached download of a standard split, or ``None`` when it has not been downloaded."""
    path = _download_target(spec, split)
    return path if path.is_file() else None


def _fetch(url: str, *, timeout: float, progress: bool) -> bytes:
    import urllib.error
    import urllib.request

    from tqdm.auto import tqdm

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            chunks = []
            with tqdm(
                total=total, unit="B", unit_scale=True, desc="download", disable=not progress
            ) as bar:
                for chunk in iter(lambda: response.read(1 << 16), b""):
                    chunks.append(chunk)
                    bar.update(len(chunk))
            return b"".join(chunks)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise XtalgenError(
            f"could not download {url} ({reason}); without a network use the bundled offline "
            "splits (offline_train, offline_val, offline_test)"
        ) from None


def download_split(
    name: str,
    split: str,
    *,
    force: bool = False,
    progress: bool = True,
    timeout: float = 120.0,
) -> Path:
    """Fetch the canonical CSV of a standard split into the cache and return its path.

    A split that is bundled is not downloaded (its bundled path is returned); a split already in
    the cache is returned as it is unless ``force``. Raises :class:`XtalgenError` when offline
    or when the file does not match its published git blob id.
    """
    spec = get_spec(name)
    if split not in STANDARD_SPLITS:
        raise XtalgenError(
            f"only the standard splits ({', '.join(STANDARD_SPLITS)}) can be downloaded, "
            f"not {split!r}"
        )
    if split in spec.bundled and not force:
        (bundled,) = spec.bundled[split]
        return BUNDLED_DIR / bundled
    target = _download_target(spec, split)
    if target.is_file() and not force:
        return target
    url = spec.download_url(split)
    data = _fetch(url, timeout=timeout, progress=progress)
    expected = spec.git_blob_ids.get(split)
    if expected:
        verify_blob(data, expected, what=f"{spec.title} {split} from {url}")
    else:
        if data.startswith(LFS_POINTER):  # a Git LFS file: raw.githubusercontent gives a pointer
            url = url.replace(RAW_HOST, LFS_HOST)
            data = _fetch(url, timeout=timeout, progress=progress)
        _check_rows(data, spec.published_rows[split], what=f"{spec.title} {split} from {url}")
        warnings.warn(
            f"no published git blob id for {spec.title} {split}: checked its row count only "
            f"(sha256 {hashlib.sha256(data).hexdigest()})",
            stacklevel=2,
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, target)
    return target
