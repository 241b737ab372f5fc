"""The two networks of the crystal GAN (:mod:`xtalgen.models.oneshot.gan`) and its penalty.

Crystals travel as padded slots (:class:`Slots`): B crystals of at most M atoms over the K
elements of the training set. A crystal ``b`` uses its first ``num_atoms[b]`` slots; the rest
is padding that no network reads.

* :class:`SlotGenerator`: an MLP from noise ``z`` and the atom count to a lattice (six
  standardised log-space numbers k, :mod:`xtalgen.representations.lattice`), M fractional
  coordinates (any real numbers: they are wrapped to [0, 1) when decoded, and the critic is
  periodic) and M rows of type logits.
* :class:`Critic`: the shared periodic invariant backbone (:class:`xtalgen.nn.backbone.Backbone`,
  time input fixed at 0) on continuous type features, mean-pooled over atoms, with the atom
  count (one-hot) and a minibatch standard deviation (ProGAN, Karras et al. 2018: a batch of
  near-identical crystals stands out, which guards against mode collapse) beside the pooled
  state, and an MLP head: one score per crystal, invariant to rotations, to permutations of the
  atoms and to translations of all coordinates.
* :func:`gradient_penalty`: WGAN-GP (Gulrajani et al. 2017).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn

from xtalgen.nn.backbone import Backbone, BackboneConfig
from xtalgen.nn.layers import scatter_mean

__all__ = ["Critic", "SlotGenerator", "Slots", "gradient_penalty", "slot_mask"]


class Slots(NamedTuple):
    """A padded batch of crystals (real or generated)."""

    ks: torch.Tensor
    """(B, 6) lattice k-vector, standardised with the training mean and std."""
    frac: torch.Tensor
    """(B, M, 3) fractional coordinates."""
    types: torch.Tensor
    """(B, M, K) type features over the training elements (one-hot for real crystals)."""
    num_atoms: torch.Tensor
    """(B,) atoms per crystal (long)."""

    def rows(self, index: slice | torch.Tensor) -> Slots:
        """The crystals ``index`` of the batch."""
        return Slots(self.ks[index], self.frac[index], self.types[index], self.num_atoms[index])


def slot_mask(num_atoms: torch.Tensor, max_atoms: int) -> torch.Tensor:
    """(B, M) True on the slots in use."""
    return torch.arange(max_atoms, device=num_atoms.device) < num_atoms[:, None]


class _Residual(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.SiLU(),
                                 nn.Linear(width, width))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.net(h)


class SlotGenerator(nn.Module):
    """``(z (B, latent_dim), num_atoms (B,)) -> (ks (B, 6), frac (B, M, 3), logits (B, M, K))``."""

    def __init__(self, latent_dim: int, hidden_dim: int, num_blocks: int, max_atoms: int,
                 n_elements: int) -> None:
        super().__init__()
        self.max_atoms, self.n_elements = max_atoms, n_elements
        self.inp = nn.Linear(latent_dim + max_atoms, hidden_dim)
        self.blocks = nn.Sequential(*(_Residual(hidden_dim) for _ in range(num_blocks)))
        self.norm = nn.LayerNorm(hidden_dim)
        self.out = nn.Linear(hidden_dim, 6 + max_atoms * (3 + n_elements))

    def forward(self, z: torch.Tensor, num_atoms: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        count = nn.functional.one_hot(num_atoms.long() - 1, self.max_atoms).to(z.dtype)
        h = self.blocks(self.inp(torch.cat([z, count], dim=-1)))
        out = self.out(nn.functional.silu(self.norm(h)))
        slots = out[:, 6:].view(len(z), self.max_atoms, 3 + self.n_elements)
        return out[:, :6], slots[..., :3], slots[..., 3:]


class Critic(nn.Module):
    """``(lattices (B, 3, 3) in lattice_scale units, frac, types, num_atoms) -> (B,)`` scores."""

    def __init__(self, backbone: BackboneConfig, max_atoms: int, minibatch_std: bool) -> None:
        super().__init__()
        self.backbone = Backbone(backbone)
        self.max_atoms, self.minibatch_std = max_atoms, minibatch_std
        width = backbone.hidden_dim
        self.head = nn.Sequential(nn.Linear(width + max_atoms + int(minibatch_std), width),
                                  nn.SiLU(), nn.Linear(width, 1))

    def forward(self, lattices: torch.Tensor, frac: torch.Tensor, types: torch.Tensor,
                num_atoms: torch.Tensor) -> torch.Tensor:
        mask = slot_mask(num_atoms, frac.shape[1])
        n = len(num_atoms)
        batch = torch.repeat_interleave(torch.arange(n, device=frac.device), num_atoms)
        t = torch.zeros(n, device=frac.device, dtype=frac.dtype)
        h = self.backbone.node_states(t, types[mask], frac[mask], lattices, num_atoms, batch)
        pooled = scatter_mean(h, batch, n)
        features = [pooled, nn.functional.one_hot(num_atoms.long() - 1, self.max_atoms).to(h.dtype)]
        if self.minibatch_std:  # one number: how different the crystals of this batch are
            spread = (pooled.var(0, unbiased=False) + 1e-8).sqrt().mean() if n > 1 else pooled.new_zeros(())
            features.append(spread.expand(n, 1))
        return self.head(torch.cat(features, dim=-1)).squeeze(-1)


def gradient_penalty(score: Callable[[Slots], torch.Tensor], real: Slots, fake: Slots,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP: the mean over crystals of ``(|grad score(x)| - 1)^2`` at random points ``x`` on
    the segment from each real crystal to its fake partner (same atom count; slot i to slot
    i). Lattice k and type features are interpolated linearly, coordinates along the
    minimum-image displacement (the critic is periodic). The gradient norm of a crystal is
    over its k, and its atoms' coordinates and type features (padding excluded)."""
    eps = torch.rand(len(real.ks), 1, device=real.ks.device, generator=generator)
    step = fake.frac - real.frac
    step = step - torch.round(step)
    ks = (real.ks + eps * (fake.ks - real.ks)).detach().requires_grad_(True)
    frac = (real.frac + eps[..., None] * step).detach().requires_grad_(True)
    types = (real.types + eps[..., None] * (fake.types - real.types)).detach().requires_grad_(True)
    out = score(Slots(ks, frac, types, real.num_atoms))
    grads = torch.autograd.grad(out.sum(), [ks, frac, types], create_graph=True, allow_unused=True)
    g_ks, g_frac, g_types = (torch.zeros_like(x) if g is None else g
                             for g, x in zip(grads, (ks, frac, types)))
    mask = slot_mask(real.num_atoms, frac.shape[1])[..., None].to(frac.dtype)
    squared = (g_ks.pow(2).sum(-1) + (g_frac.pow(2) * mask).sum((1, 2))
               + (g_types.pow(2) * mask).sum((1, 2)))
    return ((squared + 1e-12).sqrt() - 1).pow(2).mean()
