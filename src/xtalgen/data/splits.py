"""Offline splits: train / val / test recipes built only from the files bundled in the package.

The standard training splits are not bundled (see ``DATA_LICENSES.md``), so these recipes give
a fixed, documented substitute for working without a network. They follow the data README:

* MP-20: ``offline_train`` + ``offline_val`` = pilot/train + pilot/val + biternary/val,
  deduplicated by ``material_id`` (first occurrence kept), with every ``material_id`` of a test
  file (pilot/test, biternary/test) removed; a seeded 3% of that pool is ``offline_val``
  (8,344 unique structures: 8,094 ``offline_train``, 250 ``offline_val``).
  ``offline_test`` = ``pilot_test`` (the first 1,000 rows of the standard test split, whose
  rows are in random order, so a uniform sample of it);
  ``biternary_test`` = every standard test row with 2 or 3 elements.
* Perov-5, Carbon-24: the standard val split, seeded 97% / 3% into ``offline_train`` /
  ``offline_val`` (Perov-5 3,673 / 114, Carbon-24 1,971 / 61); ``offline_test`` = the standard
  test split. The training set is a third of the standard one: say so next to any number
  obtained with it.
* MPTS-52: only the standard val split (5,000 rows, years 1997-2004) is bundled. Its offline
  splits keep the chronological spirit of MPTS-52 (train on older, test on newer structures):
  ``offline_train`` = years 1997-2001 (3,288 rows), ``offline_val`` = 2002 (685 rows),
  ``offline_test`` = 2003-2004 (1,027 rows).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["HOLDOUT_FRACTION", "HOLDOUT_SEED", "RECIPES", "OfflineRecipe", "select_rows"]

HOLDOUT_FRACTION = 0.03
"""Fraction of the offline training pool held out as ``offline_val``."""

HOLDOUT_SEED = 20240601
"""Seed of the held-out draw (fixed: the offline splits are the same on every machine)."""

Selector = Callable[[pd.DataFrame, "set[str]"], np.ndarray]


@dataclass(frozen=True)
class OfflineRecipe:
    """An offline split: the concatenation of bundled ``parts`` (keys of ``DatasetSpec.bundled``),
    minus every ``material_id`` found in the ``exclude`` parts, then ``select`` (row positions
    of the concatenated table; ``None`` keeps every remaining row)."""

    parts: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    select: Selector | None = None


def _pool(table: pd.DataFrame, exclude: set[str]) -> np.ndarray:
    """Positions of first occurrences of each material_id that is not excluded."""
    ids = table["material_id"].astype(str)
    keep = ~ids.duplicated(keep="first").to_numpy() & ~ids.isin(exclude).to_numpy()
    return np.flatnonzero(keep)


def _holdout(pool: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split ``pool`` positions into (train, val), val being a seeded HOLDOUT_FRACTION of it."""
    rng = np.random.default_rng(HOLDOUT_SEED)
    n_val = max(1, round(HOLDOUT_FRACTION * len(pool)))
    val_mask = np.zeros(len(pool), dtype=bool)
    val_mask[rng.permutation(len(pool))[:n_val]] = True
    return pool[~val_mask], pool[val_mask]


def _holdout_train(table: pd.DataFrame, exclude: set[str]) -> np.ndarray:
    return _holdout(_pool(table, exclude))[0]


def _holdout_val(table: pd.DataFrame, exclude: set[str]) -> np.ndarray:
    return _holdout(_pool(table, exclude))[1]


def _years(first: int, last: int) -> Selector:
    def select(table: pd.DataFrame, exclude: set[str]) -> np.ndarray:
        pool = _pool(table, exclude)
        year = table["year"].to_numpy()[pool]
        return pool[(year >= first) & (year <= last)]

    return select


_MP20_POOL = ("pilot_train", "pilot_val", "biternary_val")
_MP20_TEST = ("pilot_test", "biternary_test")

RECIPES: dict[str, dict[str, OfflineRecipe]] = {
    "mp20": {
        "offline_train": OfflineRecipe(_MP20_POOL, _MP20_TEST, _holdout_train),
        "offline_val": OfflineRecipe(_MP20_POOL, _MP20_TEST, _holdout_val),
        "offline_test": OfflineRecipe(("pilot_test",)),
        "pilot_test": OfflineRecipe(("pilot_test",)),
        "biternary_test": OfflineRecipe(("biternary_test",)),
    },
    "perov5": {
        "offline_train": OfflineRecipe(("val",), ("test",), _holdout_train),
        "offline_val": OfflineRecipe(("val",), ("test",), _holdout_val),
        "offline_test": OfflineRecipe(("test",)),
    },
    "carbon24": {
        "offline_train": OfflineRecipe(("val",), ("test",), _holdout_train),
        "offline_val": OfflineRecipe(("val",), ("test",), _holdout_val),
        "offline_test": OfflineRecipe(("test",)),
    },
    "mpts52": {
        "offline_train": OfflineRecipe(("val",), (), _years(1997, 2001)),
        "offline_val": OfflineRecipe(("val",), (), _years(2002, 2002)),
        "offline_test": OfflineRecipe(("val",), (), _years(2003, 2004)),
    },
}


def select_rows(recipe: OfflineRecipe, table: pd.DataFrame, exclude: set[str]) -> np.ndarray:
    """Row positions of ``table`` (the concatenated parts) that the recipe keeps, in order."""
    if recipe.select is None:
        return _pool(table, exclude) if exclude else np.arange(len(table))
    return np.sort(recipe.select(table, exclude))
