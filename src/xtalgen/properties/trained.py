"""A trained property predictor by name: load it, call it, score it.

:func:`load_predictor` reads a predictor checkpoint (a shipped name such as
``"mp20-formation-energy"``, a property name, or a path) into a :class:`Predictor`, the callable
``list[Crystal] -> (N,) array`` that metrics, conditioning, rewards and screening use.
:func:`predictor_metrics` scores it on labelled crystals (MAE / RMSE; PU ROC-AUC and recall), and
:func:`record_metrics` stores those in the checkpoint's provenance. The network, its config and
its training objective are in :mod:`xtalgen.properties.predictor`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.models.checkpoint import read_checkpoint, write_checkpoint
from xtalgen.properties.predictor import PredictorConfig, PropertyPredictor, property_spec

__all__ = ["Predictor", "is_predictor_spec", "load_predictor", "predictor_metrics", "record_metrics",
           "roc_auc"]


class Predictor:
    """A trained property predictor behind the ``PropertyFn`` interface: ``predictor(crystals)
    -> (N,) array`` in ``units`` (NaN where a crystal cannot be featurised). ``info`` (name,
    property, units, validation metrics) is what ``xtalgen evaluate`` writes beside
    ``wdist_prop``."""

    def __init__(self, model: PropertyPredictor, *, name: str, checkpoint: str | None = None,
                 provenance: Mapping[str, Any] | None = None, batch_size: int = 64) -> None:
        self.model = model.eval()
        self.name = name
        self.checkpoint = checkpoint
        self.provenance = dict(provenance or {})
        self.batch_size = batch_size

    @property
    def config(self) -> PredictorConfig:
        return self.model.config

    @property
    def prop(self) -> str:
        return self.config.prop

    @property
    def units(self) -> str:
        return self.config.units

    @property
    def metrics(self) -> dict[str, Any]:
        """Validation metrics recorded in the checkpoint (empty when none were)."""
        return dict(self.provenance.get("metrics") or {})

    @property
    def info(self) -> dict[str, Any]:
        """JSON-friendly description: name, checkpoint, property, units, task, metrics."""
        info: dict[str, Any] = {"predictor": self.name, "checkpoint": self.checkpoint,
                                "property": self.prop, "target": self.config.target,
                                "units": self.units, "task": self.config.task}
        for key in ("dataset", "split", "val_split"):
            if key in self.provenance:
                info[f"trained_on_{key}"] = self.provenance[key]
        info["validation"] = self.metrics or "not recorded"
        return info

    def __call__(self, crystals: Sequence[Crystal]) -> np.ndarray:
        return self.predict(crystals)

    def unseen_elements(self, elements: Sequence[int]) -> list[int]:
        """Those of ``elements`` (atomic numbers) absent from the training crystals (none
        when the checkpoint did not record them)."""
        seen = set(self.config.elements)
        return [int(z) for z in elements if seen and int(z) not in seen]

    def predict(self, crystals: Sequence[Crystal]) -> np.ndarray:
        """(N,) predictions (see the class docstring)."""
        return self.model.predict(crystals, batch_size=self.batch_size)

    def __repr__(self) -> str:
        return f"Predictor({self.name!r}, {self.prop} in {self.units})"


def is_predictor_spec(spec: str) -> bool:
    """Whether ``spec`` names a trained predictor: a property name or alias, a shipped
    predictor name, or a ``.pt`` file."""
    if str(spec).endswith(".pt"):
        return True
    try:
        property_spec(str(spec))
    except XtalgenError:
        return False
    return True


def load_predictor(spec: str | Path, *, device: str = "cpu", batch_size: int = 64) -> Predictor:
    """A :class:`Predictor` from a checkpoint path, a shipped predictor name
    (``"mp20-formation-energy"``) or a property name (``"formation_energy"``, ``"band_gap"``,
    ``"synthesizability"``: its shipped predictor). A missing shipped file raises one
    :class:`XtalgenError` saying how to train it."""
    text = str(spec)
    path = Path(text).expanduser()
    if not path.is_file() and not text.endswith(".pt"):
        prop = property_spec(text)
        from xtalgen.checkpoints import PREDICTOR_DIR

        path = PREDICTOR_DIR / f"{prop.shipped}.pt"
        if not path.is_file():
            raise XtalgenError(
                f"no trained {prop.name} predictor: {prop.shipped}.pt is not in {PREDICTOR_DIR}; "
                f"train it with `{prop.train_command}` (sizes: xtalgen.properties.predictor) "
                f"and copy OUT/best.pt there as {prop.shipped}.pt, or pass a checkpoint file")
        name = prop.shipped
    else:
        name = text
    payload = read_checkpoint(path)
    family = payload.get("family", "iterative")
    if family != PredictorConfig.family:
        raise XtalgenError(f"checkpoint {str(path)!r} holds a {family} model, not a property "
                           "predictor")
    try:
        model = PropertyPredictor(PredictorConfig.from_dict(payload["model_config"]))
        state = {k: v.float() if v.is_floating_point() else v
                 for k, v in payload["ema_state_dict"].items()}
        model.load_state_dict(state)
    except (TypeError, KeyError, RuntimeError, ValueError) as exc:
        raise XtalgenError(f"checkpoint {str(path)!r} does not match this xtalgen version: "
                           f"{exc}") from None
    return Predictor(model.to(device), name=name, checkpoint=str(path),
                     provenance=payload.get("provenance"), batch_size=batch_size)


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (Mann-Whitney U, ties
    counted half); NaN without both classes."""
    scores, labels = np.asarray(scores, float), np.asarray(labels, bool)
    pos, neg = scores[labels], scores[~labels]
    if not len(pos) or not len(neg):
        return math.nan
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([pos, neg]))  # ties get their average rank
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def predictor_metrics(predictor: Predictor | PropertyPredictor,
                      crystals: Sequence[Crystal]) -> dict[str, Any]:
    """Metrics of a predictor on labelled crystals. Regression: ``mae`` and ``rmse`` (property
    units), ``n``. PU: ``roc_auc_pu`` (labelled positives against unlabelled crystals: a lower
    bound of the positive-negative AUC when the unlabelled hold positives), ``recall_at_0.5``
    (share of labelled positives scored >= 0.5, Jang et al.'s true-positive rate), counts."""
    model = predictor.model if isinstance(predictor, Predictor) else predictor
    config = model.config
    labels = np.array([config.label(c) for c in crystals], dtype=float)
    pred = model.predict(crystals)
    ok = np.isfinite(labels) & np.isfinite(pred)
    if config.task == "regression":
        err = pred[ok] - labels[ok]
        return {"n": int(ok.sum()), "mae": float(np.abs(err).mean()) if ok.any() else math.nan,
                "rmse": float(np.sqrt((err**2).mean())) if ok.any() else math.nan,
                "units": config.units}
    positive = labels[ok] > 0.5
    return {"n_positive": int(positive.sum()), "n_unlabelled": int((~positive).sum()),
            "roc_auc_pu": roc_auc(pred[ok], positive),
            "recall_at_0.5": float((pred[ok][positive] >= 0.5).mean()) if positive.any() else math.nan,
            "class_prior": config.class_prior}


def record_metrics(path: str | Path, crystals: Sequence[Crystal],
                   split: str | None = None) -> dict[str, Any]:
    """Compute :func:`predictor_metrics` of the checkpoint at ``path`` on ``crystals`` and
    store them in its ``provenance["metrics"]`` (with ``split``); returns them."""
    payload = read_checkpoint(path)
    metrics = predictor_metrics(load_predictor(path), crystals)
    if split is not None:
        metrics["split"] = split
    metrics["step"] = payload.get("step")
    provenance = dict(payload.get("provenance") or {})
    provenance["metrics"] = metrics
    payload["provenance"] = provenance
    fields = {k: v for k, v in payload.items() if k not in ("format", "version", "model_config")}
    write_checkpoint(path, model_config=payload["model_config"], **fields)
    return metrics
