"""Small building blocks of the backbone: MLPs, time embeddings, periodic Fourier features."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["MLP", "SinusoidalTimeEmbedding", "fourier_features", "scatter_mean"]


class MLP(nn.Module):
    """``in -> hidden -> out`` with SiLU; ``out`` defaults to ``hidden``."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int | None = None) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden_dim),
            nn.SiLU(),
            nn.Linear(hidden_dim, out_dim or hidden_dim),
            nn.SiLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SinusoidalTimeEmbedding(nn.Module):
    """Transformer-style embedding of a time ``t`` in [0, 1] (one value per crystal)."""

    def __init__(self, dim: int, max_period: float = 10_000.0) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"time embedding dimension must be even, got {dim}")
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half) / half)
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        # Scale [0, 1] to [0, 1000] so that the slowest frequencies still resolve small steps.
        args = 1000.0 * t[:, None].float() * self.freqs[None, :]
        return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)


def fourier_features(frac_diff: torch.Tensor, n_freqs: int) -> torch.Tensor:
    """``sin``/``cos`` of ``2 pi k d`` for k = 1..n_freqs: periodic in each fractional difference.

    Args:
        frac_diff: (E, 3) differences of fractional coordinates (any real values).
        n_freqs: number of harmonics per coordinate.

    Returns:
        (E, 6 * n_freqs) features, unchanged when ``frac_diff`` shifts by an integer vector.
    """
    k = torch.arange(1, n_freqs + 1, device=frac_diff.device, dtype=frac_diff.dtype)
    args = 2.0 * math.pi * frac_diff[:, :, None] * k  # (E, 3, K)
    return torch.cat([torch.sin(args), torch.cos(args)], dim=-1).flatten(1)


def scatter_mean(src: torch.Tensor, index: torch.Tensor, dim_size: int) -> torch.Tensor:
    """Mean of the rows of ``src`` grouped by ``index`` (empty groups give zeros)."""
    out = torch.zeros(dim_size, src.shape[-1], device=src.device, dtype=src.dtype)
    out.index_add_(0, index, src)
    count = torch.zeros(dim_size, device=src.device, dtype=src.dtype)
    count.index_add_(0, index, torch.ones_like(index, dtype=src.dtype))
    return out / count.clamp(min=1.0)[:, None]
