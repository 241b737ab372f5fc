"""Generators: one module per family, all behind :class:`xtalgen.models.base.Generator`."""

from xtalgen.models.base import Generator
from xtalgen.models.learned import load_model
from xtalgen.models.registry import GENERATORS, load_generator

__all__ = ["GENERATORS", "Generator", "load_generator", "load_model"]
