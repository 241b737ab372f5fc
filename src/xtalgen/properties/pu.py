"""Positive-unlabelled data for the synthesisability predictor, and the PU-bagging baseline.

:func:`predictor_crystals` assembles the crystals of a predictor run (the command in
:mod:`xtalgen.properties.predictor`): the training split, extra crystals added as unlabelled
(``theoretical=True``, minus the split's ``material_id``s), a cap on the number of sites, and a
seeded held-out part. ``xtalgen train --model predictor`` and ``benchmarks/bench_predictors.py``
both call it, so the baseline is scored on the very crystals the predictor was validated on.

:func:`pu_bagging_scores` is the simple baseline beside the trained nnPU model: PU bagging as
Jang et al. (JACS 2020) used it (Mordelet and Vert's bagging SVM scheme), with a logistic
regression on element fractions (composition only) in place of their CGCNN: each of ``n_bags``
classifiers learns the labelled positives against a random subset of the unlabelled of the same
size, and a crystal's score is the mean of their probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from xtalgen.crystal import MAX_Z, Crystal
from xtalgen.errors import XtalgenError

__all__ = ["element_fractions", "predictor_crystals", "pu_bagging_scores"]


def predictor_crystals(train_set: Sequence[Crystal], val_set: Sequence[Crystal] | None = None, *,
                       unlabelled: str = "", holdout: float = 0.0, max_atoms: int = 0,
                       seed: int = 0) -> tuple[list[Crystal], list[Crystal] | None]:
    """``(train, val)`` crystals of a predictor run. ``unlabelled``: ``NAME:SPLIT`` (or a path)
    of crystals added as theoretical, minus the training split's material_ids; ``max_atoms``:
    keep crystals of at most that many sites (0: all); ``holdout``: a seeded fraction of the
    result becomes the validation set (replacing ``val_set``)."""
    from xtalgen.data import load_dataset

    crystals = list(train_set)
    if unlabelled:
        name, _, part = unlabelled.partition(":")
        extra = load_dataset(Path(unlabelled)) if Path(unlabelled).exists() else load_dataset(
            name, part or "offline_train")
        known = {c.properties.get("material_id") for c in crystals} - {None}
        crystals += [c.with_properties(theoretical=True) for c in extra
                     if c.properties.get("material_id") not in known]
    if max_atoms:
        crystals = [c for c in crystals if c.num_sites <= max_atoms]
        if val_set is not None:
            val_set = [c for c in val_set if c.num_sites <= max_atoms]
    if not crystals:
        raise XtalgenError("no training crystal left (check --max-atoms)")
    val = list(val_set) if val_set is not None else None
    if holdout:
        order = np.random.default_rng(seed).permutation(len(crystals))
        n_val = max(1, round(holdout * len(crystals)))
        val = [crystals[i] for i in order[:n_val]]
        crystals = [crystals[i] for i in order[n_val:]]
    return crystals, val


def element_fractions(crystals: Sequence[Crystal]) -> np.ndarray:
    """(N, MAX_Z) fraction of each element (column Z - 1) in each crystal's composition."""
    x = np.zeros((len(crystals), MAX_Z))
    for i, c in enumerate(crystals):
        z, counts = np.unique(c.species, return_counts=True)
        x[i, z - 1] = counts / counts.sum()
    return x


def pu_bagging_scores(x_train: np.ndarray, positive: np.ndarray, x_test: np.ndarray, *,
                      n_bags: int = 50, c: float = 1.0, seed: int = 0) -> np.ndarray:
    """(M,) PU-bagging scores in [0, 1] of the rows of ``x_test``: the mean probability of
    ``n_bags`` logistic regressions (inverse L2 weight ``c``), each fitted on the labelled
    positives (``positive`` True) against as many unlabelled rows drawn without replacement."""
    from sklearn.linear_model import LogisticRegression

    positive = np.asarray(positive, dtype=bool)
    pos, unl = np.flatnonzero(positive), np.flatnonzero(~positive)
    if not len(pos) or not len(unl):
        raise XtalgenError("PU bagging needs labelled positives and unlabelled rows")
    rng = np.random.default_rng(seed)
    scores = np.zeros(len(x_test))
    for _ in range(n_bags):
        bag = rng.choice(unl, size=min(len(pos), len(unl)), replace=False)
        rows = np.concatenate([pos, bag])
        y = np.concatenate([np.ones(len(pos)), np.zeros(len(bag))])
        model = LogisticRegression(C=c, max_iter=1000).fit(x_train[rows], y)
        scores += model.predict_proba(x_test)[:, 1]
    return scores / n_bags
