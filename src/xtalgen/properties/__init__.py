"""Property predictors: models that map crystals to a property (formation energy, band gap, ...).

>>> from xtalgen.properties import resolve_property_fn
>>> name, predict = resolve_property_fn("formation-energy-chgnet")
>>> predict(crystals)                     # (N,) eV/atom, NaN where there is no value  # doctest: +SKIP

Modules: ``registry`` (named predictors, ``resolve_property_fn``), ``chgnet`` (the CHGNet
formation-energy proxy of the DNG suite's ``wdist_prop``), ``predictor`` (the trained predictors'
network on the shared backbone: formation energy, band gap, synthesisability), ``trained``
(``load_predictor``: a trained predictor by name, and its metrics), ``pu``
(the positive-unlabelled training data and the PU-bagging baseline).
Metrics receive a predictor as a function and never import this package.
"""

from xtalgen.properties.chgnet import chgnet_formation_energy
from xtalgen.properties.predictor import PROPERTIES, PredictorConfig
from xtalgen.properties.registry import (
    PROPERTY_PREDICTORS,
    PropertyFn,
    property_fn_info,
    resolve_property_fn,
)
from xtalgen.properties.trained import Predictor, load_predictor, predictor_metrics

__all__ = ["PROPERTIES", "PROPERTY_PREDICTORS", "Predictor", "PredictorConfig", "PropertyFn",
           "chgnet_formation_energy", "load_predictor", "predictor_metrics", "property_fn_info",
           "resolve_property_fn"]
