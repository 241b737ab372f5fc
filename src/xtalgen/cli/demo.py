"""``xtalgen demo``: the main job on an embedded default (no arguments, no network)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo() -> None:
    """Load a bundled benchmark set, generate crystals, evaluate them and print a summary table."""
    typer.echo("xtalgen demo: the pipeline is being assembled")
