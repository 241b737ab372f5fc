"""Writing an evaluation: ``metrics.json``, a per-structure table and a Markdown report with plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xtalgen.errors import XtalgenError
from xtalgen.metrics.evaluation import Evaluation

__all__ = ["write_report"]

TABLE_FORMATS = ("csv", "parquet")


def write_report(
    evaluation: Evaluation,
    out_dir: str | Path,
    *,
    table_format: str = "csv",
    title: str = "xtalgen evaluation",
    plots: bool = True,
) -> dict[str, Path]:
    """Write ``metrics.json``, ``structures.<csv|parquet>``, ``report.md`` (+ ``plots/``).

    Returns the paths written, by kind.
    """
    if table_format not in TABLE_FORMATS:
        raise XtalgenError(f"table format must be one of {TABLE_FORMATS}, got {table_format!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {"metrics": evaluation.write_json(out / "metrics.json")}
    table_path = out / f"structures.{table_format}"
    if table_format == "csv":
        evaluation.table.to_csv(table_path, index=False)
    else:
        evaluation.table.to_parquet(table_path, index=False)
    written["table"] = table_path
    figures = _plots(evaluation, out / "plots") if plots else {}
    written.update({f"plot_{k}": v for k, v in figures.items()})
    written["report"] = _markdown(evaluation, out / "report.md", title, figures, table_path.name)
    return written


def _markdown(ev: Evaluation, path: Path, title: str, figures: dict[str, Path], table: str) -> Path:
    info = ev.info
    lines = [f"# {title}", "", f"Task: **{ev.task.upper()}**; samples: {info.get('num_samples')}; "
             f"test structures: {info.get('num_test')}."]
    refs = info.get("references") or {}
    if refs:
        lines.append("References: " + "; ".join(f"{k}: {v}" for k, v in refs.items()) + ".")
    lines += ["", "| metric | value | counts | meaning |", "|---|---|---|---|"]
    for m in ev.metrics:
        value = "skipped" if m.value is None else f"{m.value:.4f}"
        counts = f"{m.numerator}/{m.denominator}" if m.denominator is not None else ""
        meaning = m.description + (f" *{m.note}*" if m.note else "")
        lines.append(f"| {m.name} | {value} | {counts} | {meaning} |")
    lines += ["", f"Per-structure values: `{table}` (one row per input structure). Every "
              "setting and package version: `metrics.json`.", ""]
    timings = info.get("timings_s") or {}
    if timings:
        lines.append("Timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()) + ".")
        lines.append("")
    for name, fig in figures.items():
        lines += [f"![{name}](plots/{fig.name})", ""]
    path.write_text("\n".join(lines))
    return path


def _plots(ev: Evaluation, folder: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    table, ref = ev.table, ev.reference_values
    panels: list[tuple[str, np.ndarray, np.ndarray | None, str, bool]] = []
    if ev.task == "dng":
        panels = [
            ("density", table["density"].to_numpy(), ref.get("density"), "density (g/cm$^3$)", False),
            ("num_elems", table["num_elems"].to_numpy(), ref.get("num_elems"), "number of elements", True),
            ("num_sites", table["num_sites"].to_numpy(), ref.get("num_sites"), "atoms per cell", True),
            ("space_group", table["space_group"].to_numpy(), ref.get("space_group"), "space group", True),
        ]
    else:
        rms = table["rms_dist"].to_numpy()
        panels = [("rms_dist", rms[np.isfinite(rms)], None, "normalised RMS displacement", False)]
    written = {}
    for name, gen, reference, label, discrete in panels:
        fig, ax = plt.subplots(figsize=(5, 3.2))
        gen = np.asarray(gen, float)
        gen = gen[np.isfinite(gen)]
        data = [gen] + ([np.asarray(reference, float)] if reference is not None else [])
        pooled = np.concatenate([d for d in data if len(d)]) if any(len(d) for d in data) else gen
        if len(pooled) == 0:
            plt.close(fig)
            continue
        if discrete:
            lo, hi = int(np.nanmin(pooled)), int(np.nanmax(pooled))
            bins = np.arange(lo - 0.5, hi + 1.5, 1 if hi - lo < 60 else max(1, (hi - lo) // 60))
        else:
            bins = np.histogram_bin_edges(pooled, bins=40)
        ax.hist(gen, bins=bins, density=True, alpha=0.6, label="samples")
        if reference is not None:
            ax.hist(np.asarray(reference, float), bins=bins, density=True, alpha=0.6, label="reference")
        ax.set_xlabel(label)
        ax.set_ylabel("fraction")
        ax.legend()
        fig.tight_layout()
        target = folder / f"{name}.png"
        fig.savefig(target, dpi=100)
        plt.close(fig)
        written[name] = target
    return written
