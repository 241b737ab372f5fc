"""Metrics as small, self-describing objects.

A :class:`Metric` carries its number, what the number means, the settings that produced it,
its numerator/denominator where it is a fraction, and per-structure values so a report can
say which structures failed. ``metrics.json`` is the serialisation of a list of them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

__all__ = ["Metric", "fraction", "package_versions", "to_jsonable"]

VERSIONED_PACKAGES = (
    "xtalgen", "pymatgen-core", "pymatgen", "matminer", "smact", "spglib", "numpy", "scipy",
)


@dataclass
class Metric:
    """One reported number.

    Attributes:
        name: short identifier, e.g. ``"cov_recall"``.
        description: what the number means, in one or two sentences.
        value: the number (None when the metric was skipped; ``note`` says why).
        settings: everything that determines the number (cutoffs, presets, seeds, ...).
        numerator, denominator: for fractions, the two counts behind ``value``.
        per_sample: one value per input structure (column ``name`` of the per-structure
            table), or None.
        note: a remark, e.g. why the metric was skipped.
    """

    name: str
    description: str
    value: float | None
    settings: Mapping[str, Any] = field(default_factory=dict)
    numerator: int | None = None
    denominator: int | None = None
    per_sample: np.ndarray | None = None
    note: str | None = None

    @property
    def skipped(self) -> bool:
        return self.value is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dictionary (without the per-sample values)."""
        out: dict[str, Any] = {
            "value": to_jsonable(self.value),
            "description": self.description,
            "settings": to_jsonable(dict(self.settings)),
        }
        if self.denominator is not None:
            out["numerator"] = int(self.numerator or 0)
            out["denominator"] = int(self.denominator)
        if self.note:
            out["note"] = self.note
        return out

    def __repr__(self) -> str:
        shown = "skipped" if self.value is None else f"{self.value:.4g}"
        return f"Metric({self.name}={shown})"


def fraction(
    name: str,
    description: str,
    flags: Iterable[bool] | np.ndarray,
    *,
    denominator: int | None = None,
    settings: Mapping[str, Any] | None = None,
    per_sample: np.ndarray | None = None,
    note: str | None = None,
) -> Metric:
    """A fraction metric: ``sum(flags) / denominator`` (default ``len(flags)``)."""
    flags = np.asarray(list(flags) if not isinstance(flags, np.ndarray) else flags, dtype=bool)
    den = len(flags) if denominator is None else int(denominator)
    num = int(flags.sum())
    value = num / den if den > 0 else None
    return Metric(
        name=name,
        description=description,
        value=value,
        settings=dict(settings or {}),
        numerator=num,
        denominator=den,
        per_sample=flags if per_sample is None else per_sample,
        note=note if den > 0 else (note or "no structures to count"),
    )


def package_versions() -> dict[str, str]:
    """Versions of the packages that determine the numbers."""
    out = {}
    for name in VERSIONED_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def to_jsonable(value: Any) -> Any:
    """numpy scalars/arrays to Python; NaN/inf to None (JSON has neither)."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
