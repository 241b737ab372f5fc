"""``read``, ``read_many`` and ``write``: structure files and folders, one error per bad file."""

from __future__ import annotations

import bz2
import gzip
import lzma
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from xtalgen.crystal import Crystal, CrystalError
from xtalgen.io.base import (
    FORMAT_NAMES,
    WRITE_SUFFIX,
    FormatError,
    StructureFileError,
    StructureFileWarning,
    compression,
    detect_format,
    is_poscar_name,
    normalise_format,
    one_line,
    warn_overlaps,
)
from xtalgen.io.cif import read_cif, write_cif
from xtalgen.io.extxyz import read_extxyz, write_extxyz
from xtalgen.io.poscar import read_poscar, write_poscar
from xtalgen.io.pymatgen_json import read_json, write_json

READERS: dict[str, Callable[[str], list[Crystal]]] = {
    "cif": read_cif,
    "poscar": read_poscar,
    "extxyz": read_extxyz,
    "json": read_json,
}
WRITERS: dict[str, Callable[[Sequence[Crystal]], str]] = {
    "cif": write_cif,
    "poscar": write_poscar,
    "extxyz": write_extxyz,
    "json": write_json,
}

_CODECS = {".gz": gzip, ".bz2": bz2, ".xz": lzma}

_IGNORED_WARNINGS = (
    "Issues encountered while parsing CIF",  # a summary repeating the warnings before it
    "The default value of primitive was changed",
)


@dataclass
class ReadResult:
    """What :func:`read_many` found: the crystals of the good files and one reason per bad file."""

    crystals: list[Crystal] = field(default_factory=list)
    errors: list[tuple[Path, str]] = field(default_factory=list)
    """``(path, reason)`` for each file that could not be read."""
    files: list[Path] = field(default_factory=list)
    """The files read successfully."""


def read(path: str | Path) -> list[Crystal]:
    """All crystals in one structure file (several for multi-block CIF, extxyz, JSON lists).

    Raises :class:`StructureFileError` (``"<path>: <reason>"``) for a missing, empty,
    unsupported or malformed file, and for unknown elements, zero-volume or NaN cells. A file is
    read whole or not at all: one bad block or frame fails the file, naming the block or frame.
    Warns (:class:`OverlappingSitesWarning`) when two sites are closer than 0.5 angstrom.
    """
    path = Path(path)
    return _read_file(path, source=path.name)


def read_many(path: str | Path, *, progress: bool = False) -> ReadResult:
    """Read a file or every structure file in a folder, recursively and in sorted order.

    A bad file is reported in ``.errors`` as ``(path, reason)`` and the others are read. Files
    with unsupported extensions are reported too; only hidden files and folders (names starting
    with ``.``) are ignored. ``source`` is the path relative to the folder. A missing ``path``
    raises :class:`StructureFileError`.
    """
    from tqdm import tqdm

    root = Path(path)
    if root.is_dir():
        files = sorted(
            p
            for p in root.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
        )
        sources = [p.relative_to(root).as_posix() for p in files]
    elif root.exists():
        files, sources = [root], [root.name]
    else:
        raise StructureFileError(root, "no such file or folder")

    result = ReadResult()
    bar = tqdm(
        zip(files, sources), total=len(files), desc="reading", unit="file", disable=not progress
    )
    for file, source in bar:
        try:
            crystals = _read_file(file, source=source)
        except StructureFileError as exc:
            result.errors.append((file, exc.reason))
            continue
        result.crystals.extend(crystals)
        result.files.append(file)
    return result


def _read_file(path: Path, source: str) -> list[Crystal]:
    if not path.exists():
        raise StructureFileError(path, "no such file")
    if path.is_dir():
        raise StructureFileError(path, "is a folder, not a file (use read_many for folders)")
    fmt = detect_format(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StructureFileError(path, f"cannot read file ({exc.strerror or exc})") from None
    if compression(path):
        try:
            data = _CODECS[compression(path)].decompress(data)
        except Exception as exc:  # gzip: OSError/EOFError, lzma: LZMAError, bz2: OSError
            raise StructureFileError(path, f"cannot decompress ({exc})") from None
    text = data.decode("utf-8", errors="replace")
    if not text.strip():
        raise StructureFileError(path, "file is empty")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            crystals = READERS[fmt](text)
        except (FormatError, CrystalError) as exc:
            raise StructureFileError(path, str(exc)) from None
        except Exception as exc:  # third-party parsers raise anything on malformed input
            reason = f"not a valid {FORMAT_NAMES[fmt]} file ({type(exc).__name__}: {exc})"
            raise StructureFileError(path, reason) from None
    _forward_warnings(path, caught)
    if not crystals:
        raise StructureFileError(path, f"no structure found in this {FORMAT_NAMES[fmt]} file")

    labelled = []
    for i, crystal in enumerate(crystals):
        suffix = "" if len(crystals) == 1 else f"#{i}"
        warn_overlaps(crystal, f"{path}{suffix}", stacklevel=3)
        labelled.append(crystal.with_properties(source=f"{source}{suffix}"))
    return labelled


def _forward_warnings(path: Path, caught: list[warnings.WarningMessage]) -> None:
    """Re-issue the parsers' warnings once each, as one line naming the file."""
    seen: set[str] = set()
    for record in caught:
        if issubclass(record.category, (DeprecationWarning, PendingDeprecationWarning)):
            continue
        message = one_line(record.message)
        if message in seen or message.startswith(_IGNORED_WARNINGS):
            continue
        seen.add(message)
        category = (
            record.category
            if issubclass(record.category, StructureFileWarning)
            else StructureFileWarning
        )
        warnings.warn(f"{path}: {message}", category, stacklevel=4)


def write(
    crystals: Crystal | Iterable[Crystal],
    path: str | Path,
    fmt: str | None = None,
    *,
    progress: bool = False,
) -> list[Path]:
    """Write crystals to one file (format by extension, or ``fmt``) or to a folder.

    ``path`` is a folder when it is an existing directory or has no suffix (except names starting
    with ``POSCAR``/``CONTCAR``): then one file per crystal, ``<index>_<formula>.<ext>`` (index
    zero-padded to 4 digits), in ``fmt`` (CIF by default). A POSCAR holds one ordered crystal
    and no properties. Nothing is written when a crystal cannot be.
    Returns the paths written.
    """
    from tqdm import tqdm

    path = Path(path)
    items = [crystals] if isinstance(crystals, Crystal) else list(crystals)
    if not items:
        raise StructureFileError(path, "no crystals to write")
    if path.is_dir() or (not path.suffix and not is_poscar_name(path)):
        fmt = normalise_format(fmt or "cif")
        width = max(4, len(str(len(items) - 1)))
        targets = [
            path / f"{i:0{width}d}_{c.formula}{WRITE_SUFFIX[fmt]}" for i, c in enumerate(items)
        ]
        # render everything first, so that a crystal the format cannot hold writes nothing
        texts = [_render([c], t, fmt) for c, t in zip(items, targets)]
        bar = tqdm(targets, desc="writing", unit="file", disable=not progress)
        for target, text in zip(bar, texts):
            _write_text(text, target)
        return targets
    _write_text(_render(items, path, normalise_format(fmt) if fmt else detect_format(path)), path)
    return [path]


def _render(crystals: Sequence[Crystal], path: Path, fmt: str) -> str:
    try:
        return WRITERS[fmt](crystals)
    except FormatError as exc:
        raise StructureFileError(path, str(exc)) from None
    except (TypeError, ValueError) as exc:  # e.g. a property JSON cannot encode
        reason = f"cannot write {FORMAT_NAMES[fmt]} ({type(exc).__name__}: {exc})"
        raise StructureFileError(path, reason) from None


def _write_text(text: str, path: Path) -> None:
    data = text.encode("utf-8")
    if compression(path) == ".gz":
        data = gzip.compress(data, mtime=0)  # reproducible bytes
    elif compression(path):
        data = _CODECS[compression(path)].compress(data)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as exc:
        raise StructureFileError(path, f"cannot write file ({exc.strerror or exc})") from None
