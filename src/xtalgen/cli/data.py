"""``xtalgen data``: list the benchmark datasets, describe one, download the missing splits."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

data_app = typer.Typer(
    help="Benchmark datasets (MP-20, Perov-5, Carbon-24, MPTS-52) and a user's structures.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")


@data_app.command("list")
def list_command() -> None:
    """The datasets, their splits, published row counts and what is available offline."""
    from rich.console import Console
    from rich.table import Table

    from xtalgen.data import list_datasets

    table = Table(title="xtalgen datasets (rows: published for train/val/test, else as bundled)")
    for column in ("dataset", "split", "rows", "available", "description"):
        table.add_column(column, overflow="fold")
    for name, info in list_datasets().items():
        for i, (split, s) in enumerate(info["splits"].items()):
            where = "bundled" if s["bundled"] else "downloaded" if s["downloaded"] else "download"
            rows = f"{s['rows']:,}" if s["rows"] is not None else "-"
            label = name if i == 0 else ""
            table.add_row(label, split, rows, where, s["description"])
        table.add_section()
    Console().print(table)


@data_app.command("info")
def info_command(
    dataset: Annotated[str, typer.Argument(help="Dataset name (mp20, ...) or a CSV / folder.")],
    split: Annotated[
        str | None, typer.Option("--split", "-s", help="Split of a named dataset.")
    ] = None,
    top: Annotated[int, typer.Option(help="How many elements / space groups to list.")] = 15,
    plot: Annotated[
        Path | None, typer.Option(help="Also write histograms to this image (.png).")
    ] = None,
) -> None:
    """Counts, element and space-group histograms and atoms per cell of a dataset."""
    from rich.console import Console
    from rich.table import Table

    from xtalgen.data import load_dataset
    from xtalgen.data.download import downloaded_path
    from xtalgen.data.registry import DATASETS, get_spec
    from xtalgen.data.summary import plot_summary, summarize
    from xtalgen.errors import XtalgenError

    if split is None and dataset.strip().lower() in {
        k for s in DATASETS.values() for k in (s.name, *s.aliases)
    }:
        spec = get_spec(dataset)
        has_train = "train" in spec.bundled or downloaded_path(spec, "train") is not None
        split = "train" if has_train else "offline_train"
    if top < 1:
        raise XtalgenError(f"--top must be at least 1, got {top}")
    ds = load_dataset(dataset, split)
    summary = summarize(ds)
    console = Console()

    head = Table(title=f"{ds.name} {ds.split or ''}".strip(), show_header=False)
    head.add_row("crystals", f"{summary.num_crystals:,}")
    head.add_row("atoms", f"{summary.num_atoms:,}")
    head.add_row("distinct elements", str(len(summary.elements)))
    head.add_row("distinct space groups", str(len(summary.spacegroups)))
    stats = summary.atoms_stats
    head.add_row(
        "atoms per cell",
        f"min {stats['min']:.0f}, median {stats['median']:.0f}, mean {stats['mean']:.2f}, "
        f"max {stats['max']:.0f}",
    )
    head.add_row("unreadable rows", str(summary.num_errors))
    head.add_row("property columns", ", ".join(map(str, ds.table.columns)))
    known = {k for s in DATASETS.values() for k in (s.name, *s.aliases)}
    if dataset.strip().lower() in known:
        missing = [c for c in get_spec(dataset).property_columns if c not in ds.table.columns]
        if missing:
            head.add_row("missing here", f"{', '.join(missing)} (this split is bundled as "
                         "structures only; no values are invented)")
    console.print(head)

    def counts(title: str, key: str, items: list[tuple[object, int]]) -> Table:
        table = Table(title=title)
        table.add_column(key)
        table.add_column("crystals", justify="right")
        table.add_column("share", justify="right")
        for k, n in items:
            table.add_row(str(k), f"{n:,}", f"{100 * n / summary.num_crystals:.1f}%")
        return table

    console.print(counts("top elements", "element", summary.elements.most_common(top)))
    console.print(f"space groups from {summary.spacegroup_source}")
    console.print(counts("top space groups", "space group", summary.spacegroups.most_common(top)))
    console.print(counts("atoms per cell", "atoms", _binned(summary.atoms_per_cell)))
    if plot is not None:
        plot_summary(summary, plot, top=top)
        console.print(f"wrote {plot}")


@data_app.command("download")
def download_command(
    dataset: Annotated[str, typer.Argument(help="Dataset name: mp20, perov5, carbon24, mpts52.")],
    split: Annotated[
        str | None,
        typer.Option("--split", "-s", help="train, val or test (default: every missing one)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Download again even when cached.")] = False,
) -> None:
    """Fetch the canonical CSV of standard splits (CDVAE / DiffCSP), verify it, cache it."""
    from xtalgen.data import download_split
    from xtalgen.data.registry import STANDARD_SPLITS, get_spec

    spec = get_spec(dataset)
    splits = [split] if split else [s for s in STANDARD_SPLITS if s not in spec.bundled]
    for s in splits:
        path = download_split(spec.name, s, force=force)
        typer.echo(f"{spec.title} {s}: {path}")


def _binned(counter: dict[int, int], max_rows: int = 24) -> list[tuple[object, int]]:
    """Counts per value, or per range of values when there are more than ``max_rows``."""
    values = sorted(counter)
    if len(values) <= max_rows:
        return [(v, counter[v]) for v in values]
    width = -(-(values[-1] - values[0] + 1) // max_rows)  # ceil division
    bins: dict[int, int] = {}
    for v in values:
        start = values[0] + (v - values[0]) // width * width
        bins[start] = bins.get(start, 0) + counter[v]
    return [(f"{b}-{b + width - 1}", n) for b, n in sorted(bins.items())]
