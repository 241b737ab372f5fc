"""Evolutionary structure search for a fixed composition, as a :class:`Generator`.

A population of random symmetric crystals (see :mod:`xtalgen.search.random_search`), plus any
``seeds`` given, is relaxed and scored by the potential's energy per atom (eV/atom). Each
generation makes ``offspring_per_generation`` children by tournament selection and one of the
operators of :mod:`xtalgen.search.operators` (symmetric mutation, lattice strain, permutation,
cut-and-splice crossover) or a fresh random immigrant, relaxes them, and keeps the
``population_size`` lowest-energy distinct crystals. The search stops after ``n_generations``
or when the budget runs out; ``generate`` returns the best distinct crystals ever evaluated.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.models.base import Generator
from xtalgen.search import operators
from xtalgen.search.common import (
    BudgetTracker,
    apply_overrides,
    distinct,
    min_distance_ok,
    parse_composition,
    validate_spacegroup,
)
from xtalgen.search.random_search import RandomSearchConfig, draw_random_candidates
from xtalgen.search.scoring import Scored, ScoringConfig, provenance, score_crystals

__all__ = ["EvolutionConfig", "EvolutionarySearch"]

OPERATORS = ("symmetric", "strain", "permutation", "crossover", "random")


@dataclass
class EvolutionConfig(ScoringConfig):
    """Settings of :class:`EvolutionarySearch` (all optional).

    Attributes:
        population_size: crystals kept between generations.
        offspring_per_generation: children made (and relaxed) per generation.
        n_generations: generations after the initial population.
        operator_weights: relative use of ``symmetric``, ``strain``, ``permutation``,
            ``crossover`` and ``random`` (immigrant).
        strain_sigma: standard deviation of the strain components.
        tournament_size: parents are the best of this many random population members.
        seeds: extra initial crystals of the same composition (e.g. substitution results).
        formula_units, max_atoms, spacegroups, spacegroup_weights, volume_factor,
            distance_factor: the random initial population (see ``RandomSearchConfig``).

    Scoring (keyword-only): ``relax``, ``energies``, ``potential``, ``fmax``, ``max_steps``
    (100 here), ``budget``, ``dedupe``, ``executor``, ``progress`` (one bar per generation);
    see :class:`~xtalgen.search.scoring.ScoringConfig`. With neither ``relax`` nor
    ``energies`` there is no fitness, which is an error.
    """

    population_size: int = 8
    offspring_per_generation: int = 8
    n_generations: int = 4
    operator_weights: Mapping[str, float] = field(
        default_factory=lambda: {
            "symmetric": 0.3,
            "strain": 0.2,
            "permutation": 0.1,
            "crossover": 0.3,
            "random": 0.1,
        }
    )
    strain_sigma: float = 0.1
    tournament_size: int = 2
    seeds: Sequence[Crystal] = ()
    formula_units: Sequence[int] | None = None
    max_atoms: int = 20
    spacegroups: Sequence[int] | None = None
    spacegroup_weights: Mapping[int, float] | None = None
    volume_factor: float = 1.1
    distance_factor: float = 1.0
    max_steps: int = field(default=100, kw_only=True)  # shorter relaxations than the base

    def random_config(self) -> RandomSearchConfig:
        return RandomSearchConfig(
            formula_units=self.formula_units,
            max_atoms=self.max_atoms,
            spacegroups=self.spacegroups,
            spacegroup_weights=self.spacegroup_weights,
            volume_factor=self.volume_factor,
            distance_factor=self.distance_factor,
        )


@dataclass
class _Individual:
    scored: Scored
    generation: int
    operator: str

    @property
    def energy(self) -> float:
        return self.scored.energy_per_atom


class EvolutionarySearch(Generator):
    """Evolutionary search for one composition; see the module docstring.

    Example::

        ga = EvolutionarySearch(population_size=6, n_generations=3, max_steps=50)
        best = ga.generate(3, composition="SrTiO3", seed=0)
    """

    name = "evolution"
    native_conditions = frozenset({"spacegroup"})

    @classmethod
    def benchmark_kwargs(cls, train: Sequence[Crystal]) -> dict[str, Any]:
        """Its own defaults (it needs the potential for a fitness), without progress bars."""
        return {"progress": False}

    def __init__(self, *, config: EvolutionConfig | None = None, **overrides: Any) -> None:
        config = config or EvolutionConfig()
        config = apply_overrides(config, overrides, "evolution")
        unknown = set(config.operator_weights) - set(OPERATORS)
        if unknown:
            raise XtalgenError(f"unknown operators {sorted(unknown)}; choose from {OPERATORS}")
        if not (config.relax or config.energies):
            raise XtalgenError("evolution needs energies: set relax=True or energies=True")
        if config.population_size < 2 or config.offspring_per_generation < 1:
            raise XtalgenError("evolution needs population_size >= 2 and offspring >= 1")
        self.config = config

    def generate(
        self,
        n: int,
        *,
        composition: str | Mapping[str, float] | None = None,
        spacegroup: int | None = None,
        condition: Mapping[str, float] | None = None,
        seed: int | None = None,
    ) -> list[Crystal]:
        """The ``n`` lowest-energy distinct crystals found for ``composition``.

        ``spacegroup`` fixes the group of the random initial population (mutations may lower
        it). Evolution needs a composition: for DNG use random-search or substitution.
        """
        if n < 1:
            raise XtalgenError(f"n must be >= 1, got {n}")
        if composition is None:
            raise XtalgenError("evolution searches one composition: pass composition=...")
        if condition:
            raise XtalgenError("evolution does not support property conditions")
        spacegroup = validate_spacegroup(spacegroup)
        cfg = self.config
        comp = parse_composition(composition)
        for s in cfg.seeds:
            if s.formula != comp.reduced_formula:
                raise XtalgenError(
                    f"seed {s.formula} does not have composition {comp.reduced_formula}"
                )
        rng = np.random.default_rng(seed)
        tracker = BudgetTracker(cfg.budget)
        settings = cfg.relax_settings()

        def evaluate(children: list[tuple[Crystal, str]], generation: int) -> list[_Individual]:
            scored = score_crystals(
                [c for c, _ in children],
                settings,
                tracker,
                progress=cfg.progress,
                desc=f"{self.name} gen {generation}",
                executor=cfg.executor,
            )
            return [_Individual(s, generation, op) for s, (_, op) in zip(scored, children) if s.ok]

        n_random = max(0, cfg.population_size - len(cfg.seeds))
        initial = [(c, "seed") for c in cfg.seeds] + [
            (c, "random")
            for c in draw_random_candidates(comp, n_random, rng, cfg.random_config(), spacegroup)
        ]
        history = evaluate(initial, 0)
        population = self._select(history)
        generation = 0
        while generation < cfg.n_generations and not tracker.exhausted() and len(population) >= 1:
            generation += 1
            children = [
                self._offspring(population, comp, spacegroup, rng)
                for _ in range(cfg.offspring_per_generation)
            ]
            born = evaluate([c for c in children if c is not None], generation)
            history += born
            population = self._select(population + born)

        ranked = sorted(history, key=lambda ind: ind.energy)
        if cfg.dedupe:
            by_id = {id(ind.scored.crystal): ind for ind in ranked}
            ranked = [by_id[id(c)] for c in distinct([i.scored.crystal for i in ranked], n)]
        ranked = ranked[:n]
        if len(ranked) < n:
            warnings.warn(
                f"evolution returned {len(ranked)} of {n} crystals ({len(history)} evaluated in "
                f"{generation} generations within the budget)",
                stacklevel=2,
            )
        return [
            provenance(
                ind.scored,
                generator=self.name,
                seed=seed,
                composition=comp.reduced_formula,
                spacegroup_requested=spacegroup,
                rank=rank,
                generation=ind.generation,
                operator=ind.operator,
                n_generations=generation,
                n_evaluated=len(history),
                search_potential_calls=tracker.potential_calls,
                search_wall_time=round(tracker.elapsed, 3),
            )
            for rank, ind in enumerate(ranked)
        ]

    def _select(self, individuals: list[_Individual]) -> list[_Individual]:
        """The ``population_size`` lowest-energy individuals, near-duplicates removed."""
        ranked = [
            ind for ind in sorted(individuals, key=lambda i: i.energy) if math.isfinite(ind.energy)
        ]
        by_id = {id(ind.scored.crystal): ind for ind in ranked}
        kept = distinct([i.scored.crystal for i in ranked], self.config.population_size)
        return [by_id[id(c)] for c in kept]

    def _tournament(self, population: list[_Individual], rng: np.random.Generator) -> _Individual:
        k = min(self.config.tournament_size, len(population))
        picks = rng.choice(len(population), size=k, replace=False)
        return min((population[int(i)] for i in picks), key=lambda i: i.energy)

    def _offspring(
        self,
        population: list[_Individual],
        comp: Any,
        spacegroup: int | None,
        rng: np.random.Generator,
        attempts: int = 10,
    ) -> tuple[Crystal, str] | None:
        """One child (crystal, operator name) that passes the minimum-distance check."""
        cfg = self.config
        names = [op for op in OPERATORS if cfg.operator_weights.get(op, 0) > 0]
        weights = np.array([cfg.operator_weights[op] for op in names], dtype=float)
        for _ in range(attempts):
            op = str(rng.choice(names, p=weights / weights.sum()))
            parent = self._tournament(population, rng).scored.crystal
            child: Crystal | None
            if op == "symmetric":
                child = operators.symmetric_mutation(parent, rng)
            elif op == "strain":
                child = operators.lattice_strain(parent, rng, sigma=cfg.strain_sigma)
            elif op == "permutation":
                child = operators.permutation(parent, rng)
            elif op == "crossover":
                mates = [
                    i.scored.crystal
                    for i in population
                    if i.scored.crystal.num_sites == parent.num_sites
                    and i.scored.crystal is not parent
                ]
                child = (
                    operators.cut_and_splice(parent, mates[int(rng.integers(len(mates)))], rng)
                    if mates
                    else None
                )
            else:
                drawn = draw_random_candidates(comp, 1, rng, cfg.random_config(), spacegroup)
                child = drawn[0] if drawn else None
            if child is not None and min_distance_ok(child):
                return Crystal(child.lattice, child.frac_coords, child.species), op
        return None
