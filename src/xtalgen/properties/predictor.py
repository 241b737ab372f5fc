"""Trained property predictors: formation energy, band gap and synthesisability of a crystal.

One model family, ``"predictor"``: the shared periodic backbone (:class:`xtalgen.nn.backbone.
Backbone`, CSPNet-style, time input fixed at 0), the mean of its atom states, and an MLP head
with one output. It is trained by the one training loop (:func:`xtalgen.train.train`: the
config names its module class, see :func:`xtalgen.models.learned.model_class_for`) and saved in
the one checkpoint format (:mod:`xtalgen.models.checkpoint`, ``family="predictor"``). A
predictor is not a generator: it is not in the generator family registry, and it is loaded
with :func:`xtalgen.properties.trained.load_predictor`, never with ``load_model``.

Tasks:

* ``"regression"``: the target column of ``Crystal.properties`` (e.g. ``formation_energy_per_
  atom``, eV/atom; ``band_gap``, eV), standardised with the training mean and standard deviation
  (``fit_statistics``); loss L1 (default: the validation loss times ``std`` is then the MAE in
  the property's units) or MSE on the standardised values.
* ``"pu-classification"``: synthesisability by positive-unlabelled learning. A crystal is a
  labelled positive when its target column (``theoretical``) equals ``positive_value``
  (``False``: known from the ICSD), otherwise it is unlabelled (theoretical: made or not, no one
  knows). Jang et al. (JACS 2020) used PU *bagging* (many classifiers, each on the positives
  against a random subset of the unlabelled, averaged). Here it is the **non-negative PU risk
  estimator** (nnPU, Kiryo et al., NeurIPS 2017) instead, because it trains one model in one run
  of the one training loop and one checkpoint, where bagging needs an ensemble of runs. With the
  classifier output g, the logistic loss l(z) = log(1 + exp(-z)) and the class prior pi (the
  share of positives among the unlabelled crystals, ``class_prior``, an assumption to state with
  every result), the risk of a batch is

      pi * mean_P l(g) + max(0, mean_U l(-g) - pi * mean_P l(-g)),

  the clamp keeping the estimate of the negative-class risk non-negative. When that estimate
  falls below zero, the step follows Kiryo et al.'s Algorithm 1 (beta = 0, gamma = 1): it
  descends on -(mean_U l(-g) - pi * mean_P l(-g)), pushing the over-fitted unlabelled crystals
  back. The logistic loss replaces the paper's sigmoid loss because the sigmoid saturates: a run
  with it collapsed to g << 0 for every crystal, with a vanishing gradient. The score is
  ``sigmoid(g)`` in [0, 1], 0.5 at the
  decision boundary; it ranks crystals but is not a calibrated probability.

Use: :func:`xtalgen.properties.trained.load_predictor` (``load_predictor("formation_energy")``,
or a shipped name such as ``"mp20-formation-energy"``, or a checkpoint path) returns a
:class:`~xtalgen.properties.trained.Predictor`, a callable
``list[Crystal] -> (N,) array`` (NaN where a crystal cannot be featurised: no sites, a singular
lattice, an element beyond the model's types, partial occupancies).

Training (the commands that make the shipped files). Sizes for the 2-core CPU with one torch
thread, measured while the other core was busy: the 4 x 256 backbone (1.8 M parameters) takes
about 0.28 s per batch of 64 MP-20 crystals, so ``--max-time 2400`` (40 min, the cosine laid over
that time) is about 8,500 steps, some 65 epochs of MP-20 ``offline_train`` (8,094 crystals);
the 3 x 128 one (0.4 M) is 3x faster. ``best.pt`` (lowest validation loss) is the file to ship:
``benchmarks/bench_predictors.py --ship OUT NAME`` writes it to
``src/xtalgen/checkpoints/predictors/NAME.pt`` (:func:`xtalgen.models.learned.slim_checkpoint`;
predictors stay in fp32).

* ``mp20-formation-energy`` (validation: MP-20 ``offline_val``, 250 crystals)::

      xtalgen train --model predictor --property formation_energy --dataset mp20 \
        --hidden-dim 256 --num-layers 4 --batch-size 64 --lr 5e-4 --max-steps 100000 \
        --max-time 2400 --lr-schedule time --val-every 500 --threads 1 --out runs/pred-eform

* ``mp20-band-gap``: the same with ``--property band_gap --out runs/pred-gap``.
* ``mpts52-synthesizability`` (about 2,300 ICSD-known MPTS-52 crystals of at most 20 sites
  against about 7,800 unlabelled MP-20 ones; a seeded 20% of both held out)::

      xtalgen train --model predictor --property synthesizability --dataset mpts52 \
        --split val --holdout 0.2 --unlabelled mp20:offline_train --max-atoms 20 \
        --class-prior 0.5 --hidden-dim 128 --num-layers 3 --batch-size 64 --lr 3e-4 \
        --max-steps 100000 --max-time 1800 --lr-schedule time --val-every 250 --threads 1 \
        --out runs/pred-synth

  The bundled MPTS-52 ``val`` split holds no theoretical crystal (every row has
  ``theoretical == False``; its chronological split dates each structure by its first report),
  so PU learning on it
  alone has no unlabelled class; the unlabelled crystals come from MP-20 (every one of which is
  unlabelled, known or not; those of the training split's material_ids are dropped), and
  ``--max-atoms 20`` keeps the cell size from telling the two sources apart. The class prior
  (share of synthesisable crystals among the MP-20 ones) is an assumption; other differences
  between the sources (MP-20's E_hull cut, MPTS-52's years 1997-2004) can still leak into the
  score, so report its AUC as a PU AUC on held-out crystals, not as a synthesisability AUC.

After training, ``xtalgen train`` writes the validation metrics (MAE; for PU the ROC-AUC of
labelled positives against unlabelled and the recall of held-out positives at 0.5) into each
checkpoint's ``provenance["metrics"]`` (:func:`xtalgen.properties.trained.record_metrics`), and ``xtalgen evaluate
--property`` copies them into ``metrics.json``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.nn.backbone import Backbone, BackboneConfig, types_to_onehot
from xtalgen.nn.layers import scatter_mean
from xtalgen.representations.tensors import CrystalBatch

__all__ = ["PROPERTIES", "PredictorConfig", "PropertyPredictor", "PropertySpec", "nnpu_risk",
           "property_spec"]

TASKS = ("regression", "pu-classification")


@dataclass(frozen=True)
class PropertySpec:
    """A property xtalgen ships a predictor for: its column, units, task and shipped name."""

    name: str
    column: str
    units: str
    task: str
    shipped: str
    train_command: str


PROPERTIES: dict[str, PropertySpec] = {
    "formation_energy": PropertySpec(
        "formation_energy", "formation_energy_per_atom", "eV/atom", "regression",
        "mp20-formation-energy",
        "xtalgen train --model predictor --property formation_energy --dataset mp20 "
        "--max-time 2400 --lr-schedule time --val-every 500 --out runs/pred-eform"),
    "band_gap": PropertySpec(
        "band_gap", "band_gap", "eV", "regression", "mp20-band-gap",
        "xtalgen train --model predictor --property band_gap --dataset mp20 "
        "--max-time 2400 --lr-schedule time --val-every 500 --out runs/pred-gap"),
    "synthesizability": PropertySpec(
        "synthesizability", "theoretical", "score in [0, 1]", "pu-classification",
        "mpts52-synthesizability",
        "xtalgen train --model predictor --property synthesizability --dataset mpts52 "
        "--split val --holdout 0.2 --unlabelled mp20:offline_train --max-atoms 20 "
        "--hidden-dim 128 --num-layers 3 --lr 3e-4 "
        "--max-time 1800 --lr-schedule time --val-every 250 --out runs/pred-synth"),
}
"""Property name -> what it predicts and how its shipped checkpoint is made."""

ALIASES = {"formation-energy": "formation_energy", "e_form": "formation_energy",
           "formation_energy_per_atom": "formation_energy", "band-gap": "band_gap",
           "synthesisability": "synthesizability"}


def property_spec(name: str) -> PropertySpec:
    """The :class:`PropertySpec` of a property name (or an alias, or its shipped name)."""
    key = ALIASES.get(name, name)
    if key in PROPERTIES:
        return PROPERTIES[key]
    for spec in PROPERTIES.values():
        if name == spec.shipped:
            return spec
    raise XtalgenError(f"unknown property {name!r}; known: {', '.join(PROPERTIES)}")


@dataclass
class PredictorConfig:
    """A property predictor: backbone size, target, task and the statistics of its data."""

    family: ClassVar[str] = "predictor"
    prop: str = "formation_energy"
    """Property name (a key of :data:`PROPERTIES`, or any name for a custom column)."""
    target: str = "formation_energy_per_atom"
    """Column of ``Crystal.properties`` the model learns (PU: the labelled/unlabelled flag)."""
    units: str = "eV/atom"
    task: str = "regression"
    loss: str = "l1"
    """Regression loss on standardised targets: ``"l1"`` or ``"mse"``."""
    backbone: BackboneConfig = field(
        default_factory=lambda: BackboneConfig(hidden_dim=128, num_layers=3))
    head_dim: int = 128
    nonnegative: bool = False
    """Clamp predictions at 0 (band gaps)."""
    class_prior: float = 0.5
    """PU: share of positives among the unlabelled crystals (an assumption; nnPU's pi)."""
    positive_value: bool = False
    """PU: the target value of a labelled positive (``theoretical == False``: ICSD-known)."""
    lattice_scale: float = 1.0
    """Mean lattice-vector length of the training crystals (angstrom); lattices enter the
    backbone in these units."""
    mean: float = 0.0
    std: float = 1.0
    """Regression: mean and standard deviation of the training targets (property units)."""
    elements: list[int] = field(default_factory=list)
    """Atomic numbers of the training crystals (empty: not recorded); a crystal with another
    element is outside what the model has seen (:meth:`Predictor.unseen_elements`)."""

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise XtalgenError(f"predictor task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if self.loss not in ("l1", "mse"):
            raise XtalgenError(f"predictor loss must be l1 or mse, got {self.loss!r}")
        if not 0 < self.class_prior < 1:
            raise XtalgenError(f"class prior must be in (0, 1), got {self.class_prior}")

    @classmethod
    def for_property(cls, name: str, **kwargs: Any) -> PredictorConfig:
        """The config of a known property (``"formation_energy"``, ``"band_gap"``,
        ``"synthesizability"``); ``kwargs`` override fields."""
        spec = property_spec(name)
        base: dict[str, Any] = dict(prop=spec.name, target=spec.column, units=spec.units,
                                    task=spec.task, nonnegative=spec.name == "band_gap")
        return cls(**{**base, **kwargs})

    @staticmethod
    def model_class() -> type[nn.Module]:
        """The module this config builds (what the training loop asks for)."""
        return PropertyPredictor

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PredictorConfig:
        data = dict(data)
        return cls(backbone=BackboneConfig(**data.pop("backbone", {})), **data)

    def label(self, crystal: Crystal) -> float:
        """The training label of a crystal: the target value (regression; NaN when missing)
        or 1.0 for a labelled positive and 0.0 for an unlabelled crystal (PU; NaN when the
        flag is missing)."""
        value = crystal.properties.get(self.target)
        if self.task == "pu-classification":
            if value is None or (isinstance(value, float) and math.isnan(value)):
                return math.nan
            if isinstance(value, str):
                value = value.strip().lower() in ("true", "1", "yes")
            return 1.0 if bool(value) == self.positive_value else 0.0
        try:
            return float(value)
        except (TypeError, ValueError):
            return math.nan

    def fit_statistics(self, crystals: Sequence[Crystal]) -> PredictorConfig:
        """Set ``lattice_scale``, ``elements`` and (regression) ``mean``/``std`` from the
        training crystals."""
        labels = np.array([self.label(c) for c in crystals], dtype=float)
        finite = np.isfinite(labels)
        if not finite.any():
            raise XtalgenError(f"no training crystal has a value of {self.target!r}")
        kept = [c for c, ok in zip(crystals, finite) if ok]
        self.elements = sorted({int(z) for c in kept for z in c.species})
        self.lattice_scale = float(np.mean([np.linalg.norm(c.lattice, axis=1) for c in kept]))
        if self.task == "regression":
            self.mean = float(labels[finite].mean())
            self.std = float(max(labels[finite].std(), 1e-6))
        elif labels[finite].min() == labels[finite].max():
            kind = "positive" if labels[finite][0] else "unlabelled"
            raise XtalgenError(f"PU learning needs labelled positives and unlabelled crystals; "
                               f"every training crystal is {kind} ({self.target}); add unlabelled "
                               "ones (xtalgen train --unlabelled NAME:SPLIT)")
        return self


def featurisable(crystal: Crystal, n_types: int) -> bool:
    """Whether the backbone can read ``crystal``: ordered, at least one site, elements 1 to
    ``n_types``, a finite lattice of non-zero volume."""
    if crystal.num_sites == 0 or not crystal.is_ordered:
        return False
    species = np.asarray(crystal.species)
    lattice = np.asarray(crystal.lattice, dtype=float)
    return bool(species.min() >= 1 and species.max() <= n_types and np.isfinite(lattice).all()
                and abs(np.linalg.det(lattice)) > 1e-6 and np.isfinite(crystal.frac_coords).all())


class PropertyPredictor(nn.Module):
    """Backbone (t = 0) -> mean over atoms -> MLP -> one number per crystal (see the module
    docstring for the losses); follows the learned-family contract of
    :mod:`xtalgen.models.learned` (``prepare``, ``collate``, ``loss``)."""

    ddp_find_unused_parameters = True  # the backbone's field heads are not used

    def __init__(self, config: PredictorConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = Backbone(config.backbone)
        hidden = config.backbone.hidden_dim
        self.head = nn.Sequential(nn.Linear(hidden, config.head_dim), nn.SiLU(),
                                  nn.Linear(config.head_dim, config.head_dim), nn.SiLU(),
                                  nn.Linear(config.head_dim, 1))

    def prepare(self, crystals: Sequence[Crystal]) -> list[tuple[Crystal, float]]:
        """(crystal, label) of every featurisable crystal with a finite label."""
        out = []
        for crystal in crystals:
            label = self.config.label(crystal)
            if math.isfinite(label) and featurisable(crystal, self.config.backbone.n_types):
                out.append((crystal, label))
        return out

    def collate(self, examples: Sequence[tuple[Crystal, float]],
                device: torch.device | str = "cpu") -> dict[str, Any]:
        """``{"crystals": CrystalBatch, "y": (B,) labels}``."""
        crystals = CrystalBatch.from_crystals([c for c, _ in examples], device=device)
        y = torch.tensor([label for _, label in examples], dtype=torch.float32, device=device)
        return {"crystals": crystals, "y": y}

    def raw(self, batch: CrystalBatch) -> torch.Tensor:
        """(B,) network output: standardised value (regression) or logit (PU)."""
        types = types_to_onehot(batch.atom_types, self.config.backbone.n_types)
        t = torch.zeros(batch.num_graphs, device=batch.device)
        lattices = batch.lattices / self.config.lattice_scale
        h = self.backbone.node_states(t, types, batch.frac_coords, lattices, batch.num_atoms,
                                      batch.batch)
        return self.head(scatter_mean(h, batch.batch, batch.num_graphs)).squeeze(-1)

    def loss(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        out = self.raw(batch["crystals"])
        y = batch["y"]
        if self.config.task == "regression":
            z = (y - self.config.mean) / self.config.std
            err = out - z
            loss = err.abs().mean() if self.config.loss == "l1" else (err**2).mean()
            return {"loss": loss, "mae": err.abs().mean() * self.config.std}
        return nnpu_risk(out, y, self.config.class_prior)

    def forward(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        return self.loss(batch)

    def to_units(self, out: torch.Tensor) -> torch.Tensor:
        """Network output -> property units (regression) or score in [0, 1] (PU)."""
        if self.config.task == "pu-classification":
            return torch.sigmoid(out)
        value = out * self.config.std + self.config.mean
        return value.clamp(min=0.0) if self.config.nonnegative else value

    @torch.no_grad()
    def predict(self, crystals: Sequence[Crystal], batch_size: int = 64) -> np.ndarray:
        """(N,) predictions in the property's units (PU: score); NaN where not featurisable."""
        crystals = list(crystals)
        out = np.full(len(crystals), np.nan)
        device = next(self.parameters()).device
        ok = [i for i, c in enumerate(crystals) if featurisable(c, self.config.backbone.n_types)]
        was_training = self.training
        self.eval()
        try:
            for start in range(0, len(ok), batch_size):
                idx = ok[start:start + batch_size]
                batch = CrystalBatch.from_crystals([crystals[i] for i in idx], device=device)
                out[idx] = self.to_units(self.raw(batch)).double().cpu().numpy()
        finally:
            self.train(was_training)
        return out


def nnpu_risk(logits: torch.Tensor, y: torch.Tensor, prior: float) -> dict[str, torch.Tensor]:
    """Non-negative PU risk (Kiryo et al. 2017, Algorithm 1 with beta = 0, gamma = 1) with the
    logistic loss; ``y`` 1 = labelled positive, 0 = unlabelled. ``loss`` has the value of the
    nnPU risk estimate; its gradient is the estimate's, or, where the negative-class term is
    below zero, that of minus the term (the paper's defitting step). A batch without positives
    has no positive-risk terms."""
    pos, unl = y > 0.5, y <= 0.5
    zero = logits.sum() * 0.0
    softplus = torch.nn.functional.softplus
    risk_pos = softplus(-logits[pos]).mean() if pos.any() else zero       # P as positive
    risk_pos_neg = softplus(logits[pos]).mean() if pos.any() else zero    # P as negative
    risk_unl_neg = softplus(logits[unl]).mean() if unl.any() else zero    # U as negative
    negative = risk_unl_neg - prior * risk_pos_neg
    risk = prior * risk_pos + torch.clamp(negative, min=0.0)
    step = -negative if float(negative) < 0 else risk
    loss = risk.detach() + step - step.detach()
    return {"loss": loss, "risk_positive": prior * risk_pos, "risk_negative": negative}
