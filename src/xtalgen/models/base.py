"""The one interface every generator implements, learned model or search method alike.

``generate`` returns :class:`xtalgen.Crystal` records; each carries its provenance in
``properties`` (``generator``, ``checkpoint`` where there is one, ``seed``, and the
conditions it was asked for), so evaluation and screening never need to know who made it.
Generators by name: :func:`xtalgen.models.registry.load_generator`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from xtalgen.crystal import Crystal

__all__ = ["Generator"]


class Generator(ABC):
    """A source of crystals: ``generate(n, composition=..., spacegroup=..., seed=...)``."""

    name: str = "generator"
    native_conditions: frozenset[str] = frozenset()
    """Conditions (:data:`xtalgen.conditions.CONDITION_NAMES`) that ``generate`` serves
    itself; any other is served by a filter around the generator
    (:class:`xtalgen.pipelines.conditioned.RejectionGenerator`)."""

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
            condition: target properties, e.g. ``{"band_gap": 1.5}`` (eV), and (under the
                names of :mod:`xtalgen.conditions`) a ``"chemical_system"``, where supported
                (:attr:`native_conditions`).
            seed: makes the call reproducible.
        """

    @classmethod
    def benchmark_kwargs(cls, train: Sequence[Crystal]) -> dict[str, Any]:
        """Constructor options under which ``xtalgen benchmark`` runs this generator, given the
        benchmark's training split (a retrieval pool, a composition prior). Default: none."""
        return {}

    def save(self, path: str | Path) -> None:
        """Write the generator (weights, config) to ``path``."""
        raise NotImplementedError(f"{type(self).__name__} has no state to save")

    @classmethod
    def load(cls, path: str | Path) -> Generator:
        """Read a generator written by :meth:`save`."""
        raise NotImplementedError(f"{cls.__name__} cannot be loaded from a file")
