"""Condition embeddings for classifier-free guidance (MatterGen-style) of the iterative models.

A model trained with conditions (``ModelConfig.conditions``) embeds each of them into one
``hidden_dim`` vector per crystal; their sum is added to every atom's input state of the
backbone (:meth:`xtalgen.nn.backbone.Backbone.node_states`, argument ``cond``):

* ``chemical_system``: a multi-hot vector over the ``n_types`` elements -> MLP;
* ``spacegroup``: ``nn.Embedding(231)``, row 0 being the null (no space group) embedding;
* ``band_gap``, ``formation_energy``: a Gaussian radial-basis expansion of the value over the
  training range (``ModelConfig.condition_ranges``) -> MLP.

Each condition has a learned null embedding, used when the crystal has no value (a property
missing from the dataset row) and, in training, with probability ``dropout`` independently per
condition and crystal (MatterGen's ``p_unconditional``, there 0.2, with ``dropout_fields_iid``),
so that one network learns p(x), p(x | some conditions) and p(x | all of them). Sampling with
every condition at its null embedding is the unconditional branch of the guidance.

Condition values travel as per-crystal tensors (``CrystalBatch.conditions``), built by
:func:`condition_tensors`: ``chemical_system`` (B, n_types) float multi-hot, an all-zero row
for none; ``spacegroup`` (B,) long, 0 for none; properties (B,) float, NaN for none.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from xtalgen.conditions import (
    CONDITION_NAMES,
    PROPERTY_COLUMNS,
    Conditions,
    crystal_property,
    crystal_spacegroup,
)
from xtalgen.crystal import Crystal

__all__ = ["N_RBF", "ConditionEmbedding", "condition_tensors", "request_tensors"]

N_RBF = 32
"""Gaussian centres spanning a property's training range (padded by 10% on each side)."""
DEFAULT_RANGES = {"band_gap": (0.0, 8.0), "formation_energy": (-4.5, 0.1)}
"""Ranges (MP-20's, property units) of a model built before ``fit_statistics`` set its own."""


def condition_tensors(
    crystals: Sequence[Crystal], names: Sequence[str], n_types: int
) -> dict[str, torch.Tensor]:
    """The values of conditions ``names`` of training crystals (see the module docstring)."""
    out: dict[str, torch.Tensor] = {}
    n = len(crystals)
    for name in names:
        if name == "chemical_system":
            hot = torch.zeros(n, n_types)
            for i, c in enumerate(crystals):
                z = torch.as_tensor(sorted({int(s) for s in c.species}))
                hot[i, z[z <= n_types] - 1] = 1.0
            out[name] = hot
        elif name == "spacegroup":
            out[name] = torch.tensor([crystal_spacegroup(c) for c in crystals], dtype=torch.long)
        else:
            out[name] = torch.tensor([crystal_property(c, name) for c in crystals])
    return out


def request_tensors(
    conditions: Conditions, names: Sequence[str], n: int, n_types: int,
    device: torch.device | str = "cpu",
) -> dict[str, torch.Tensor]:
    """The same tensors for ``n`` crystals that all ask for ``conditions`` (absent: null)."""
    out: dict[str, torch.Tensor] = {}
    for name in names:
        if name == "chemical_system":
            hot = torch.zeros(n, n_types, device=device)
            if conditions.chemical_system is not None:
                hot[:, torch.tensor(conditions.chemical_system, device=device) - 1] = 1.0
            out[name] = hot
        elif name == "spacegroup":
            out[name] = torch.full((n,), conditions.spacegroup or 0, dtype=torch.long, device=device)
        else:
            out[name] = torch.full((n,), conditions.properties.get(name, math.nan), device=device)
    return out


class ConditionEmbedding(nn.Module):
    """Condition values -> one (B, hidden_dim) vector per crystal (sum over conditions)."""

    def __init__(
        self,
        names: Sequence[str],
        hidden_dim: int,
        n_types: int,
        ranges: Mapping[str, Sequence[float]],
    ) -> None:
        super().__init__()
        self.names = [n for n in CONDITION_NAMES if n in names]
        self.hidden_dim = hidden_dim
        self.encoders = nn.ModuleDict()
        self.null = nn.ParameterDict()
        for name in self.names:
            if name == "spacegroup":  # row 0 is the null embedding
                self.encoders[name] = nn.Embedding(231, hidden_dim)
                continue
            width = n_types if name == "chemical_system" else N_RBF
            self.encoders[name] = nn.Sequential(nn.Linear(width, hidden_dim), nn.SiLU(),
                                                nn.Linear(hidden_dim, hidden_dim))
            self.null[name] = nn.Parameter(torch.randn(hidden_dim) * 0.1)
            if name in PROPERTY_COLUMNS:
                low, high = ranges.get(name, DEFAULT_RANGES[name])
                pad = 0.1 * max(high - low, 1e-3)
                centres = torch.linspace(low - pad, high + pad, N_RBF)
                self.register_buffer(f"centres_{name}", centres, persistent=False)

    def forward(
        self, values: Mapping[str, torch.Tensor], n: int, dropout: float = 0.0
    ) -> torch.Tensor:
        """(n, hidden_dim). ``values``: tensors as built by :func:`condition_tensors`; a
        condition missing from ``values`` is null for every crystal. ``dropout``: probability
        of the null embedding per condition and crystal (training)."""
        device = next(self.parameters()).device
        total = torch.zeros(n, self.hidden_dim, device=device)
        for name in self.names:
            value = values.get(name)
            if value is None:
                absent = torch.ones(n, dtype=torch.bool, device=device)
            elif name == "chemical_system":
                absent = value.sum(-1) == 0
            elif name == "spacegroup":
                absent = value <= 0
            else:
                absent = torch.isnan(value)
            if dropout > 0:
                absent = absent | (torch.rand(n, device=device) < dropout)
            if name == "spacegroup":
                index = torch.zeros(n, dtype=torch.long, device=device)
                if value is not None:
                    index = torch.where(absent, 0, value.long())
                total = total + self.encoders[name](index)
                continue
            if value is None:
                emb = self.null[name].expand(n, -1)
            else:
                if name == "chemical_system":
                    features = value.float()
                else:
                    features = self._rbf(name, torch.nan_to_num(value.float()))
                emb = torch.where(absent[:, None], self.null[name], self.encoders[name](features))
            total = total + emb
        return total

    def _rbf(self, name: str, value: torch.Tensor) -> torch.Tensor:
        centres = getattr(self, f"centres_{name}")
        width = centres[1] - centres[0]
        return torch.exp(-(((value[:, None] - centres) / width) ** 2))
