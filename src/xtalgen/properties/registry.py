"""Named property predictors: ``list[Crystal] -> array`` functions that metrics receive.

A property predictor is a model of its own. The metrics never import one: they take any
callable ``list[Crystal] -> (N,) array`` (``PropertyFn``, e.g. ``evaluate_dng(...,
property_fn=...)``), and the caller (``xtalgen evaluate --property``) picks it here by name.

``resolve_property_fn("formation-energy-chgnet")`` returns the shipped CHGNet proxy
(:mod:`xtalgen.properties.chgnet`); a property name (``"formation_energy"``, ``"band_gap"``,
``"synthesizability"``), a shipped predictor name (``"mp20-formation-energy"``,
``"mp20-band-gap"``, ``"mpts52-synthesizability"``) or a ``.pt`` checkpoint path returns a
trained predictor (:mod:`xtalgen.properties.predictor`; a shipped file that does not exist yet
gives one error saying how to train it); ``"package.module:function"`` imports a user's
predictor instead. :func:`property_fn_info` says which predictor a function is (name, units,
validation MAE) for ``metrics.json``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.plugins import import_callable
from xtalgen.properties.chgnet import chgnet_formation_energy

__all__ = ["PROPERTY_PREDICTORS", "PropertyFn", "property_fn_info", "resolve_property_fn"]

PropertyFn = Callable[[Sequence[Crystal]], np.ndarray]
"""A predictor: crystals -> (N,) values, NaN where it has none (the metrics' ``PropertyFn``)."""

PROPERTY_PREDICTORS: dict[str, PropertyFn] = {"formation-energy-chgnet": chgnet_formation_energy}
"""Named property predictors for ``xtalgen evaluate --property``."""


def resolve_property_fn(spec: str) -> tuple[str, PropertyFn]:
    """(property name, predictor) for a registered name, a trained predictor (property name,
    shipped predictor name or ``.pt`` path; the name returned is the predictor's) or
    ``"package.module:function"``."""
    from xtalgen.properties.predictor import PROPERTIES
    from xtalgen.properties.trained import is_predictor_spec, load_predictor

    if spec in PROPERTY_PREDICTORS:
        return spec, PROPERTY_PREDICTORS[spec]
    if is_predictor_spec(spec):
        predictor = load_predictor(spec)
        return f"{predictor.prop} ({predictor.name})", predictor
    if ":" not in spec:
        known = ", ".join(sorted(PROPERTY_PREDICTORS) + sorted(PROPERTIES))
        raise XtalgenError(f"unknown property predictor {spec!r}; use one of {known}, a "
                           "predictor checkpoint (.pt) or package.module:function")
    return spec.partition(":")[2], import_callable(spec, "property predictor")


def property_fn_info(fn: PropertyFn) -> dict[str, Any] | None:
    """What a trained predictor is (name, checkpoint, units, validation metrics), for the
    settings of ``wdist_prop``; None for a plain function."""
    info = getattr(fn, "info", None)
    return dict(info) if isinstance(info, dict) else None
