"""DiffCSP-style diffusion (Jiao et al., NeurIPS 2023).

* Lattice: DDPM with a cosine schedule; the network predicts the noise ``eps``.
* Fractional coordinates: score matching with a wrapped normal on the torus, noise scales
  geometric from ``sigma_begin`` to ``sigma_end``; the target score is normalised by its
  expected norm (DiffCSP's ``sigma_norm``).
* Atom types (DNG only): DDPM on continuous one-hot vectors, as in DiffCSP's ab-initio mode.
* Sampling: predictor-corrector (one Langevin corrector step on the coordinates, then the
  reverse-diffusion predictor); fewer than ``timesteps`` steps use a strided DDPM schedule.

Time ``t`` is an integer step in 1..timesteps; the network sees ``t / timesteps``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from xtalgen.errors import XtalgenError
from xtalgen.models.iterative.process import NetFn, Process, Projection, State
from xtalgen.models.iterative.torus import wrap, wrapped_normal_score, wrapped_normal_score_norm

__all__ = ["DiffusionConfig", "DiffusionProcess", "cosine_alpha_bars"]


@dataclass
class DiffusionConfig:
    """Schedules, loss weights and sampler settings (DiffCSP defaults)."""

    timesteps: int = 1000
    cosine_s: float = 0.008
    sigma_begin: float = 0.005
    """Smallest wrapped-normal scale of the coordinates (fractional units)."""
    sigma_end: float = 0.5
    corrector_step_lr: float = 1e-5
    """Langevin step at ``sigma_begin``; scaled by ``(sigma / sigma_begin)^2``. 0 disables."""
    lattice_weight: float = 1.0
    coord_weight: float = 1.0
    type_weight: float = 1.0


def cosine_alpha_bars(timesteps: int, s: float = 0.008) -> torch.Tensor:
    """(timesteps + 1,) cumulative ``alpha_bar_t`` of the cosine schedule; ``alpha_bar_0 = 1``."""
    x = torch.linspace(0, timesteps, timesteps + 1, dtype=torch.float64)
    f = torch.cos((x / timesteps + s) / (1 + s) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(1e-4, 0.9999)
    return torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - betas, 0)])


class DiffusionProcess(Process):
    """DDPM on lattice (and types), wrapped-normal score matching on coordinates."""

    def __init__(self, config: DiffusionConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or DiffusionConfig()
        T = config.timesteps
        ratio = config.sigma_end / config.sigma_begin
        sigmas = config.sigma_begin * ratio ** (torch.arange(T, dtype=torch.float64) / max(T - 1, 1))
        self.register_buffer("alpha_bars", cosine_alpha_bars(T, config.cosine_s).float())
        self.register_buffer("sigmas", torch.cat([torch.zeros(1), sigmas.float()]))
        norms = wrapped_normal_score_norm(sigmas).float()
        self.register_buffer("sigma_norms", torch.cat([torch.ones(1), norms]))

    def loss(
        self, net: NetFn, clean: State, batch: torch.Tensor, generate_types: bool
    ) -> dict[str, torch.Tensor]:
        cfg = self.config
        n_graphs = clean.lattices.shape[0]
        t = torch.randint(1, cfg.timesteps + 1, (n_graphs,), device=batch.device)
        ab = self.alpha_bars[t]
        eps_lattice = torch.randn_like(clean.lattices)
        ab_lat = ab.view(-1, *[1] * (clean.lattices.ndim - 1))
        lattices_t = ab_lat.sqrt() * clean.lattices + (1 - ab_lat).sqrt() * eps_lattice

        sigma = self.sigmas[t][batch][:, None]
        noise = torch.randn_like(clean.frac_coords) * sigma
        frac_t = wrap(clean.frac_coords + noise)
        target_frac = wrapped_normal_score(noise, sigma.expand_as(noise))
        target_frac = target_frac / self.sigma_norms[t][batch].sqrt()[:, None]

        types_t, eps_types = clean.types, None
        if generate_types:
            eps_types = torch.randn_like(clean.types)
            ab_atom = ab[batch][:, None]
            types_t = ab_atom.sqrt() * clean.types + (1 - ab_atom).sqrt() * eps_types

        out = net(t.float() / cfg.timesteps, types_t, frac_t, lattices_t)
        losses = {
            "loss_lattice": F.mse_loss(out.lattice, eps_lattice),
            "loss_coord": F.mse_loss(out.frac, target_frac),
        }
        total = cfg.lattice_weight * losses["loss_lattice"] + cfg.coord_weight * losses["loss_coord"]
        if eps_types is not None:
            losses["loss_type"] = F.mse_loss(out.types, eps_types)
            total = total + cfg.type_weight * losses["loss_type"]
        losses["loss"] = total
        return losses

    def timestep_grid(self, n_steps: int | None, start: int | None = None) -> list[int]:
        """Decreasing integer steps from ``start`` (default ``timesteps``) to 1; all of them
        when ``n_steps`` is None, else ``n_steps`` evenly strided ones."""
        T = start or self.config.timesteps
        if n_steps is None or n_steps >= T:
            return list(range(T, 0, -1))
        grid = torch.linspace(T, 1, max(n_steps, 1)).round().long().tolist()
        return sorted(set(grid), reverse=True)

    @torch.no_grad()
    def sample(
        self,
        net: NetFn,
        batch: torch.Tensor,
        fixed_types: torch.Tensor | None,
        n_types: int,
        n_steps: int | None,
        generator: torch.Generator,
        progress: bool = False,
        lattice_shape: tuple[int, ...] = (3, 3),
        init: State | None = None,
        noise_level: float = 1.0,
        project: Projection | None = None,
        fixed_lattices: torch.Tensor | None = None,
    ) -> State:
        if fixed_lattices is not None:
            raise XtalgenError("known lattices are a flow sampler option (the VAE decoder)")
        cfg = self.config
        device = batch.device
        n_graphs, n_atoms = int(batch.max()) + 1, batch.shape[0]
        lattices = torch.randn((n_graphs, *lattice_shape), generator=generator, device=device)
        frac = torch.rand((n_atoms, 3), generator=generator, device=device)
        types = fixed_types
        if types is None:
            types = torch.randn((n_atoms, n_types), generator=generator, device=device)

        start = None
        if init is not None:  # forward-noise the template to the starting step
            start = max(1, round(noise_level * cfg.timesteps))
            ab = self.alpha_bars[start]
            lattices = ab.sqrt() * init.lattices + (1 - ab).sqrt() * lattices
            frac = wrap(init.frac_coords + self.sigmas[start] * self._randn_like(frac, generator))
        grid = self.timestep_grid(n_steps, start)

        def constrain(lattices: torch.Tensor, frac: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            if project is None:
                return lattices, frac
            state = project(State(lattices=lattices, frac_coords=frac, types=types))
            return state.lattices, state.frac_coords

        lattices, frac = constrain(lattices, frac)
        for i, t in enumerate(tqdm(grid, desc="diffusion", disable=not progress, leave=False)):
            s = grid[i + 1] if i + 1 < len(grid) else 0
            time = torch.full((n_graphs,), t / cfg.timesteps, device=device)
            sigma_t, sigma_s = self.sigmas[t], self.sigmas[s]
            score_scale = self.sigma_norms[t].sqrt()

            if cfg.corrector_step_lr > 0:  # Langevin corrector on the coordinates
                out = net(time, types, frac, lattices)
                step = cfg.corrector_step_lr * (sigma_t / cfg.sigma_begin) ** 2
                noise = self._randn_like(frac, generator) if t > 1 else torch.zeros_like(frac)
                frac = wrap(frac + step * out.frac * score_scale + (2 * step).sqrt() * noise)
                lattices, frac = constrain(lattices, frac)

            out = net(time, types, frac, lattices)  # predictor: reverse diffusion t -> s
            step = sigma_t**2 - sigma_s**2
            std = (sigma_s**2 * step / sigma_t**2).sqrt()
            frac = wrap(frac + step * out.frac * score_scale + std * self._randn_like(frac, generator))

            ab_t, ab_s = self.alpha_bars[t], self.alpha_bars[s]
            alpha = ab_t / ab_s
            coef = (1 - alpha) / (1 - ab_t).sqrt()
            post_std = ((1 - alpha) * (1 - ab_s) / (1 - ab_t)).sqrt()
            lattices = (lattices - coef * out.lattice) / alpha.sqrt()
            lattices = lattices + post_std * self._randn_like(lattices, generator)
            if fixed_types is None:
                types = (types - coef * out.types) / alpha.sqrt()
                types = types + post_std * self._randn_like(types, generator)
            lattices, frac = constrain(lattices, frac)
        return State(lattices=lattices, frac_coords=frac, types=types)
