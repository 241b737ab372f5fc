"""Summary table and plots of a screening run (E_hull histogram, S.U.N. funnel)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from xtalgen.screen.store import CandidateStore

__all__ = ["funnel_counts", "plot_ehull_histogram", "plot_sun_funnel", "summary_rows"]


def funnel_counts(store: CandidateStore, convention: str = "mattergen") -> list[tuple[str, int]]:
    """(stage, count) from all submitted to S.U.N., each stage a subset of the previous."""
    rows = store.table()
    valid = [r for r in rows if r.get("stage") != "invalid"]
    relaxed = [r for r in valid if math.isfinite(r.get("e_above_hull", math.nan))]
    stable = [r for r in relaxed if r.get(f"stable_{convention}")]
    unique = [r for r in stable if r.get("unique")]
    sun = [r for r in unique if r.get("novel")]
    return [
        ("submitted", len(rows)),
        ("valid", len(valid)),
        ("relaxed + E_hull", len(relaxed)),
        ("stable", len(stable)),
        ("stable + unique", len(unique)),
        ("S.U.N.", len(sun)),
    ]


def summary_rows(metrics: dict[str, dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(metric, mattergen, strict) rows of the stability metrics, formatted."""
    names = [
        ("frac_stable", "stable"),
        ("frac_unique", "unique"),
        ("frac_novel", "novel"),
        ("frac_sun", "S.U.N."),
        ("frac_msun", "metastable S.U.N. (<= 0.1)"),
        ("mean_rmsd", "mean RMSD to relaxed (A)"),
    ]
    out = []
    for key, label in names:
        vals = []
        for conv in ("mattergen", "strict"):
            v = metrics.get(conv, {}).get(key, math.nan)
            vals.append("nan" if v is None or not math.isfinite(v) else f"{v:.3f}")
        out.append((label, vals[0], vals[1]))
    return out


def plot_ehull_histogram(store: CandidateStore, path: str | Path) -> Path:
    """Histogram of E_hull (eV/atom) of the relaxed candidates, thresholds marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = [r["e_above_hull"] for r in store.table() if "e_above_hull" in r]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.hist([min(v, 1.0) for v in values], bins=40, color="tab:blue")
    ax.axvline(0.0, color="k", lw=1, label="strict (0)")
    ax.axvline(0.1, color="tab:red", lw=1, ls="--", label="MatterGen (0.1)")
    ax.set_xlabel("E_hull (eV/atom, clipped at 1)")
    ax.set_ylabel("candidates")
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_sun_funnel(store: CandidateStore, path: str | Path, convention: str = "mattergen") -> Path:
    """Horizontal bar funnel: submitted -> valid -> relaxed -> stable -> unique -> S.U.N."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = funnel_counts(store, convention)
    fig, ax = plt.subplots(figsize=(5, 3))
    labels = [c[0] for c in counts][::-1]
    ax.barh(labels, [c[1] for c in counts][::-1], color="tab:green")
    for y, (_, n) in enumerate(counts[::-1]):
        ax.text(n, y, f" {n}", va="center")
    ax.set_xlabel("candidates")
    ax.set_title(f"S.U.N. funnel ({convention})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
