"""The flat torus [0, 1)^3 of fractional coordinates: wrapping, geodesics, wrapped normals."""

from __future__ import annotations

import math

import torch

__all__ = [
    "wrap",
    "wrapped_displacement",
    "wrapped_normal_score",
    "wrapped_normal_score_norm",
]


def wrap(frac_coords: torch.Tensor) -> torch.Tensor:
    """Fractional coordinates wrapped into [0, 1)."""
    return frac_coords - torch.floor(frac_coords)


def wrapped_displacement(delta: torch.Tensor) -> torch.Tensor:
    """Shortest periodic representative of a displacement, in [-0.5, 0.5) (the torus logmap)."""
    return delta - torch.floor(delta + 0.5)


def wrapped_normal_score(x: torch.Tensor, sigma: torch.Tensor, n_images: int = 10) -> torch.Tensor:
    """Score ``d/dx log p(x)`` of the wrapped normal with scale ``sigma`` (period 1).

    ``p(x) = sum_k N(x + k; 0, sigma^2)`` for k in [-n_images, n_images]; computed with a
    softmax over images, so it is stable for small ``sigma``.
    """
    k = torch.arange(-n_images, n_images + 1, device=x.device, dtype=x.dtype)
    shifted = x[..., None] + k  # (..., K)
    sigma = sigma[..., None]
    logits = -(shifted**2) / (2 * sigma**2)
    weights = torch.softmax(logits, dim=-1)
    return (weights * (-shifted / sigma**2)).sum(-1)


def wrapped_normal_score_norm(sigma: torch.Tensor, n_grid: int = 2001) -> torch.Tensor:
    """``E[score(x)^2]`` for x drawn from the wrapped normal of scale ``sigma`` (per value).

    Used to normalise the score-matching target to unit variance (DiffCSP's ``sigma_norm``).
    Below ``sigma = 0.1`` the periodic images are negligible and the value is ``1 / sigma^2``
    (the normal's); above, it is computed by quadrature on a grid over one period.
    """
    sigma = sigma.double().reshape(-1)
    out = 1.0 / sigma**2
    wide = sigma >= 0.1
    if wide.any():
        s = sigma[wide][:, None]
        x = torch.linspace(-0.5, 0.5, n_grid, dtype=torch.float64)[:-1][None, :]
        k = torch.arange(-10, 11, dtype=torch.float64)
        log_terms = -((x[..., None] + k) ** 2) / (2 * s[..., None] ** 2)
        density = torch.exp(torch.logsumexp(log_terms, -1)) / (s * math.sqrt(2 * math.pi))
        score = wrapped_normal_score(x.expand(len(s), -1), s.expand(-1, x.shape[1]))
        out[wide] = (density * score**2).sum(-1) / (n_grid - 1)
    return out
