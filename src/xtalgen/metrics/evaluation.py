"""The result of an evaluation: metrics, a per-structure table and what they were computed on."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xtalgen.metrics.core import Metric, package_versions, to_jsonable

__all__ = ["Evaluation"]


@dataclass
class Evaluation:
    """Metrics of one sample set against one reference.

    Attributes:
        task: ``"dng"`` or ``"csp"``.
        metrics: the reported numbers, in report order.
        table: one row per input structure (validity flags, distances, matches, ...).
        info: sample counts, reference names and sizes, timings (s), settings shared by all.
        reference_values: per-reference-structure arrays used for plots (density, ...).
    """

    task: str
    metrics: list[Metric]
    table: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)
    reference_values: dict[str, np.ndarray] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Metric:
        for metric in self.metrics:
            if metric.name == name:
                return metric
        raise KeyError(name)

    def values(self) -> dict[str, float | None]:
        """``{name: value}`` of every metric."""
        return {m.name: m.value for m in self.metrics}

    def to_dict(self) -> dict[str, Any]:
        """The content of ``metrics.json``."""
        return {
            "task": self.task,
            "metrics": {m.name: m.to_dict() for m in self.metrics},
            "info": to_jsonable(self.info),
            "versions": package_versions(),
        }

    def write_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    def summary(self) -> str:
        """One line per metric: name, value, counts."""
        lines = []
        for m in self.metrics:
            value = "skipped" if m.value is None else f"{m.value:.4f}"
            counts = f"  ({m.numerator}/{m.denominator})" if m.denominator is not None else ""
            lines.append(f"{m.name:<24} {value}{counts}")
        return "\n".join(lines)
