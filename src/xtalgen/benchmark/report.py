"""The benchmark's table (Markdown and CSV) and plots (match rate against k, DNG metrics per
generator, quality against cost)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["columns", "markdown_table", "write_outputs"]

COST = ("parameters", "train_s", "sample_s_per_1000", "eval_s")


def columns(task: str, k: int, rows: Sequence[dict[str, Any]]) -> list[str]:
    """The table's columns for ``task``: quality first, then cost, then the error."""
    if task == "csp":
        quality = ["match@1", f"match@{k}", "rmse@1", f"rmse@{k}",
                   "METRe@1", f"METRe@{k}", "cRMSE@1", f"cRMSE@{k}"]
    else:
        quality = ["valid", "struct_valid", "comp_valid", "cov_recall", "cov_precision",
                   "wdist_density", "wdist_num_elems", "wdist_prop", "unique", "novel",
                   "p1_share", "sg_tvd", "sun", "sun_strict"]
    quality = list(dict.fromkeys(quality))  # k = 1: the @1 and @k columns are one
    present = [c for c in quality if any(r.get(c) is not None for r in rows)]
    return ["generator", "kind", *present, *COST, "error"]


PERCENT = {"match@", "METRe@", "valid", "struct_valid", "comp_valid", "cov_recall",
           "cov_precision", "unique", "novel", "p1_share", "sun", "sun_strict"}


def _cell(name: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if name == "parameters":
        return f"{value / 1e6:.2f} M"
    if name in ("train_s", "sample_s_per_1000", "eval_s"):
        return f"{value:.1f}"
    if isinstance(value, float):
        if name in PERCENT or any(name.startswith(p) for p in ("match@", "METRe@")):
            return f"{100 * value:.2f}%"
        return f"{value:.4f}"
    return str(value).replace("|", "/")


def markdown_table(task: str, k: int, rows: Sequence[dict[str, Any]]) -> str:
    """One Markdown table, a row per generator."""
    cols = columns(task, k, rows)
    head = {"parameters": "params", "train_s": "train s", "sample_s_per_1000": "s / 1,000",
            "eval_s": "eval s"}
    lines = ["| " + " | ".join(head.get(c, c) for c in cols) + " |",
             "|" + "---|" * len(cols)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(c, row.get(c)) for c in cols) + " |")
    return "\n".join(lines)


def write_outputs(config: Any, rows: Sequence[dict[str, Any]]) -> dict[str, Path]:
    """``table.md``, ``table.csv`` and the plots into ``config.out``."""
    import pandas as pd

    out = Path(config.out)
    k = config.k
    cols = columns(config.task, k, rows)
    title = (f"{config.task.upper()} on {config.dataset}: "
             + (f"{rows[0].get('n_targets', config.n) if rows else config.n} targets, k={k}"
                if config.task == "csp" else f"{config.n} samples per generator")
             + f", seed {config.seed}")
    files = {"markdown": out / "table.md", "csv": out / "table.csv"}
    files["markdown"].write_text(f"# {title}\n\n{markdown_table(config.task, k, rows)}\n")
    pd.DataFrame([{c: r.get(c) for c in cols} for r in rows]).to_csv(files["csv"], index=False)
    files.update(_plots(config, rows, out))
    return files


def _plots(config: Any, rows: Sequence[dict[str, Any]], out: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if not r.get("error")]
    files: dict[str, Path] = {}
    if not ok:
        return files
    if config.task == "csp":
        fig, ax = plt.subplots(figsize=(6, 4))
        for r in ok:
            curve = r.get("match_curve") or {}
            ks = sorted(int(j) for j in curve)
            ax.plot(ks, [100 * curve[j] if j in curve else 100 * curve[str(j)] for j in ks],
                    marker="o", ms=3, label=r["generator"])
        ax.set(xlabel="k (predictions per target)", ylabel="match rate (%)",
               title=f"CSP on {config.dataset}: match rate against k")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        files["match_vs_k"] = out / "match_vs_k.png"
        fig.tight_layout()
        fig.savefig(files["match_vs_k"], dpi=120)
        plt.close(fig)
        quality, label = f"match@{config.k}", f"match rate @{config.k} (%)"
    else:
        metrics = [m for m in ("valid", "cov_recall", "cov_precision", "unique", "novel",
                               "p1_share", "sun") if any(r.get(m) is not None for r in ok)]
        fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(metrics) + 2), 4))
        width = 0.8 / len(ok)
        for i, r in enumerate(ok):
            ax.bar([j + i * width for j in range(len(metrics))],
                   [100 * (r.get(m) or 0.0) for m in metrics], width, label=r["generator"])
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(metrics))], metrics)
        ax.set(ylabel="%", title=f"DNG on {config.dataset}: {config.n} samples per generator")
        ax.legend(fontsize=7)
        files["dng_metrics"] = out / "dng_metrics.png"
        fig.tight_layout()
        fig.savefig(files["dng_metrics"], dpi=120)
        plt.close(fig)
        quality, label = "cov_recall", "COV-R (%)"
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in ok:
        x, y = r.get("sample_s_per_1000"), r.get(quality)
        if x is None or y is None:
            continue
        ax.scatter(max(x, 1e-2), 100 * y)
        ax.annotate(r["generator"], (max(x, 1e-2), 100 * y), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set(xlabel="sampling seconds per 1,000 crystals (this machine)", ylabel=label,
           title="quality against cost")
    ax.grid(alpha=0.3)
    files["quality_vs_cost"] = out / "quality_vs_cost.png"
    fig.tight_layout()
    fig.savefig(files["quality_vs_cost"], dpi=120)
    plt.close(fig)
    return files
