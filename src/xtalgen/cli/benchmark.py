"""``xtalgen benchmark``: every generator through one CSP or DNG protocol, with cost."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("benchmark")(benchmark)


def benchmark(
    task: Annotated[str, typer.Option(help="csp (composition given) or dng (de novo).")] = "csp",
    dataset: Annotated[str, typer.Option(help="perov5, mp20, carbon24 or mpts52.")] = "perov5",
    generators: Annotated[
        str,
        typer.Option(help="'all' (registered search methods and the shipped checkpoints of "
                     "this dataset and task) or names / checkpoint files, comma-separated; "
                     "templated-csp:CHECKPOINT runs a CSP checkpoint from retrieved templates."),
    ] = "all",
    n: Annotated[int, typer.Option(help="CSP: test targets (0 = all); DNG: samples.")] = 100,
    k: Annotated[int, typer.Option(help="CSP: predictions per target.")] = 20,
    seed: Annotated[int, typer.Option(help="Seed of the targets and of every generator.")] = 0,
    out: Annotated[Path, typer.Option(help="Output folder (table, plots, sample cache).")] = Path(
        "benchmark"),
    steps: Annotated[
        int | None, typer.Option(help="Integration steps of iterative models (default: each "
                                 "checkpoint's own).")
    ] = None,
    corrected: Annotated[
        bool, typer.Option(help="CSP: also METRe and cRMSE (duplicate-aware; Carbon-24).")
    ] = False,
    stability: Annotated[
        bool, typer.Option(help="DNG: S.U.N. of the first --n-sun samples (CHGNet, bundled "
                           "hull; minutes per 100).")
    ] = False,
    n_sun: Annotated[int, typer.Option(help="DNG: samples screened for S.U.N.")] = 200,
    prop: Annotated[
        str | None, typer.Option("--property", help="DNG: predictor of the property distance "
                                 "wdist_prop, e.g. formation_energy (the shipped MP-20 "
                                 "predictor, CDVAE's W(E_form)); default: none.")
    ] = None,
    split: Annotated[str, typer.Option(help="Test split ('auto': test, else offline_test).")
                     ] = "auto",
    jobs: Annotated[int, typer.Option(help="Worker processes for evaluation (0 = all CPUs).")
                    ] = 0,
    time_limit: Annotated[
        float | None, typer.Option(help="Seconds of sampling per generator in this run; a "
                                   "generator past it is a row with that error (its finished "
                                   "chunks stay cached for the next run).")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Run generators through one protocol and print one table with quality and cost.

    The same targets (a seeded draw of the test split), seeds and evaluation for every
    generator; samples are cached per generator and seed under OUT/cache, so the command
    resumes after an interruption. A generator that fails is a row with its error. Writes
    OUT/table.md, OUT/table.csv, OUT/benchmark.json and plots (match rate against k or the DNG
    metrics, and quality against cost).
    """
    from rich.console import Console

    from xtalgen.benchmark import BenchmarkConfig, run_benchmark

    config = BenchmarkConfig(task=task, dataset=dataset, generators=generators, n=n, k=k,
                             seed=seed, out=out, n_steps=steps, corrected=corrected,
                             stability=stability, n_sun=n_sun, property=prop, split=split,
                             n_jobs=None if jobs <= 0 else jobs, time_limit_s=time_limit,
                             progress=progress)
    result = run_benchmark(config)
    console = Console()
    typer.echo(result.files["markdown"].read_text())
    failed = [r for r in result.rows if r.get("error")]
    for row in failed:
        typer.echo(f"warning: {row['generator']} failed: {row['error']}", err=True)
    shown = ", ".join(str(p) for p in result.files.values())
    console.print(f"-> {shown}; harness overhead {result.overhead_s:.1f} s")
