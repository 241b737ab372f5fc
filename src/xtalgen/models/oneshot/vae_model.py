"""The CDVAE-style crystal VAE (Xie et al., ICLR 2022) as one ``nn.Module``: encoder, heads, decoder.

* **Encoder**: a second instance of the shared periodic :class:`~xtalgen.nn.backbone.Backbone`
  (time fixed at 0, clean one-hot types, lattice in units of ``lattice_scale``), its atom states
  mean-pooled per crystal, then two linear maps to the mean and log-variance of
  ``q(z | crystal)``, ``z`` in R^``latent_dim``.
* **Heads on z** (MLPs, CDVAE's set): number of atoms (classes 1..``max_atoms``, cross-entropy);
  composition (a distribution over elements, cross-entropy against the crystal's element
  fractions, as CDVAE's per-atom composition loss); lattice (the six standardised k numbers of
  :mod:`xtalgen.representations.lattice`, MSE); property (standardised, MSE, only where the
  crystal has a label: MP-20 ``formation_energy_per_atom``, Perov-5 ``heat_ref``).
* **Decoder**: the iterative model :class:`~xtalgen.models.iterative.generative.
  CrystalGenerativeModel` on its **CSP** task with the **flow** process (FlowMM-style; CDVAE's
  annealed score matching is replaced by the faster flow, as the issue allows), conditioned on
  ``z`` through ``cond = Linear(z)`` added to the backbone's atom input states. The atom types
  are fixed before the flow runs, z -> number of atoms -> composition -> types (the counts are
  the composition head's fractions times the atom count, rounded by largest remainders), the
  lattice is the lattice head's (CDVAE's decoder; ``lattice_from_head``), and the flow moves the
  coordinates given the types, the lattice and z (its lattice follows the straight path to the
  head's lattice). Why CSP and not the masked DNG
  type path: CDVAE decodes the composition from z, so the types belong to the one-shot part;
  the composition head is then trained directly (a clean loss, no masking noise) and the flow
  only has to place atoms, which it does well at few steps. Training is unchanged either way
  (the flow learns lattice and coordinates, the head the lattice from z): with
  ``lattice_from_head=False`` the cell comes from the flow instead. Measured on Perov-5 (the
  shipped model), the flow ignores most of z (KL about 19 nats), so only the head's lattice
  carries the encoded cell into a reconstruction.
* **Loss**: ``decoder_weight * flow + beta(step) * KL + num_atoms_weight * CE_N +
  composition_weight * CE_comp + lattice_weight * MSE_lattice + property_weight * MSE_prop``,
  KL per crystal summed over the latent dimensions (CDVAE). ``beta`` is annealed linearly from
  0 over ``kl_anneal_steps`` training steps, counted in the buffer ``kl_step`` (saved in the
  state dict, so a resumed run continues the schedule).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.models.iterative.flow import FlowConfig
from xtalgen.models.iterative.generative import CrystalGenerativeModel, ModelConfig
from xtalgen.nn.backbone import Backbone, BackboneConfig, types_to_onehot
from xtalgen.nn.layers import scatter_mean
from xtalgen.representations.tensors import CrystalBatch

__all__ = ["PROPERTY_COLUMNS", "CrystalVAE", "VAEBatch", "VAEConfig", "apportion"]

PROPERTY_COLUMNS: dict[str, tuple[str, str]] = {
    "formation_energy_per_atom": ("formation_energy", "eV/atom"),
    "heat_ref": ("heat_of_formation", "eV/atom"),
}
"""Label column -> (property name, units) of the property head; the first column with labels
in the training set is used (MP-20: formation energy; Perov-5: heat of formation)."""


def _decoder_default() -> ModelConfig:
    return ModelConfig(process="flow", task="csp", lattice_repr="ks",
                       backbone=BackboneConfig(hidden_dim=128, num_layers=4),
                       flow=FlowConfig(n_steps=50))


@dataclass
class VAEConfig:
    """Everything needed to rebuild a :class:`CrystalVAE`; saved inside every checkpoint."""

    family: ClassVar[str] = "vae"

    latent_dim: int = 256
    encoder: BackboneConfig = field(default_factory=lambda: BackboneConfig(hidden_dim=128, num_layers=4))
    decoder: ModelConfig = field(default_factory=_decoder_default)
    """The conditional decoder (flow, CSP task); its statistics (atom counts, elements, k
    standardisation, lattice scale) are the VAE's."""
    head_dim: int = 256
    """Width of the MLP heads on z."""
    beta: float = 0.01
    """KL weight after annealing (CDVAE's ``beta``)."""
    kl_anneal_steps: int = 2000
    """Training steps of the linear ramp of the KL weight from 0 to ``beta`` (0: no ramp)."""
    decoder_weight: float = 1.0
    num_atoms_weight: float = 1.0
    composition_weight: float = 1.0
    lattice_weight: float = 10.0
    property_weight: float = 1.0
    """Loss weights (CDVAE: cost_natom 1, cost_composition 1, cost_lattice 10, cost_property 1)."""
    lattice_from_head: bool = True
    """Decoding: the lattice is the lattice head's prediction from z, and the flow moves only
    the coordinates (CDVAE's decoder); False: the flow also generates the lattice."""
    max_atoms: int = 0
    """Largest atom count the num-atoms head predicts (fitted: the training maximum)."""
    property_column: str = ""
    """Label column of the property head ("" before fitting, and when the training set has no
    labels: then the head is not trained and latent optimisation is unavailable)."""
    property_name: str = ""
    property_units: str = ""
    property_mean: float = 0.0
    property_std: float = 1.0
    property_values: list[float] = field(default_factory=list)
    """Percentiles 0, 1, ..., 100 of the training labels (property units): success thresholds
    of latent optimisation (CDVAE's SR5/10/15 use the 5th/10th/15th)."""

    def __post_init__(self) -> None:
        if self.latent_dim < 1:
            raise XtalgenError(f"latent_dim must be at least 1, got {self.latent_dim}")
        if self.beta < 0 or self.kl_anneal_steps < 0:
            raise XtalgenError("beta and kl_anneal_steps must be >= 0")
        if self.decoder.process != "flow" or self.decoder.task != "csp" or self.decoder.conditions:
            raise XtalgenError("the VAE decoder is an unconditioned flow model on the CSP task "
                               "(z is its only condition)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VAEConfig:
        data = dict(data)
        return cls(encoder=BackboneConfig(**data.pop("encoder", {})),
                   decoder=ModelConfig.from_dict(data.pop("decoder", {})), **data)

    def fit_statistics(self, crystals: Sequence[Crystal]) -> VAEConfig:
        """The decoder's statistics, ``max_atoms`` and the property head's column, mean, std
        and percentiles from the training crystals."""
        self.decoder.fit_statistics(crystals)
        self.max_atoms = max(c.num_sites for c in crystals)
        self.property_column = ""
        for column, (name, units) in PROPERTY_COLUMNS.items():
            values = np.array([_label(c, column) for c in crystals])
            values = values[np.isfinite(values)]
            if len(values):
                self.property_column, self.property_name, self.property_units = column, name, units
                self.property_mean = float(values.mean())
                self.property_std = float(max(values.std(), 1e-6))
                self.property_values = [float(v) for v in np.percentile(values, np.arange(101))]
                break
        return self

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0-100, interpolated) of the training labels."""
        if not self.property_values:
            raise XtalgenError("this VAE was trained without property labels")
        return float(np.interp(q, np.arange(101), self.property_values))


def _label(crystal: Crystal, column: str) -> float:
    try:
        value = float(crystal.properties.get(column))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


@dataclass
class VAEBatch:
    """One training batch: the crystals and their property labels (NaN where missing)."""

    crystals: CrystalBatch
    labels: torch.Tensor
    """(B,) property units."""


def apportion(fractions: torch.Tensor, num_atoms: torch.Tensor) -> torch.Tensor:
    """(B, T) fractions (rows sum to 1) and (B,) atom counts -> (B, T) integer counts summing
    to ``num_atoms``: floors of ``fractions * num_atoms``, the remaining atoms to the largest
    remainders (Hamilton's method)."""
    raw = fractions * num_atoms[:, None].to(fractions.dtype)
    counts = raw.floor()
    left = (num_atoms - counts.sum(1).long()).clamp(0, fractions.shape[1])
    order = (raw - counts).argsort(dim=1, descending=True)
    rank = torch.arange(fractions.shape[1], device=fractions.device).expand_as(order)
    bonus = torch.zeros_like(counts).scatter_(1, order, (rank < left[:, None]).to(counts.dtype))
    return (counts + bonus).long()


class CrystalVAE(nn.Module):
    """Encoder backbone -> z -> heads and the z-conditioned flow decoder (module docstring)."""

    ddp_find_unused_parameters = True  # the encoder's field heads and the decoder's type head

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Backbone(config.encoder)
        hidden, latent = config.encoder.hidden_dim, config.latent_dim
        self.to_mu = nn.Linear(hidden, latent)
        self.to_logvar = nn.Linear(hidden, latent)
        self.decoder = CrystalGenerativeModel(config.decoder)
        self.cond_proj = nn.Linear(latent, config.decoder.backbone.hidden_dim)
        n_types = config.decoder.backbone.n_types
        self.num_atoms_head = _head(latent, config.head_dim, max(config.max_atoms, 1))
        self.composition_head = _head(latent, config.head_dim, n_types)
        self.lattice_head = _head(latent, config.head_dim, 6)
        self.property_head = _head(latent, config.head_dim, 1)
        sizes = torch.zeros(max(config.max_atoms, 1), dtype=torch.bool)
        for n in config.decoder.num_atoms_counts:
            sizes[n - 1] = True
        self.register_buffer("size_mask", sizes if sizes.any() else ~sizes, persistent=False)
        self.register_buffer("kl_step", torch.zeros((), dtype=torch.long))

    # -- encoder and heads ------------------------------------------------------------------
    def encode(self, batch: CrystalBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log-variance) of q(z | crystal), each (B, latent_dim)."""
        types = types_to_onehot(batch.atom_types, self.config.encoder.n_types)
        t = torch.zeros(batch.num_graphs, device=batch.device)
        lattices = batch.lattices / self.config.decoder.lattice_scale
        h = self.encoder.node_states(t, types, batch.frac_coords, lattices, batch.num_atoms,
                                     batch.batch)
        pooled = scatter_mean(h, batch.batch, batch.num_graphs)
        return self.to_mu(pooled), self.to_logvar(pooled).clamp(-20.0, 10.0)

    def kl_weight(self) -> float:
        """beta at the current training step (linear ramp over ``kl_anneal_steps``)."""
        ramp = self.config.kl_anneal_steps
        return self.config.beta * (1.0 if ramp == 0 else min(1.0, int(self.kl_step) / ramp))

    def composition_logits(self, z: torch.Tensor) -> torch.Tensor:
        """(B, n_types) logits, -inf outside the training elements."""
        return self.composition_head(z).masked_fill(~self.decoder.type_mask, float("-inf"))

    def predict_num_atoms(self, z: torch.Tensor) -> torch.Tensor:
        """(B,) most likely atom count among the training sizes."""
        logits = self.num_atoms_head(z).masked_fill(~self.size_mask, float("-inf"))
        return logits.argmax(-1) + 1

    def predict_types(self, z: torch.Tensor, num_atoms: torch.Tensor) -> torch.Tensor:
        """(N,) atomic numbers, crystal by crystal: the composition head's fractions rounded
        to ``num_atoms`` sites (:func:`apportion`)."""
        counts = apportion(self.composition_logits(z).softmax(-1), num_atoms)
        n_types = counts.shape[1]
        elements = torch.arange(1, n_types + 1, device=z.device).repeat(len(z))
        return torch.repeat_interleave(elements, counts.flatten())

    def predict_property(self, z: torch.Tensor) -> torch.Tensor:
        """(B,) the property head's value in property units (differentiable in z)."""
        out = self.property_head(z).squeeze(-1)
        return out * self.config.property_std + self.config.property_mean

    # -- training ---------------------------------------------------------------------------
    def prepare(self, crystals: Sequence[Crystal]) -> Sequence[Crystal]:
        """Training examples: the crystals themselves."""
        return crystals

    def collate(self, examples: Sequence[Crystal], device: torch.device | str = "cpu") -> VAEBatch:
        column = self.config.property_column
        labels = [_label(c, column) if column else math.nan for c in examples]
        return VAEBatch(CrystalBatch.from_crystals(list(examples), device=device),
                        torch.tensor(labels, dtype=torch.float32, device=device))

    def loss(self, batch: VAEBatch) -> dict[str, torch.Tensor]:
        """Training losses of one batch (``"loss"`` is the total; module docstring)."""
        cfg, crystals = self.config, batch.crystals
        mu, logvar = self.encode(crystals)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        kl = (-0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(-1)).mean()
        size_logits = self.num_atoms_head(z)
        loss_num_atoms = F.cross_entropy(size_logits, (crystals.num_atoms - 1).clamp(
            0, size_logits.shape[1] - 1))
        n_types = cfg.decoder.backbone.n_types
        fractions = scatter_mean(types_to_onehot(crystals.atom_types, n_types), crystals.batch,
                                 crystals.num_graphs)
        log_p = torch.log_softmax(self.composition_logits(z), -1)
        loss_comp = -(fractions * log_p.clamp(min=-30.0)).sum(-1).mean()  # unseen: finite
        target_ks = self.decoder.encode_lattices(crystals.lattices)
        loss_lattice = F.mse_loss(self.lattice_head(z), target_ks)
        labelled = torch.isfinite(batch.labels)
        if labelled.any():
            target = (batch.labels[labelled] - cfg.property_mean) / cfg.property_std
            loss_prop = F.mse_loss(self.property_head(z[labelled]).squeeze(-1), target)
        else:
            loss_prop = self.property_head(z[:1]).sum() * 0.0
        decoder = self.decoder.loss(crystals, cond=self.cond_proj(z))
        beta = self.kl_weight()
        total = (cfg.decoder_weight * decoder["loss"] + beta * kl
                 + cfg.num_atoms_weight * loss_num_atoms + cfg.composition_weight * loss_comp
                 + cfg.lattice_weight * loss_lattice + cfg.property_weight * loss_prop)
        if self.training:
            self.kl_step += 1
        out = {f"decoder_{k}": v for k, v in decoder.items()}
        out.update(loss=total, loss_kl=kl, kl_weight=torch.tensor(beta),
                   loss_num_atoms=loss_num_atoms, loss_composition=loss_comp,
                   loss_lattice_head=loss_lattice, loss_property=loss_prop)
        return out

    def forward(self, batch: VAEBatch) -> dict[str, torch.Tensor]:
        """Same as :meth:`loss` (so that DDP wraps the training step)."""
        return self.loss(batch)

    # -- decoding ---------------------------------------------------------------------------
    @torch.no_grad()
    def decode(self, z: torch.Tensor, *, generator: torch.Generator | None = None,
               n_steps: int | None = None) -> CrystalBatch:
        """Crystals of latents ``z`` (B, latent_dim): atom count, types and (with
        ``lattice_from_head``) the lattice from the heads, then the flow (``n_steps`` Euler
        steps; default the decoder's) for the coordinates (and otherwise the lattice)."""
        num_atoms = self.predict_num_atoms(z)
        types = self.predict_types(z, num_atoms)
        lattices = self.lattice_head(z) if self.config.lattice_from_head else None
        return self.decoder.sample(num_atoms, types, n_steps=n_steps, generator=generator,
                                   cond=self.cond_proj(z), fixed_lattices=lattices)


def _head(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    """CDVAE's head MLP: two hidden layers with SiLU."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden),
                         nn.SiLU(), nn.Linear(hidden, out_dim))
