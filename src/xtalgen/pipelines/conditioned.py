"""Conditions for any generator by rejection: draw, keep the crystals that satisfy them, repeat.

``RejectionGenerator(base)`` wraps any :class:`~xtalgen.models.base.Generator` (a checkpoint
or a search method) and serves the four conditions of :mod:`xtalgen.conditions`:

* ``chemical_system``: the crystal's elements are exactly the system's;
* ``spacegroup``: spglib at symprec 0.1 finds the requested group;
* ``band_gap`` / ``formation_energy``: a property predictor's value is within the tolerance of
  the target (:data:`~xtalgen.conditions.DEFAULT_TOLERANCES`: 0.5 eV, 0.1 eV/atom). Default
  predictors: the shipped ones (``mp20-band-gap``, ``mp20-formation-energy``, through
  :func:`xtalgen.properties.trained.load_predictor`); any callable ``list[Crystal] ->
  array`` may replace them (NaN: cannot tell, rejected).

Conditions that the base generator serves itself (its ``native_conditions``, e.g. a space group
for the Wyckoff transformer, or every trained condition of a guided flow model) are passed on
to it and checked all the same, so guidance and rejection combine. Each round asks the base for
as many crystals as the acceptance rate so far says are needed (at least ``min_draw``, at most
``max_draw``), with seed ``seed + round``; after ``max_rounds`` rounds it returns what it has,
with a warning. ``last_report`` gives requested, drawn, accepted, the acceptance rate, the
rounds and the rejections per condition; every kept crystal records its predicted properties
(``predicted_band_gap``, ...) and its detected space group (``detected_spacegroup``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from xtalgen.conditions import (
    DEFAULT_TOLERANCES,
    PROPERTY_COLUMNS,
    Conditions,
    condition_name,
    detect_spacegroup,
)
from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.models.base import Generator

__all__ = ["Predictors", "RejectionGenerator", "check_conditions", "satisfies"]

Predictors = Mapping[str, Callable[[Sequence[Crystal]], np.ndarray]]
"""Property condition name -> a predictor ``list[Crystal] -> (N,) array`` in its units."""


def _predictor(name: str, predictors: Predictors | None) -> Callable[[Sequence[Crystal]], Any]:
    if predictors and name in predictors:
        return predictors[name]
    from xtalgen.properties.trained import load_predictor

    return load_predictor(name)  # the shipped predictor; one clear error if it is missing


def check_conditions(
    crystals: Sequence[Crystal],
    conditions: Conditions,
    *,
    predictors: Predictors | None = None,
    tolerances: Mapping[str, float] | None = None,
    values: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Per condition of ``conditions``, an (N,) bool array: which crystals satisfy it (rules in
    the module docstring). ``values``, if given, receives the predicted / detected values."""
    tol = {**DEFAULT_TOLERANCES, **{condition_name(k): v for k, v in (tolerances or {}).items()}}
    out: dict[str, np.ndarray] = {}
    if conditions.chemical_system is not None:
        system = set(conditions.chemical_system)
        out["chemical_system"] = np.array(
            [{int(z) for z in c.species} == system for c in crystals], dtype=bool)
    if conditions.spacegroup is not None:
        groups = np.array([detect_spacegroup(c) for c in crystals], dtype=np.int64)
        out["spacegroup"] = groups == conditions.spacegroup
        if values is not None:
            values["spacegroup"] = groups
    for name, target in conditions.properties.items():
        predicted = np.asarray(_predictor(name, predictors)(list(crystals)), dtype=float)
        if predicted.shape != (len(crystals),):
            raise XtalgenError(f"the {name} predictor returned shape {predicted.shape} for "
                               f"{len(crystals)} crystals")
        with np.errstate(invalid="ignore"):
            out[name] = np.abs(predicted - target) <= tol[name]  # NaN: False
        if values is not None:
            values[name] = predicted
    return out


def satisfies(
    crystals: Sequence[Crystal],
    conditions: Conditions,
    *,
    predictors: Predictors | None = None,
    tolerances: Mapping[str, float] | None = None,
) -> np.ndarray:
    """(N,) bool: which crystals satisfy every condition (see :func:`check_conditions`)."""
    checks = check_conditions(crystals, conditions, predictors=predictors, tolerances=tolerances)
    keep = np.ones(len(crystals), dtype=bool)
    for ok in checks.values():
        keep &= ok
    return keep


class RejectionGenerator(Generator):
    """Any generator, filtered to the requested conditions (see the module docstring)."""

    def __init__(
        self,
        base: Generator,
        *,
        predictors: Predictors | None = None,
        tolerances: Mapping[str, float] | None = None,
        native: Iterable[str] | None = None,
        max_rounds: int = 10,
        min_draw: int = 16,
        max_draw: int = 10_000,
    ) -> None:
        """``native``: the conditions passed on to ``base`` (default: its
        ``native_conditions``); ``tolerances``: per property, overriding the defaults."""
        if max_rounds < 1 or min_draw < 1 or max_draw < min_draw:
            raise XtalgenError("max_rounds and min_draw must be >= 1 and max_draw >= min_draw")
        self.base = base
        self.predictors = dict(predictors or {})
        self.tolerances = {condition_name(k): float(v) for k, v in (tolerances or {}).items()}
        for name, value in self.tolerances.items():
            if name not in PROPERTY_COLUMNS or not value > 0:
                raise XtalgenError(f"a tolerance is a positive number for band_gap or "
                                   f"formation_energy, got {name}={value}")
        self.native = frozenset(getattr(base, "native_conditions", frozenset())
                                if native is None else (condition_name(n) for n in native))
        self.max_rounds, self.min_draw, self.max_draw = max_rounds, min_draw, max_draw
        self.name = f"{getattr(base, 'name', type(base).__name__)}+filter"
        self.last_report: dict[str, Any] = {}

    @property
    def native_conditions(self) -> frozenset[str]:  # type: ignore[override]
        from xtalgen.conditions import CONDITION_NAMES

        return frozenset(CONDITION_NAMES)

    def generate(
        self,
        n: int,
        *,
        composition: str | Mapping[str, float] | None = None,
        spacegroup: int | None = None,
        condition: Mapping[str, Any] | None = None,
        seed: int | None = None,
    ) -> list[Crystal]:
        """Up to ``n`` crystals of ``base`` that satisfy the conditions (fewer, with a warning,
        when ``max_rounds`` rounds do not find them)."""
        if n < 1:
            raise XtalgenError(f"n must be at least 1, got {n}")
        conditions = Conditions.from_mapping(condition, spacegroup=spacegroup)
        passed = _restrict(conditions, self.native)
        seed = 0 if seed is None else int(seed)
        kept: list[Crystal] = []
        drawn, rounds = 0, 0
        rejected = dict.fromkeys(conditions.names, 0)
        while len(kept) < n and rounds < self.max_rounds:
            rate = (len(kept) + 1) / (drawn + 1)  # optimistic before the first round
            want = math.ceil(1.2 * (n - len(kept)) / rate)
            want = min(max(want, self.min_draw), self.max_draw)
            batch = self.base.generate(
                want, composition=composition, spacegroup=passed.spacegroup,
                condition={k: v for k, v in passed.as_dict().items() if k != "spacegroup"} or None,
                seed=seed + rounds)
            rounds += 1
            drawn += len(batch)
            if not batch:
                continue
            values: dict[str, np.ndarray] = {}
            checks = check_conditions(batch, conditions, predictors=self.predictors,
                                      tolerances=self.tolerances, values=values)
            keep = np.ones(len(batch), dtype=bool)
            for name, ok in checks.items():
                rejected[name] += int((~ok).sum())
                keep &= ok
            for i in np.flatnonzero(keep):
                extra: dict[str, Any] = {f"condition_{k}": v for k, v in conditions.as_dict().items()}
                extra.update({f"predicted_{k}": float(v[i]) for k, v in values.items()
                              if k in PROPERTY_COLUMNS})
                if "spacegroup" in values:
                    extra["detected_spacegroup"] = int(values["spacegroup"][i])
                extra["filter_round"] = rounds
                kept.append(batch[i].with_properties(**extra))
        kept = kept[:n]
        self.last_report = {
            "requested": n, "drawn": drawn, "accepted": len(kept),
            "acceptance_rate": len(kept) / drawn if drawn else 0.0, "rounds": rounds,
            "rejected": rejected, "conditions": conditions.as_dict(),
            "native": sorted(set(passed.names)),
        }
        if len(kept) < n:
            warnings.warn(f"{self.name}: only {len(kept)} of {n} crystals satisfied "
                          f"{conditions.describe()} in {drawn} draws ({rounds} rounds)",
                          stacklevel=2)
        return kept


def _restrict(conditions: Conditions, names: frozenset[str]) -> Conditions:
    """The part of ``conditions`` named in ``names``."""
    return replace(
        conditions,
        chemical_system=conditions.chemical_system if "chemical_system" in names else None,
        spacegroup=conditions.spacegroup if "spacegroup" in names else None,
        properties={k: v for k, v in conditions.properties.items() if k in names},
    )
