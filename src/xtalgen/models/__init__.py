"""Generators: one module per family, all behind :class:`xtalgen.models.base.Generator`."""

from xtalgen.models.base import Generator, load_generator
from xtalgen.models.checkpoint import load_model

__all__ = ["Generator", "load_generator", "load_model"]
