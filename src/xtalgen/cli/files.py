"""``xtalgen convert``: structure files from any supported format to any other."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("convert")(convert)


def convert(
    source: Annotated[
        Path, typer.Argument(help="Structure file, or folder of files (read recursively).")
    ],
    target: Annotated[
        Path,
        typer.Argument(help="Output file (format by extension) or folder (a file per structure)."),
    ],
    to: Annotated[
        str | None,
        typer.Option("--to", "-t", help="Output format: cif, poscar, extxyz, json (folder: cif)."),
    ] = None,
) -> None:
    """Convert CIF, POSCAR, extxyz and pymatgen JSON files into one another.

    Each bad input file gives one line 'error: PATH: REASON'; the good ones are still converted.
    Exit status 1 when any input failed.
    """
    from xtalgen import io as xio

    folder_input = source.is_dir()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", xio.StructureFileWarning)
        result = xio.read_many(source, progress=folder_input)
    for record in caught:
        if issubclass(record.category, xio.StructureFileWarning):
            typer.echo(f"warning: {record.message}", err=True)
    for path, reason in result.errors:
        typer.echo(f"error: {path}: {reason}", err=True)

    written: list[Path] = []
    if result.crystals:
        written = xio.write(result.crystals, target, to, progress=folder_input)
    elif not result.errors:
        raise xio.StructureFileError(source, "no structure files found")

    n_files = len(result.files) + len(result.errors)
    where = target if len(written) == 1 else f"{len(written)} files in {target}"
    typer.echo(
        f"converted {len(result.crystals)} structure(s) from {len(result.files)} of {n_files} "
        f"file(s) to {where}"
    )
    if result.errors:
        typer.echo(f"failed: {len(result.errors)} file(s) (reasons above, on stderr)")
        # SystemExit, not typer.Exit: main() runs click with standalone_mode=False, which turns
        # typer.Exit into a return value and loses the exit status.
        raise SystemExit(1)
