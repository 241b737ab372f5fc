"""Property predictors: models that map crystals to a property (formation energy, band gap, ...).

>>> from xtalgen.properties import resolve_property_fn
>>> name, predict = resolve_property_fn("formation-energy-chgnet")
>>> predict(crystals)                     # (N,) eV/atom, NaN where there is no value  # doctest: +SKIP

Modules: ``registry`` (named predictors, ``resolve_property_fn``), ``chgnet`` (the CHGNet
formation-energy proxy of the DNG suite's ``wdist_prop``). Metrics receive a predictor as a
function and never import this package.
"""

from xtalgen.properties.chgnet import chgnet_formation_energy
from xtalgen.properties.registry import PROPERTY_PREDICTORS, PropertyFn, resolve_property_fn

__all__ = ["PROPERTY_PREDICTORS", "PropertyFn", "chgnet_formation_energy", "resolve_property_fn"]
