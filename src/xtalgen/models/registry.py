"""Every generator by name: the registered search methods, the shipped checkpoints, a file.

``load_generator("random-search")`` builds a registered generator (:data:`GENERATORS`, given
as ``"module:Class"`` strings, imported when asked for); ``load_generator("perov5-csp-flow")``
or ``load_generator(path)`` loads a checkpoint of any learned family
(:func:`xtalgen.models.learned.load_model`).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from xtalgen.checkpoints import shipped_checkpoints
from xtalgen.errors import XtalgenError
from xtalgen.models.base import Generator
from xtalgen.models.learned import load_model

__all__ = ["GENERATORS", "generator_class", "load_generator"]


GENERATORS: dict[str, str] = {
    "random-search": "xtalgen.search.random_search:RandomSymmetricSearch",
    "substitution": "xtalgen.search.substitution:PrototypeSubstitution",
    "evolution": "xtalgen.search.evolution:EvolutionarySearch",
}
"""Registered generator names -> ``"module:Class"`` import paths. Learned models are loaded
from their checkpoint files instead (see :func:`load_generator`)."""


def generator_class(name: str) -> type[Generator]:
    """The class of a registered generator (imported when asked for)."""
    module_name, class_name = GENERATORS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def load_generator(name_or_path: str | Path, **kwargs: Any) -> Generator:
    """A generator by registered name (``"random-search"``), shipped checkpoint name
    (``"perov5-csp-flow"``) or checkpoint file path."""
    key = str(name_or_path)
    if key in GENERATORS:
        return generator_class(key)(**kwargs)
    shipped = shipped_checkpoints()
    path = shipped.get(key, Path(key))
    if path.exists():
        return load_model(path, **kwargs)
    known = ", ".join(sorted(GENERATORS) + sorted(shipped))
    raise XtalgenError(f"no generator or checkpoint named {key!r} (known names: {known})")
