"""Named property predictors: ``list[Crystal] -> array`` functions that metrics receive.

A property predictor is a model of its own. The metrics never import one: they take any
callable ``list[Crystal] -> (N,) array`` (``PropertyFn``, e.g. ``evaluate_dng(...,
property_fn=...)``), and the caller (``xtalgen evaluate --property``) picks it here by name.

``resolve_property_fn("formation-energy-chgnet")`` returns the shipped CHGNet proxy
(:mod:`xtalgen.properties.chgnet`); ``"package.module:function"`` imports a user's predictor
instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.plugins import import_callable
from xtalgen.properties.chgnet import chgnet_formation_energy

__all__ = ["PROPERTY_PREDICTORS", "PropertyFn", "resolve_property_fn"]

PropertyFn = Callable[[Sequence[Crystal]], np.ndarray]
"""A predictor: crystals -> (N,) values, NaN where it has none (the metrics' ``PropertyFn``)."""

PROPERTY_PREDICTORS: dict[str, PropertyFn] = {"formation-energy-chgnet": chgnet_formation_energy}
"""Named property predictors for ``xtalgen evaluate --property``."""


def resolve_property_fn(spec: str) -> tuple[str, PropertyFn]:
    """(property name, predictor) for a registered name or ``"package.module:function"``."""
    if spec in PROPERTY_PREDICTORS:
        return spec, PROPERTY_PREDICTORS[spec]
    if ":" not in spec:
        known = ", ".join(sorted(PROPERTY_PREDICTORS))
        raise XtalgenError(f"unknown property predictor {spec!r}; use one of {known} "
                           "or package.module:function")
    return spec.partition(":")[2], import_callable(spec, "property predictor")
