"""Relax and score candidates with the project's potential, counting every potential call.

:class:`ScoringConfig` holds the scoring settings every search config inherits;
:class:`RelaxSettings` is the part of them a scoring call needs.

The relaxation itself is :func:`xtalgen.relax.relax` (never re-implemented here); this module
only feeds it candidates one at a time so that a :class:`~xtalgen.search.common.BudgetTracker`
can stop a search between structures. Energies are eV/atom.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from xtalgen.crystal import Crystal
from xtalgen.search.common import BudgetTracker, SearchBudget, detect_spacegroup

__all__ = [
    "RelaxSettings",
    "Scored",
    "ScoringConfig",
    "provenance",
    "rank_by_energy",
    "score_crystals",
]


@dataclass(frozen=True)
class RelaxSettings:
    """How candidates are scored.

    ``relax=True`` relaxes positions and cell with ``potential`` (FIRE, ``fmax`` in eV/angstrom,
    at most ``max_steps`` steps); ``relax=False`` with ``energies=True`` takes one single-point
    energy per candidate; ``relax=False, energies=False`` calls no potential at all.
    """

    relax: bool = True
    energies: bool = True
    potential: Any = "chgnet"
    fmax: float = 0.1
    max_steps: int = 300


@dataclass(kw_only=True)
class ScoringConfig:
    """Scoring settings shared by the search configs (keyword-only, after each config's own).

    Attributes:
        relax: relax candidates with ``potential`` (FIRE + Frechet cell filter).
        energies: single-point energies for ranking when ``relax`` is off; with neither, no
            potential is called and candidates keep their unscored order.
        potential: a registered potential name or a ready ``xtalgen.relax.Potential``.
        fmax: force criterion of the relaxation, eV/angstrom.
        max_steps: FIRE steps per relaxation.
        budget: potential-call / wall-time limits of one ``generate`` call.
        dedupe: return distinct crystals only.
        executor: the screening pipeline's executor (``xtalgen.screen.get_executor``) to
            relax candidates in parallel; None relaxes in this process.
        progress: show a progress bar.
    """

    relax: bool = True
    energies: bool = True
    potential: Any = "chgnet"
    fmax: float = 0.1
    max_steps: int = 300
    budget: SearchBudget = field(default_factory=SearchBudget)
    dedupe: bool = True
    executor: Any = None
    progress: bool = True

    def relax_settings(self) -> RelaxSettings:
        """The :class:`RelaxSettings` of these fields."""
        return RelaxSettings(self.relax, self.energies, self.potential, self.fmax, self.max_steps)


@dataclass
class Scored:
    """One candidate after scoring: ``energy_per_atom`` is NaN when not evaluated or failed."""

    crystal: Crystal
    energy_per_atom: float = math.nan
    n_potential_calls: int = 0
    relaxed: bool = False
    converged: bool | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and math.isfinite(self.energy_per_atom)


def _potential(settings: RelaxSettings, potential: Any = None) -> Any:
    if potential is not None:
        return potential
    if not isinstance(settings.potential, str):
        return settings.potential  # a ready Potential object
    from xtalgen.relax import get_potential

    return get_potential(settings.potential)


def score_crystals(
    crystals: Sequence[Crystal],
    settings: RelaxSettings,
    tracker: BudgetTracker,
    *,
    potential: Any = None,
    progress: bool = False,
    desc: str = "scoring",
    executor: Any = None,
) -> list[Scored]:
    """Relax or single-point each crystal in turn until the budget runs out.

    Returns one :class:`Scored` per crystal that was processed (fewer than ``crystals`` when
    the budget ran out). Relaxations count ``n_steps + 1`` potential calls. With an
    ``executor`` of the screening pipeline (``xtalgen.screen.get_executor``) and a potential
    given by name, crystals are scored in parallel, ``executor.n_workers`` at a time, and the
    budget is checked between rounds.
    """
    from tqdm.auto import tqdm

    if not settings.relax and not settings.energies:
        return [Scored(c) for c in crystals]
    if executor is not None and potential is None and isinstance(settings.potential, str):
        return _score_parallel(crystals, settings, tracker, executor, progress, desc)
    pot = _potential(settings, potential)
    out: list[Scored] = []
    for crystal in tqdm(crystals, desc=desc, disable=not progress, leave=False):
        if tracker.exhausted():
            break
        if settings.relax:
            out.append(_relax_one(crystal, settings, tracker, pot))
        else:
            out.append(_single_point(crystal, tracker, pot))
    return out


def _score_task(item: tuple[int, Crystal, RelaxSettings, int]) -> tuple[int, Scored]:
    """Worker side of :func:`_score_parallel` (the potential is cached per process)."""
    index, crystal, settings, max_steps = item
    tracker = BudgetTracker(None)
    pot = _potential(settings)
    if settings.relax:
        limited = RelaxSettings(
            settings.relax, settings.energies, settings.potential, settings.fmax, max_steps
        )
        return index, _relax_one(crystal, limited, tracker, pot)
    return index, _single_point(crystal, tracker, pot)


def _score_parallel(
    crystals: Sequence[Crystal],
    settings: RelaxSettings,
    tracker: BudgetTracker,
    executor: Any,
    progress: bool,
    desc: str,
) -> list[Scored]:
    from tqdm.auto import tqdm

    width = max(1, int(getattr(executor, "n_workers", 1)))
    done: dict[int, Scored] = {}
    bar = tqdm(total=len(crystals), desc=desc, disable=not progress, leave=False)
    for start in range(0, len(crystals), width):
        if tracker.exhausted():
            break
        batch = range(start, min(start + width, len(crystals)))
        max_steps = settings.max_steps
        remaining = tracker.remaining_calls()
        if remaining is not None:  # share what is left between the crystals of this round
            max_steps = max(0, min(max_steps, remaining // len(batch) - 1))
        items = [(i, crystals[i], settings, max_steps) for i in batch]
        for i, scored in executor.imap_unordered(_score_task, items):
            done[i] = scored
            tracker.add_calls(scored.n_potential_calls)
            bar.update(1)
    bar.close()
    return [done[i] for i in sorted(done)]


def _single_point(crystal: Crystal, tracker: BudgetTracker, potential: Any) -> Scored:
    tracker.add_calls(1)
    try:
        energy = float(potential.energy_per_atom(crystal))
    except Exception as exc:  # a bad candidate must not stop the search
        return Scored(crystal, n_potential_calls=1, error=f"{type(exc).__name__}: {exc}")
    return Scored(crystal, energy, n_potential_calls=1)


def _relax_one(
    crystal: Crystal, settings: RelaxSettings, tracker: BudgetTracker, potential: Any
) -> Scored:
    from xtalgen.relax import RelaxConfig, relax_one

    max_steps = settings.max_steps
    remaining = tracker.remaining_calls()
    if remaining is not None:
        max_steps = max(0, min(max_steps, remaining - 1))
    config = RelaxConfig(fmax=settings.fmax, max_steps=max_steps, compute_rmsd=False)
    result = relax_one(crystal, potential, config)
    calls = int(result.n_steps) + 1  # the initial single point, then one per FIRE step
    tracker.add_calls(calls)
    if result.crystal is None or not math.isfinite(result.energy_per_atom):
        return Scored(crystal, n_potential_calls=calls, error=result.error or "relaxation failed")
    # running out of steps is not a failure for a search: the energy still ranks the candidate
    return Scored(
        result.crystal,
        float(result.energy_per_atom),
        n_potential_calls=calls,
        relaxed=True,
        converged=bool(result.converged),
    )


def provenance(
    scored: Scored,
    *,
    generator: str,
    seed: int | None,
    composition: str | None,
    spacegroup_requested: int | None,
    rank: int,
    **extra: Any,
) -> Crystal:
    """The scored crystal with its provenance in ``properties`` (see the package docstring)."""
    number, symbol = detect_spacegroup(scored.crystal)
    props: dict[str, Any] = {
        "generator": generator,
        "seed": seed,
        "composition": composition or scored.crystal.formula,
        "spacegroup_requested": spacegroup_requested,
        "spacegroup": number,
        "spacegroup_symbol": symbol,
        "relaxed": scored.relaxed,
        "n_potential_calls": scored.n_potential_calls,
        "sample_index": rank,
    }
    if math.isfinite(scored.energy_per_atom):
        props["energy_per_atom"] = scored.energy_per_atom
    if scored.converged is not None:
        props["relax_converged"] = bool(scored.converged)
    props.update(extra)
    return scored.crystal.with_properties(**props)


def rank_by_energy(scored: Sequence[Scored]) -> list[Scored]:
    """Failed candidates dropped; the rest lowest energy first (input order when no energies)."""
    good = [s for s in scored if s.error is None]
    if any(math.isfinite(s.energy_per_atom) for s in good):
        good = [s for s in good if math.isfinite(s.energy_per_atom)]
        good.sort(key=lambda s: s.energy_per_atom)
    return good
