"""``xtalgen predict``: a trained property predictor on a structure file or folder.

Thin over :func:`xtalgen.properties.trained.load_predictor`; training is ``xtalgen train
--model predictor --property NAME`` (the commands of the shipped predictors are in the
docstring of :mod:`xtalgen.properties.predictor`).
"""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path
from typing import Annotated

import typer

from xtalgen.errors import XtalgenError

HELP = (
    "Predict a property of every structure of FILE or FOLDER with a trained predictor: "
    "formation_energy (eV/atom), band_gap (eV) or synthesizability (score in [0, 1] from "
    "positive-unlabelled learning; 0.5 is the decision boundary, not a calibrated probability). "
    "Prints a table and writes a CSV (source, formula, value). NaN: a structure the model "
    "cannot read (partial occupancies, an element it does not know, no sites)."
)


def register(app: typer.Typer) -> None:
    app.command("predict", help=HELP)(predict)


def predict(
    path: Annotated[Path, typer.Argument(help="Structure file or folder (CIF, extxyz, POSCAR, pymatgen JSON).")],
    prop: Annotated[str, typer.Option("--property", help="formation_energy, band_gap or synthesizability (its shipped predictor); with --checkpoint, optional and checked against it.")] = "",
    checkpoint: Annotated[Path | None, typer.Option("--checkpoint", help="Predictor checkpoint (.pt) instead of the shipped one.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV table to write.")] = Path("predictions.csv"),
    batch_size: Annotated[int, typer.Option("--batch-size", help="Crystals per forward pass.")] = 64,
    show: Annotated[int, typer.Option("--show", help="Rows printed (all go to the CSV).")] = 50,
) -> None:
    from rich.console import Console
    from rich.table import Table

    from xtalgen import io as xio
    from xtalgen.properties.predictor import property_spec
    from xtalgen.properties.trained import load_predictor

    if not prop and checkpoint is None:
        raise XtalgenError("give --property formation_energy|band_gap|synthesizability or "
                           "--checkpoint PATH")
    spec = property_spec(prop) if prop else None  # an unknown property fails here
    if batch_size < 1:
        raise XtalgenError(f"--batch-size must be at least 1, got {batch_size}")
    if not path.exists():
        raise XtalgenError(f"{path}: no such file or folder")
    predictor = load_predictor(checkpoint if checkpoint is not None else spec.name,
                               batch_size=batch_size)
    if spec is not None and predictor.prop != spec.name:
        raise XtalgenError(f"{predictor.checkpoint} predicts {predictor.prop}, not {spec.name}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = xio.read_many(path, progress=path.is_dir())
    for bad, reason in result.errors:
        typer.echo(f"warning: skipped {bad}: {reason}", err=True)
    if not result.crystals:
        raise XtalgenError(f"{path}: no structures could be read")
    crystals = result.crystals
    values = predictor(crystals)
    column = f"{predictor.prop} ({predictor.units})"
    sources = [str(c.properties.get("source") or path.name) for c in crystals]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["source", "formula", column])
        for source, crystal, value in zip(sources, crystals, values):
            writer.writerow([source, crystal.formula, "" if math.isnan(value) else f"{value:.6g}"])
    table = Table(title=f"{predictor.name}: {column}")
    for col in ("source", "formula", column):
        table.add_column(col)
    for source, crystal, value in list(zip(sources, crystals, values))[:max(show, 0)]:
        table.add_row(source, crystal.formula, "nan" if math.isnan(value) else f"{value:.4f}")
    console = Console()
    console.print(table)
    if len(crystals) > show:
        console.print(f"... {len(crystals) - show} more rows in {out}")
    n_nan = int(sum(math.isnan(v) for v in values))
    if n_nan:
        typer.echo(f"warning: {n_nan} structure(s) could not be featurised (NaN)", err=True)
    mae = predictor.metrics.get("mae")
    note = f"; validation MAE {mae:.4g} {predictor.units}" if isinstance(mae, float) else ""
    typer.echo(f"-> {out} ({len(crystals)} rows; predictor {predictor.checkpoint}{note})")
