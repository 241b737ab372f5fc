"""``xtalgen demo``: a short benchmark on embedded data (no arguments, no network).

Crystal structure prediction on Perov-5 through :mod:`xtalgen.benchmark`: a seeded draw of
test compositions, ``k`` predictions each from every generator with a shipped Perov-5 CSP
checkpoint (one per learned family) and from the energy-free search baselines, scored by the
same CSP suite and printed as one table with the cost beside the quality. The evolutionary
search is left out: its fitness is a CHGNet relaxation, minutes per target on a CPU (run
``xtalgen benchmark --generators all`` for it). Everything comes from files inside the package.
"""

from __future__ import annotations

from pathlib import Path

import typer

DEFAULT_OUT = Path("out/demo")
SLOW = ("evolution",)
"""Generators the demo skips (a potential in the loop: minutes per target on a CPU)."""


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    n_targets: int = typer.Option(50, "--n-targets", help="Perov-5 test compositions to predict."),
    k: int = typer.Option(5, help="Predictions per composition."),
    seed: int = typer.Option(0, help="Seed of the target draw and of every generator."),
    out: Path = typer.Option(DEFAULT_OUT, help="Folder for the table, plots and samples."),
) -> None:
    """Predict Perov-5 test structures with every generator family and print one table."""
    from rich.console import Console

    from xtalgen.benchmark import BenchmarkConfig, available_generators, run_benchmark

    console = Console()
    names = [e.name for e in available_generators("csp", "perov5") if e.name not in SLOW]
    console.print(
        f"[bold]xtalgen demo[/bold]: crystal structure prediction on Perov-5 (bundled), "
        f"{n_targets} test compositions x {k} predictions, generators: {', '.join(names)}"
    )
    config = BenchmarkConfig(task="csp", dataset="perov5", generators=names, n=n_targets, k=k,
                             seed=seed, out=out)
    result = run_benchmark(config)
    typer.echo(result.files["markdown"].read_text())
    for row in result.rows:
        if row.get("error"):
            typer.echo(f"warning: {row['generator']} failed: {row['error']}", err=True)
    console.print(
        f"published on all 3,785 targets: DiffCSP 52.02% (k=1) / 98.60% (k=20). Search methods "
        f"draw from Perov-5 {result.rows[0].get('train_split', 'train')}. Table, plots and "
        f"samples under {out}/ (the samples are cached: a second run is fast)."
    )
