"""Prototype substitution as a :class:`Generator`.

CSP (composition given): retrieve the pool crystals with the target's anonymous formula, map
their species onto the target's (see :mod:`xtalgen.search.prototypes`), rescale the volume,
optionally relax, and rank. Before any energy is known, templates are ordered by a prototype
vote: templates are grouped by prototype (anonymous formula, space group, Wyckoff letters), each
template votes ``exp(-distance / vote_temperature)`` for its prototype, and prototypes are taken
in order of their votes (the chemically closest member represents each). Given the target's
number of formula units per cell (``formula_units``, as CSP gives the atom count), templates
with that many formula units come first. The first candidate (``first_pick="vote"``) is the
substituted structure that the nearby templates agree on: candidates are grouped by decorated
prototype (which target element sits on which Wyckoff sites) and each votes
``exp(-distance / pick_temperature)``; this keeps a single exact-composition template, often a
different polymorph of a held-out target, from deciding alone. With relaxation, the best
``candidates_per_structure x n`` candidates are relaxed and ranked by energy per atom.

DNG (no composition): ion substitution in known structures. A random pool crystal has one or
more elements replaced by chemically similar ones (probability ``exp(-distance / 0.5)``), and
only compositions absent from the pool are kept, as in the substitution baselines of MatterGen.
"""

from __future__ import annotations

import math
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
    distinct,
    parse_composition,
    validate_spacegroup,
)
from xtalgen.search.prototypes import (
    PrototypeIndex,
    SpeciesMap,
    element_distance,
    map_species,
    species_maps,
)
from xtalgen.search.prototypes import substitute as substitute_species
from xtalgen.search.scoring import Scored, ScoringConfig, provenance, rank_by_energy, score_crystals

__all__ = ["PrototypeSubstitution", "SubstitutionConfig"]

RANKINGS = ("prototype", "similarity", "none")
"""Template orders before energies are known (see ``SubstitutionConfig.ranking``)."""

FIRST_PICKS = ("vote", "closest")
"""Rules for the first candidate (see ``SubstitutionConfig.first_pick``)."""

NOBLE_GASES = frozenset({2, 10, 18, 36, 54, 86})
DNG_ELEMENTS = tuple(z for z in range(1, 84) if z not in NOBLE_GASES and z not in {43, 61})
"""Elements a DNG substitution may introduce (H-Bi, no noble gases, Tc or Pm)."""


@dataclass
class SubstitutionConfig(ScoringConfig):
    """Settings of :class:`PrototypeSubstitution` (all optional).

    Attributes:
        pool: template crystals (default: the bundled MP-20 training subset).
        species_map: ``"similarity"`` or ``"electronegativity"`` (see ``map_species``).
        ranking: order of templates before energies are known: ``"prototype"`` (vote over
            prototypes), ``"similarity"`` (closest template first) or ``"none"`` (pool order,
            as in the naive rule; use ``dedupe=False`` to keep it exactly).
        vote_temperature: softness of the prototype vote (chemical-distance units).
        vote_weight: weight of the prototype's vote against its best distance (0: closest
            prototype first).
        formula_units: formula units per cell of the target (e.g. the CSP atom count divided
            by the reduced formula's); templates with these come first. None: any.
        first_pick: ``"vote"`` (decorated-prototype vote, see the module docstring) or
            ``"closest"`` (the first template of ``ranking``) for the first candidate; used
            with ``ranking="prototype"`` only.
        pick_temperature: softness of the first-pick vote (chemical-distance units).
        decorations: with ``ranking="prototype"``, follow the first template of each
            prototype by the other species maps of those templates (permutations within
            groups of equal amount) that put the elements on new kinds of site, before the
            further templates of each prototype.
        candidates_per_structure: templates relaxed per requested structure.
        rescale_volume: scale the cell by the atomic-volume ratio after substitution.
        max_atoms: largest template (sites) used.
        n_substitutions: elements replaced per DNG proposal.

    Scoring (keyword-only): ``relax``, ``energies``, ``potential``, ``fmax``, ``max_steps``,
    ``budget``, ``dedupe``, ``executor``, ``progress``; see
    :class:`~xtalgen.search.scoring.ScoringConfig`. Unscored, ``dedupe`` takes one template
    per prototype first (by prototype key, without structure matching).
    """

    pool: Sequence[Crystal] | None = None
    species_map: str = "similarity"
    ranking: str = "prototype"
    vote_temperature: float = 1.0
    vote_weight: float = 0.0
    candidates_per_structure: int = 2
    rescale_volume: bool = True
    max_atoms: int | None = None
    n_substitutions: int = 1
    formula_units: Sequence[int] | None = None
    first_pick: str = "vote"
    pick_temperature: float = 0.25
    decorations: bool = False


@dataclass
class _Candidate:
    template: int
    species_map: SpeciesMap
    prototype: tuple | None = None


class PrototypeSubstitution(Generator):
    """Prototype substitution; see the module docstring.

    Example::

        gen = PrototypeSubstitution(pool=my_crystals, relax=False)
        crystals = gen.generate(5, composition="KMgF3")
    """

    name = "substitution"
    native_conditions = frozenset({"spacegroup"})

    @classmethod
    def benchmark_kwargs(cls, train: Sequence[Crystal]) -> dict[str, Any]:
        """Energy-free and unrelaxed, with the training split as the template pool."""
        return {"relax": False, "energies": False, "progress": False, "pool": list(train)}

    def __init__(self, *, config: SubstitutionConfig | None = None, **overrides: Any) -> None:
        config = config or SubstitutionConfig()
        config = apply_overrides(config, overrides, "substitution")
        if config.species_map not in {"similarity", "electronegativity"}:
            raise XtalgenError(
                f"species_map must be similarity or electronegativity, got {config.species_map!r}"
            )
        if config.ranking not in RANKINGS:
            raise XtalgenError(
                f"ranking must be one of {', '.join(RANKINGS)}, got {config.ranking!r}"
            )
        if config.first_pick not in FIRST_PICKS:
            raise XtalgenError(
                f"first_pick must be one of {', '.join(FIRST_PICKS)}, got {config.first_pick!r}"
            )
        self.config = config
        self._index: PrototypeIndex | None = None

    @property
    def index(self) -> PrototypeIndex:
        """The template index (built on first use)."""
        if self._index is None:
            pool = self.config.pool
            if pool is None:
                from xtalgen.data import load_dataset

                pool = load_dataset("mp20", "offline_train")
            if len(pool) == 0:
                raise XtalgenError("the substitution template pool is empty")
            self._index = PrototypeIndex(pool, self.config.max_atoms)
        return self._index

    def generate(
        self,
        n: int,
        *,
        composition: str | Mapping[str, float] | None = None,
        spacegroup: int | None = None,
        condition: Mapping[str, float] | None = None,
        seed: int | None = None,
    ) -> list[Crystal]:
        """Up to ``n`` substituted (and, with ``relax``, relaxed and energy-ranked) crystals."""
        if n < 1:
            raise XtalgenError(f"n must be >= 1, got {n}")
        if condition:
            raise XtalgenError("substitution does not support property conditions")
        spacegroup = validate_spacegroup(spacegroup)
        cfg = self.config
        scoring = cfg.relax or cfg.energies
        n_try = n * cfg.candidates_per_structure if scoring else n
        if composition is not None:
            comp = parse_composition(composition)
            candidates = self.ranked_candidates(comp, spacegroup)
            if scoring:
                candidates = candidates[:n_try]
        else:
            candidates = self._dng_candidates(n_try, np.random.default_rng(seed), spacegroup)
        tracker = BudgetTracker(cfg.budget)
        source: dict[int, _Candidate] = {}  # id(crystal) -> the candidate it came from

        def make(c: _Candidate) -> Crystal:
            crystal = substitute_species(self.index.pool[c.template], c.species_map,
                                         cfg.rescale_volume)
            source[id(crystal)] = c
            return crystal

        if scoring:
            crystals = [make(c) for c in candidates]
            scored = score_crystals(
                crystals, cfg.relax_settings(), tracker, progress=cfg.progress, desc=self.name,
                executor=cfg.executor,
            )
            for s, crystal in zip(scored, crystals):
                source[id(s.crystal)] = source[id(crystal)]
            ranked = rank_by_energy(scored)
            if cfg.dedupe:
                by_id = {id(s.crystal): s for s in ranked}
                ranked = [by_id[id(c)] for c in distinct([s.crystal for s in ranked], n)]
        else:
            # unscored: one template per prototype first (by prototype key, no structure
            # matching), then further members of the same prototypes
            chosen = (_one_per_prototype(candidates, n, self._prototype_of) if cfg.dedupe
                      else candidates[:n])
            scored = ranked = [Scored(make(c)) for c in chosen]
        ranked = ranked[:n]
        if len(ranked) < n:
            warnings.warn(
                f"substitution returned {len(ranked)} of {n} crystals ({len(candidates)} "
                f"templates, {len(scored)} scored within the budget)",
                stacklevel=2,
            )
        requested = None if composition is None else comp.reduced_formula
        return [
            self._provenance(s, source[id(s.crystal)], seed, requested, spacegroup, rank, tracker)
            for rank, s in enumerate(ranked)
        ]

    def ranked_candidates(
        self, composition: Any, spacegroup: int | None = None
    ) -> list[_Candidate]:
        """Every template of the target's anonymous formula, best first (no energies)."""
        index = self.index
        target = {int(el.Z): round(a) for el, a in composition.reduced_composition.items()}
        cands = [
            _Candidate(i, map_species(index.counts[i], target, self.config.species_map))
            for i in index.candidates(target)
        ]
        if spacegroup is not None or self.config.ranking == "prototype":
            for c in cands:
                c.prototype = index.prototype(c.template)
        if spacegroup is not None:
            cands = [c for c in cands if c.prototype is not None and c.prototype[1] == spacegroup]
        if not cands:
            sg = f" in space group {spacegroup}" if spacegroup is not None else ""
            raise XtalgenError(
                f"no template for {composition.reduced_formula}{sg}: none of the {len(index)} "
                "pool crystals has its anonymous formula"
            )
        cfg = self.config
        if cfg.ranking != "none":  # "none" keeps pool order: the naive rule
            cands.sort(key=lambda c: (c.species_map.distance, c.template))
        groups = [cands]
        if cfg.formula_units:
            wanted = {int(z) for z in cfg.formula_units}
            same = [c for c in cands if index.formula_units(c.template) in wanted]
            groups = [same, [c for c in cands if index.formula_units(c.template) not in wanted]]
        if cfg.ranking != "prototype":
            return [c for group in groups for c in group]
        ordered = [
            c for group in groups
            for c in _prototype_vote(group, cfg.vote_temperature, cfg.vote_weight)
        ]
        if cfg.first_pick == "vote":
            best = _decorated_vote(next(g for g in groups if g), index, cfg.pick_temperature)
            ordered.remove(best)
            ordered.insert(0, best)
        if cfg.decorations:
            ordered = _with_decorations(ordered, index, target)
        return ordered

    def _prototype_of(self, cand: _Candidate) -> tuple:
        if cand.prototype is None:
            cand.prototype = self.index.prototype(cand.template)
        return cand.prototype

    def _dng_candidates(
        self, n: int, rng: np.random.Generator, spacegroup: int | None
    ) -> list[_Candidate]:
        index = self.index
        eligible = [i for ids in index.by_key.values() for i in ids]
        if spacegroup is not None:
            eligible = [i for i in eligible if index.prototype(i)[1] == spacegroup]
        if not eligible:
            raise XtalgenError("no pool crystal fits the requested space group and max_atoms")
        out: list[_Candidate] = []
        seen: set[tuple] = set()
        for _ in range(50 * n):
            if len(out) >= n:
                break
            i = int(eligible[rng.integers(len(eligible))])
            counts = index.counts[i]
            mapping = {z: z for z in counts}
            present = set(counts)
            k = min(self.config.n_substitutions, len(counts))
            for old in rng.choice(sorted(counts), size=k, replace=False):
                options = [z for z in DNG_ELEMENTS if z not in present]
                w = np.exp([-element_distance(int(old), z) / 0.5 for z in options])
                new = int(rng.choice(options, p=w / w.sum()))
                mapping[int(old)] = new
                present.add(new)
            new_counts = {mapping[z]: a for z, a in counts.items()}
            key = tuple(sorted(new_counts.items()))
            if index.known_formula(new_counts) or (i, key) in seen:
                continue
            seen.add((i, key))
            distance = sum(a * element_distance(z, mapping[z]) for z, a in counts.items())
            out.append(_Candidate(i, SpeciesMap(mapping, distance / sum(counts.values()))))
        return out

    def _provenance(
        self,
        scored: Scored,
        cand: _Candidate,
        seed: int | None,
        requested: str | None,
        spacegroup: int | None,
        rank: int,
        tracker: BudgetTracker,
    ) -> Crystal:
        template = self.index.pool[cand.template]
        return provenance(
            scored,
            generator=self.name,
            seed=seed,
            composition=requested,
            spacegroup_requested=spacegroup,
            rank=rank,
            template_material_id=template.properties.get("material_id"),
            template_formula=template.formula,
            species_substitution=cand.species_map.label(),
            substitution_distance=round(cand.species_map.distance, 4),
            search_potential_calls=tracker.potential_calls,
            search_wall_time=round(tracker.elapsed, 3),
        )


def _one_per_prototype(cands: list[_Candidate], n: int, prototype_of) -> list[_Candidate]:
    """The first ``n`` of: each prototype's first candidate in order, then the others."""
    seen: set[tuple] = set()
    first, rest = [], []
    for c in cands:
        key = prototype_of(c)
        (rest if key in seen else first).append(c)
        seen.add(key)
        if len(first) >= n:
            break
    return (first + rest)[:n]


def _with_decorations(
    ordered: list[_Candidate], index: PrototypeIndex, target: dict[int, int]
) -> list[_Candidate]:
    """Each prototype's first candidate, then the other species maps of those templates with
    new decorated prototypes (in prototype order, closest first), then the rest."""
    seen_protos: set[tuple] = set()
    first, rest = [], []
    for c in ordered:
        (rest if c.prototype in seen_protos else first).append(c)
        seen_protos.add(c.prototype)
    seen = {index.decorated_prototype(c.template, c.species_map) for c in first}
    extra = []
    for c in first:
        for species_map in species_maps(index.counts[c.template], target):
            key = index.decorated_prototype(c.template, species_map)
            if key not in seen:
                seen.add(key)
                extra.append(_Candidate(c.template, species_map, c.prototype))
    return first + extra + rest


def _decorated_vote(cands: list[_Candidate], index: PrototypeIndex, temperature: float) -> _Candidate:
    """The closest member of the decorated prototype with the largest summed
    ``exp(-distance / temperature)`` (ties: the closer representative). ``cands`` are sorted by
    distance."""
    t = max(temperature, 1e-6)
    votes: dict[tuple, float] = {}
    best: dict[tuple, _Candidate] = {}
    for c in cands:
        key = index.decorated_prototype(c.template, c.species_map)
        votes[key] = votes.get(key, 0.0) + math.exp(-c.species_map.distance / t)
        best.setdefault(key, c)
    return best[max(votes, key=lambda k: (votes[k], -best[k].species_map.distance))]


def _prototype_vote(cands: list[_Candidate], temperature: float, weight: float) -> list[_Candidate]:
    """Candidates grouped by prototype: one representative per prototype, then the second-best
    member of each prototype, and so on. Prototypes are ordered by
    ``best distance - weight * log(vote)`` (``weight=0``: closest template first)."""
    groups: dict[tuple, list[_Candidate]] = {}
    for c in cands:  # cands are sorted by distance: each group's first member is its closest
        groups.setdefault(c.prototype or (), []).append(c)
    t = max(temperature, 1e-6)
    votes = {
        key: sum(math.exp(-c.species_map.distance / t) for c in members)
        for key, members in groups.items()
    }
    order = sorted(
        groups,
        key=lambda key: groups[key][0].species_map.distance - weight * math.log(votes[key]),
    )
    out: list[_Candidate] = []
    depth = 0
    while len(out) < len(cands):
        out += [groups[key][depth] for key in order if depth < len(groups[key])]
        depth += 1
    return out
