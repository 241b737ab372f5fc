"""The last stage of screening: S.U.N. flags, synthesisability scores and ranks of a store.

Once every candidate of a run is finished, :func:`flag_and_rank` marks each row ``unique``,
``novel``, ``stable_*``, ``sun_*`` (the conventions of :mod:`xtalgen.screen.sun`), scores the
rankable ones for synthesisability when a scorer is given, and ranks them (``rank``, 1 = best)
by the keys of ``ScreenConfig.rank_by`` (:func:`rank_order`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.screen.store import CandidateStore
from xtalgen.screen.sun import CONVENTIONS, METASTABLE_THRESHOLD, stability_metrics

__all__ = ["RANK_KEYS", "flag_and_rank", "load_novelty_reference", "parse_rank_by", "rank_order",
           "synthesizability_scorer"]

RANK_KEYS: dict[str, tuple[bool, float]] = {
    "e_above_hull": (False, 0.025),
    "formation_energy": (False, 0.025),
    "synthesizability": (True, 0.0),
}
"""Rankable store keys -> (descending, default resolution). E_hull and formation energy
(eV/atom) rank ascending at a resolution of 0.025 eV/atom (about the potential's error, so that
a later key can decide between candidates the potential cannot tell apart); the
synthesisability score ranks descending, exactly."""


def load_novelty_reference(ref: str | Sequence[Crystal] | None) -> list[Crystal] | None:
    """The crystals of ``ScreenConfig.novelty_reference`` (None: novelty not checked)."""
    if ref is None or not isinstance(ref, str):
        return None if ref is None else list(ref)
    from xtalgen.data import load_dataset

    if Path(ref).expanduser().exists():
        return list(load_dataset(Path(ref).expanduser(), progress=False))
    name, _, split = ref.partition(":")
    if not split:
        raise XtalgenError(f"novelty reference must be NAME:SPLIT or a path, got {ref!r}")
    return list(load_dataset(name, split, progress=False))


def synthesizability_scorer(
    spec: str | Callable[[Sequence[Crystal]], Any] | None,
) -> Callable[[Sequence[Crystal]], Any] | None:
    """The synthesisability scorer of ``ScreenConfig.synthesizability`` (loaded once)."""
    if spec is None or callable(spec):
        return spec
    from xtalgen.properties.trained import load_predictor

    predictor = load_predictor("synthesizability" if spec in ("", "default") else spec)
    if predictor.config.task != "pu-classification":
        raise XtalgenError(f"{spec!r} predicts {predictor.prop}, not synthesizability")
    return predictor


def parse_rank_by(spec: str | Sequence[str]) -> list[tuple[str, bool, float]]:
    """``"e_above_hull,synthesizability"`` (or a sequence of keys; ``KEY:RES`` sets a
    resolution) -> [(key, descending, resolution)]; unknown keys raise XtalgenError."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        key, _, res = item.partition(":")
        if key not in RANK_KEYS:
            raise XtalgenError(f"cannot rank by {key!r}; rank keys: {', '.join(RANK_KEYS)}")
        descending, resolution = RANK_KEYS[key]
        if res:
            try:
                resolution = float(res)
            except ValueError:
                raise XtalgenError(f"bad resolution in rank key {item!r}") from None
            if resolution < 0:
                raise XtalgenError(f"rank resolution must be >= 0, got {item!r}")
        out.append((key, descending, resolution))
    if not out:
        raise XtalgenError("rank_by names no key")
    return out


def rank_order(rows: Sequence[dict[str, Any]], rank_by: str | Sequence[str]) -> list[int]:
    """Positions of ``rows`` (dicts of store keys), best first, by the keys of ``rank_by``.

    The rule: lexicographic over the keys in the order given. Every key but the last is
    compared at its resolution: rounded to the nearest multiple of it (``round(value /
    resolution)``, halves up; E_hull 0.025 eV/atom unless ``KEY:RES`` says otherwise, 0 =
    exact), so that the on-hull phases (E_hull 0 +- 0.0125) share one step; the last key is
    compared exactly; E_hull and formation energy
    ascending, synthesisability descending; a missing or NaN value comes after every value of
    its key. Remaining ties: exact E_hull, then input order. So ``e_above_hull,synthesizability``
    orders by E_hull in steps of 0.025 eV/atom and, within a step, the more synthesisable first;
    ``synthesizability,e_above_hull`` puts the score first.
    """
    keys = parse_rank_by(rank_by)

    def value(row: dict[str, Any], key: str) -> float:
        v = row.get(key)
        return float(v) if v is not None and math.isfinite(float(v)) else math.nan

    def sort_key(i: int) -> tuple[Any, ...]:
        parts: list[Any] = []
        for k, (key, descending, resolution) in enumerate(keys):
            v = value(rows[i], key)
            if math.isnan(v):
                parts.append((1, 0.0))
                continue
            if resolution > 0 and k < len(keys) - 1:
                v = math.floor(v / resolution + 0.5)
            parts.append((0, -v if descending else v))
        e = value(rows[i], "e_above_hull")
        return (*parts, math.inf if math.isnan(e) else e, i)

    return sorted(range(len(rows)), key=sort_key)


def flag_and_rank(store: CandidateStore, config: Any,
                  scorer: Callable[[Sequence[Crystal]], Any] | None = None,
                  submitted: set[str] | None = None) -> None:
    """Uniqueness, novelty, stability flags, S.U.N. metrics, synthesisability scores (with a
    ``scorer``) and ranks of all candidates, under ``config`` (the run's
    :class:`~xtalgen.screen.pipeline.ScreenConfig`; not imported here, which imports this). A pending row that is not among the ``submitted``
    ids is stale (an interrupted run stored a candidate whose id this submission does not
    produce, e.g. a structure hash that changed in a file round trip) and is left out."""
    from xtalgen.metrics.novelty import novel_mask, unique_mask

    rows = sorted(store.rows(), key=lambda r: r.get("index", 0))
    if submitted is not None:
        rows = [r for r in rows if r.get("stage") != "pending" or r.get("cid") in submitted]
    if any(r.get("stage") == "pending" for r in rows):
        return  # an interrupted run: S.U.N. waits until every candidate is done
    crystals = [store.crystal(r) for r in rows]
    n_jobs = 1 if (config.n_workers or 2) <= 1 else config.n_workers
    # disordered inputs are not candidates themselves (their orderings are, if screened): left
    # in, every ordering would count as a duplicate of its parent under this matcher
    members = [i for i, r in enumerate(rows) if r.get("stage") != "disordered"]
    unique = np.zeros(len(rows), dtype=bool)
    if members:
        unique[members] = unique_mask([crystals[i] for i in members], preset="disordered",
                                      n_jobs=n_jobs, progress=config.progress)
    unique &= np.array([r.get("stage") != "duplicate" for r in rows])
    reference = load_novelty_reference(config.novelty_reference)
    if reference is None:
        novel = np.ones(len(rows), dtype=bool)
    else:
        novel = novel_mask(
            crystals, reference, preset="disordered", n_jobs=n_jobs, progress=config.progress
        )
    ok_stages = (
        ("relaxed", "duplicate") if config.require_converged else ("relaxed", "duplicate", "failed")
    )
    e_hull = np.array(
        [
            r.get("e_above_hull", math.nan)
            if r.get("stage") in ok_stages
            and (r.get("converged", False) or not config.require_converged)
            else math.nan
            for r in rows
        ],
        dtype=float,
    )
    rmsd = np.array([r.get("rmsd", math.nan) for r in rows], dtype=float)
    summary = {
        name: stability_metrics(e_hull, unique, novel, rmsd, convention=name).as_dict()
        for name in CONVENTIONS
    }
    finite = np.isfinite(e_hull) & unique
    ranked = [int(i) for i in np.flatnonzero(finite)]
    scores: dict[int, float] = {}
    if scorer is not None and ranked:  # the relaxed structures of the rankable candidates
        values = np.asarray(scorer([crystals[i] for i in ranked]), dtype=float)
        scores = {i: float(v) for i, v in zip(ranked, values)}
    keyed = [{"e_above_hull": float(e_hull[i]), "formation_energy": rows[i].get("formation_energy"),
              "synthesizability": scores.get(i)} for i in ranked]
    rank = {ranked[j]: k + 1 for k, j in enumerate(rank_order(keyed, config.rank_by))}
    with store.transaction():
        for i, row in enumerate(rows):
            e = e_hull[i]
            flags = {
                "unique": bool(unique[i]),
                "novel": bool(novel[i]),
                "metastable": bool(e <= METASTABLE_THRESHOLD) if math.isfinite(e) else False,
            }
            for name, conv in CONVENTIONS.items():
                stable = bool(math.isfinite(e) and e <= conv.threshold)
                flags[f"stable_{name}"] = stable
                flags[f"sun_{name}"] = stable and flags["unique"] and flags["novel"]
            flags["msun"] = flags["metastable"] and flags["unique"] and flags["novel"]
            delete = ["rank"] if "rank" in row.key_value_pairs and i not in rank else []
            if i in rank:
                flags["rank"] = rank[i]
            if i in scores and math.isfinite(scores[i]):
                flags["synthesizability"] = scores[i]
            elif "synthesizability" in row.key_value_pairs and scorer is not None:
                delete.append("synthesizability")
            store.db.update(row.id, delete_keys=delete, **flags)
    _best_orderings(store, rows, e_hull)
    novelty_ref = config.settings()["novelty_reference"]
    store.set_metadata(
        summary=summary, novelty_reference=novelty_ref, novelty_checked=reference is not None
    )


def _best_orderings(store: CandidateStore, rows: list[Any], e_hull: np.ndarray) -> None:
    """Each disordered parent gets the lowest E_hull among its screened orderings."""
    best: dict[str, tuple[float, str]] = {}
    for row, e in zip(rows, e_hull):
        parent = row.get("parent_cid")
        if parent and math.isfinite(e) and (parent not in best or e < best[parent][0]):
            best[parent] = (float(e), row.get("cid"))
    with store.transaction():
        for row in rows:
            if row.get("stage") == "disordered" and row.get("cid") in best:
                e, cid = best[row.get("cid")]
                store.db.update(row.id, best_e_above_hull=e, best_ordering=cid)
