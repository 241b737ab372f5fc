"""The one interface every generator implements, learned model or search method alike.

``generate`` returns :class:`xtalgen.Crystal` records; each carries its provenance in
``properties`` (``generator``, ``checkpoint`` where there is one, ``seed``, and the
conditions it was asked for), so evaluation and screening never need to know who made it.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError

__all__ = ["GENERATORS", "Generator", "load_generator"]


class Generator(ABC):
    """A source of crystals: ``generate(n, composition=..., spacegroup=..., seed=...)``."""

    name: str = "generator"

    @abstractmethod
    def generate(
        self,
        n: int,
        *,
        composition: str | Mapping[str, float] | None = None,
        spacegroup: int | None = None,
        condition: Mapping[str, float] | None = None,
        seed: int | None = None,
    ) -> list[Crystal]:
        """Propose ``n`` crystals.

        Args:
            n: number of crystals to return (a search method may return fewer when its
                budget runs out; it says so in a warning).
            composition: fixes the composition (CSP), e.g. ``"Li2MnO3"``; the cell may hold a
                multiple of the reduced formula.
            spacegroup: requested space group number (1-230), where the generator supports it.
            condition: target properties, e.g. ``{"band_gap": 1.5}`` (eV), where supported.
            seed: makes the call reproducible.
        """

    def save(self, path: str | Path) -> None:
        """Write the generator (weights, config) to ``path``."""
        raise NotImplementedError(f"{type(self).__name__} has no state to save")

    @classmethod
    def load(cls, path: str | Path) -> Generator:
        """Read a generator written by :meth:`save`."""
        raise NotImplementedError(f"{cls.__name__} cannot be loaded from a file")


GENERATORS: dict[str, str] = {
    "random-search": "xtalgen.search.random_search:RandomSymmetricSearch",
    "substitution": "xtalgen.search.substitution:PrototypeSubstitution",
    "evolution": "xtalgen.search.evolution:EvolutionarySearch",
}
"""Registered generator names -> ``"module:Class"`` import paths. Learned models are loaded
from their checkpoint files instead (see :func:`load_generator`)."""


def load_generator(name_or_path: str | Path, **kwargs: Any) -> Generator:
    """A generator by registered name (``"random-search"``), shipped checkpoint name
    (``"perov5-csp-flow"``) or checkpoint file path."""
    key = str(name_or_path)
    if key in GENERATORS:
        module_name, class_name = GENERATORS[key].split(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        return cls(**kwargs)
    from xtalgen.checkpoints import shipped_checkpoints
    from xtalgen.models.checkpoint import load_checkpoint_generator

    shipped = shipped_checkpoints()
    path = shipped.get(key, Path(key))
    if path.exists():
        return load_checkpoint_generator(path, **kwargs)
    known = ", ".join(sorted(GENERATORS) + sorted(shipped))
    raise XtalgenError(f"no generator or checkpoint named {key!r} (known names: {known})")
