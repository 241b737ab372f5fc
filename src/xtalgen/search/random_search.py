"""Random symmetric structure search (AIRSS-style) as a :class:`Generator`.

For a composition: draw ``candidates_per_structure x n`` random crystals that respect a random
(or the requested) space group and its Wyckoff multiplicities (pyxtal, with volume and
minimum-distance priors), relax each with the default potential, and return the ``n``
lowest-energy distinct ones. Without a composition (DNG) each candidate's composition is drawn
from ``compositions`` (default: the formulas of the bundled MP-20 training subset).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.models.base import Generator
from xtalgen.search.common import (
    BudgetTracker,
    apply_overrides,
    cell_composition,
    distinct,
    formula_unit_choices,
    parse_composition,
    validate_spacegroup,
)
from xtalgen.search.scoring import ScoringConfig, provenance, rank_by_energy, score_crystals
from xtalgen.search.symmetric import (
    compatible_spacegroups,
    pick_spacegroup,
    random_symmetric_crystal,
)

__all__ = ["RandomSearchConfig", "RandomSymmetricSearch", "draw_random_candidates"]


@dataclass
class RandomSearchConfig(ScoringConfig):
    """Settings of :class:`RandomSymmetricSearch` (all optional).

    Attributes:
        candidates_per_structure: random candidates drawn per requested structure.
        formula_units: allowed formula units per cell (default: all up to ``max_atoms``).
        max_atoms: largest cell when ``formula_units`` is not given.
        spacegroups: space groups to draw from when none is requested (default: all that fit).
        spacegroup_weights: prior over space groups, space group -> weight; the string
            ``"mp20"`` uses the space-group frequencies of the bundled MP-20 training subset.
        volume_factor: pyxtal volume prior, x the summed atomic volumes.
        distance_factor: x pyxtal's atomic minimum-distance tolerance matrix.
        compositions: formulas to draw from for DNG (default: MP-20 training formulas).

    Scoring (keyword-only): ``relax``, ``energies``, ``potential``, ``fmax``, ``max_steps``,
    ``budget``, ``dedupe`` (pymatgen ``StructureMatcher`` defaults), ``executor``,
    ``progress``; see :class:`~xtalgen.search.scoring.ScoringConfig`.
    """

    candidates_per_structure: int = 4
    formula_units: Sequence[int] | None = None
    max_atoms: int = 20
    spacegroups: Sequence[int] | None = None
    spacegroup_weights: Mapping[int, float] | str | None = None
    volume_factor: float = 1.1
    distance_factor: float = 1.0
    compositions: Sequence[str] | None = None


def draw_random_candidates(
    composition: Any,
    n: int,
    rng: np.random.Generator,
    config: RandomSearchConfig,
    spacegroup: int | None = None,
) -> list[Crystal]:
    """``n`` random symmetric crystals of ``composition`` (fewer only if pyxtal keeps failing).

    Each carries ``spacegroup_drawn`` (the group it was built in) in its properties.
    """
    z_choices = formula_unit_choices(composition, config.formula_units, config.max_atoms)
    if spacegroup is not None:
        z_choices = [
            z
            for z in z_choices
            if spacegroup in compatible_spacegroups(tuple(cell_composition(composition, z)[1]))
        ]
        if not z_choices:
            raise XtalgenError(
                f"space group {spacegroup} cannot hold {composition.reduced_formula} with "
                f"{config.formula_units or f'up to {config.max_atoms} atoms'} per cell "
                "(Wyckoff multiplicities do not fit)"
            )
    out: list[Crystal] = []
    failures = 0
    while len(out) < n and failures < 10 * n + 20:
        z = int(rng.choice(z_choices))
        symbols, counts = cell_composition(composition, z)
        sg = spacegroup
        if sg is None:
            sg = pick_spacegroup(counts, rng, config.spacegroups, _weights(config.spacegroup_weights))
        if sg is None:
            failures += 1
            continue
        crystal = random_symmetric_crystal(
            symbols,
            counts,
            sg,
            rng,
            volume_factor=config.volume_factor,
            distance_factor=config.distance_factor,
        )
        if crystal is None:
            failures += 1
            continue
        out.append(crystal.with_properties(spacegroup_drawn=sg, formula_units=z))
    return out


def _weights(prior: Mapping[int, float] | str | None) -> Mapping[int, float] | None:
    if isinstance(prior, str):
        return dataset_spacegroup_weights(prior)
    return prior


@functools.cache
def dataset_spacegroup_weights(name: str = "mp20", split: str = "offline_train") -> dict[int, float]:
    """Space-group frequencies (spglib, symprec=0.1) of a bundled dataset split."""
    from xtalgen.data import load_dataset
    from xtalgen.search.common import detect_spacegroup

    dataset = load_dataset(name, split, progress=False)
    column = "spacegroup.number"
    if column in dataset.table.columns:
        numbers = [int(x) for x in dataset.table[column]]
    else:
        numbers = [detect_spacegroup(c)[0] for c in dataset]
    values, counts = np.unique(numbers, return_counts=True)
    return {int(v): float(c) / len(numbers) for v, c in zip(values, counts)}


def default_compositions() -> list[str]:
    """Reduced formulas of the bundled MP-20 training subset (the DNG composition prior)."""
    from xtalgen.data import load_dataset

    dataset = load_dataset("mp20", "offline_train")
    return sorted({c.formula for c in dataset})


class RandomSymmetricSearch(Generator):
    """AIRSS-style random symmetric search; see the module docstring.

    Example::

        search = RandomSymmetricSearch(candidates_per_structure=8, max_steps=200)
        crystals = search.generate(4, composition="NaCl", seed=0)
    """

    name = "random-search"
    native_conditions = frozenset({"spacegroup"})

    @classmethod
    def benchmark_kwargs(cls, train: Sequence[Crystal]) -> dict[str, Any]:
        """Energy-free, with the training split's formulas as the DNG composition prior."""
        formulas = sorted({c.formula for c in train})
        return {"relax": False, "energies": False, "progress": False,
                "compositions": formulas or None}

    def __init__(self, *, config: RandomSearchConfig | None = None, **overrides: Any) -> None:
        config = config or RandomSearchConfig()
        config = apply_overrides(config, overrides, "random-search")
        if config.candidates_per_structure < 1:
            raise XtalgenError("candidates_per_structure must be >= 1")
        self.config = config
        self._compositions: list[str] | None = (
            list(config.compositions) if config.compositions is not None else None
        )

    def generate(
        self,
        n: int,
        *,
        composition: str | Mapping[str, float] | None = None,
        spacegroup: int | None = None,
        condition: Mapping[str, float] | None = None,
        seed: int | None = None,
    ) -> list[Crystal]:
        """Up to ``n`` relaxed, ranked, distinct crystals (lowest energy per atom first)."""
        if n < 1:
            raise XtalgenError(f"n must be >= 1, got {n}")
        if condition:
            raise XtalgenError("random-search does not support property conditions")
        spacegroup = validate_spacegroup(spacegroup)
        cfg = self.config
        rng = np.random.default_rng(seed)
        n_draw = n * cfg.candidates_per_structure
        if composition is not None:
            comp = parse_composition(composition)
            candidates = draw_random_candidates(comp, n_draw, rng, cfg, spacegroup)
        else:
            candidates = self._draw_dng(n_draw, rng, spacegroup)
        tracker = BudgetTracker(cfg.budget)
        scored = score_crystals(
            candidates,
            cfg.relax_settings(),
            tracker,
            progress=cfg.progress,
            desc=self.name,
            executor=cfg.executor,
        )
        ranked = rank_by_energy(scored)
        if cfg.dedupe:
            by_id = {id(s.crystal): s for s in ranked}
            ranked = [by_id[id(c)] for c in distinct([s.crystal for s in ranked])]
        ranked = ranked[:n]
        if len(ranked) < n:
            warnings.warn(
                f"random-search returned {len(ranked)} of {n} crystals "
                f"({len(scored)} of {len(candidates)} candidates scored within the budget)",
                stacklevel=2,
            )
        requested = None if composition is None else comp.reduced_formula
        return [
            provenance(
                s,
                generator=self.name,
                seed=seed,
                composition=requested,
                spacegroup_requested=spacegroup,
                rank=i,
                n_candidates=len(scored),
                search_potential_calls=tracker.potential_calls,
                search_wall_time=round(tracker.elapsed, 3),
            )
            for i, s in enumerate(ranked)
        ]

    def _draw_dng(self, n: int, rng: np.random.Generator, spacegroup: int | None) -> list[Crystal]:
        if self._compositions is None:
            self._compositions = default_compositions()
        out: list[Crystal] = []
        for _ in range(20 * n):
            if len(out) >= n:
                break
            formula = self._compositions[int(rng.integers(len(self._compositions)))]
            try:
                out += draw_random_candidates(
                    parse_composition(formula), 1, rng, self.config, spacegroup
                )
            except XtalgenError:
                continue  # too many atoms, or the requested group does not fit this formula
        return out
