"""Uniqueness and novelty of crystals with a named matcher preset (MatterGen semantics).

* Crystals are compared only within groups: by **reduced formula** when every crystal (and,
  for novelty, every reference crystal) is ordered, otherwise by **chemical system**.
* Unique: greedy first occurrence. Crystal ``i`` is unique when ``fit(crystal_i, kept_j)`` is
  False for every earlier crystal ``j`` already kept in its group.
* Novel: ``fit(crystal, ref)`` is False for every reference crystal of the same group.

Both accept ``Crystal`` records or pymatgen ``Structure`` objects and run groups in parallel
processes; each structure is reduced once (see :mod:`xtalgen.metrics.fastmatch`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from pymatgen.core import Structure

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.matching import MATCHER_PRESETS
from xtalgen.metrics.fastmatch import PreparedMatcher
from xtalgen.parallel import parallel_map

__all__ = ["group_keys", "novel_mask", "unique_mask"]

GROUPINGS = ("auto", "formula", "chemsys")


def _structure(item: Crystal | Structure) -> Structure:
    return item.to_pymatgen() if isinstance(item, Crystal) else item


def _is_ordered(item: Crystal | Structure) -> bool:
    return item.is_ordered


def _resolve_grouping(group_by: str, *collections: Sequence[Any]) -> str:
    if group_by not in GROUPINGS:
        raise XtalgenError(f"group_by must be one of {GROUPINGS}, got {group_by!r}")
    if group_by != "auto":
        return group_by
    ordered = all(_is_ordered(x) for items in collections for x in items)
    return "formula" if ordered else "chemsys"


def group_keys(items: Sequence[Crystal | Structure], by: str) -> list[str]:
    """Reduced formula (``by='formula'``) or chemical system (``'chemsys'``) of each item."""
    keys = []
    for item in items:
        comp = item.composition
        keys.append(comp.reduced_formula if by == "formula" else comp.chemical_system)
    return keys


def _check_preset(preset: str) -> None:
    if preset not in MATCHER_PRESETS:
        raise XtalgenError(f"unknown matcher preset {preset!r}; choose one of {list(MATCHER_PRESETS)}")


def _unique_in_group(task: tuple[str, list[Any]]) -> list[bool]:
    preset, items = task
    if len(items) == 1:
        return [True]
    matcher = PreparedMatcher(preset)
    kept: list[Any] = []
    flags = []
    for item in items:
        prepared = matcher.prepare(_structure(item))
        unique = not any(matcher.fit(prepared, other) for other in kept)
        if unique:
            kept.append(prepared)
        flags.append(unique)
    return flags


def _novel_in_group(task: tuple[str, list[Any], list[Any]]) -> list[bool]:
    preset, items, references = task
    if not references:
        return [True] * len(items)
    matcher = PreparedMatcher(preset)
    prepared_refs: list[Any] = [None] * len(references)  # reduced lazily, then reused

    def ref(j: int) -> Any:
        if prepared_refs[j] is None:
            prepared_refs[j] = matcher.prepare(_structure(references[j]))
        return prepared_refs[j]

    flags = []
    for item in items:
        prepared = matcher.prepare(_structure(item))
        flags.append(not any(matcher.fit(prepared, ref(j)) for j in range(len(references))))
    return flags


def _grouped(keys: list[str]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        groups[key].append(i)
    return groups


def unique_mask(
    crystals: Sequence[Crystal | Structure],
    *,
    preset: str = "disordered",
    group_by: str = "auto",
    n_jobs: int | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Boolean mask, True for the first occurrence of each distinct structure."""
    _check_preset(preset)
    by = _resolve_grouping(group_by, crystals)
    groups = _grouped(group_keys(crystals, by))
    # largest groups first, so one long group does not finish last
    order = sorted(groups, key=lambda k: -len(groups[k]) ** 2)
    tasks = [(preset, [crystals[i] for i in groups[k]]) for k in order]
    results = parallel_map(_unique_in_group, tasks, n_jobs=n_jobs, desc="uniqueness", progress=progress)
    mask = np.zeros(len(crystals), dtype=bool)
    for key, flags in zip(order, results):
        mask[groups[key]] = flags
    return mask


def novel_mask(
    crystals: Sequence[Crystal | Structure],
    reference: Sequence[Crystal | Structure],
    *,
    preset: str = "disordered",
    group_by: str = "auto",
    n_jobs: int | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Boolean mask, True where a crystal matches no reference crystal of its group."""
    _check_preset(preset)
    by = _resolve_grouping(group_by, crystals, reference)
    groups = _grouped(group_keys(crystals, by))
    ref_groups = _grouped(group_keys(reference, by))
    order = sorted(groups, key=lambda k: -len(groups[k]) * (len(ref_groups.get(k, ())) + 1))
    tasks = [
        (preset, [crystals[i] for i in groups[k]], [reference[j] for j in ref_groups.get(k, ())])
        for k in order
    ]
    results = parallel_map(_novel_in_group, tasks, n_jobs=n_jobs, desc="novelty", progress=progress)
    mask = np.ones(len(crystals), dtype=bool)
    for key, flags in zip(order, results):
        mask[groups[key]] = flags
    return mask
