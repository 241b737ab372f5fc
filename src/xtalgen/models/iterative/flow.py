"""FlowMM-style flow matching (Miller et al., ICML 2024) on the same backbone.

* Fractional coordinates: base uniform on the flat torus, geodesic interpolation
  ``x_t = x_0 + t * log_{x_0}(x_1)`` with the wrapped displacement as the log map; the target
  velocity is that displacement (constant along the path).
* Lattice: Euclidean straight path from a standard normal (scaled units) to the data lattice.
* Atom types (DNG only), ``type_path``:
  ``"analog"``: the same straight path on continuous one-hot vectors (an analog relaxation of
  a discrete path), decoded with argmax;
  ``"masked"``: discrete flow matching with an absorbing (mask) state (Campbell et al., ICML
  2024; the flow analogue of absorbing-state D3PM): at time t each atom shows its type with
  probability t and is masked (an all-zero type vector) otherwise; the network predicts type
  logits, trained with cross-entropy on the masked atoms; sampling unmasks each masked atom with
  probability ``dt / (1 - t)`` per step and draws its type from the predicted distribution, so
  later atoms are chosen knowing the earlier ones (coherent compositions).
* Sampling: explicit Euler ODE integration with a configurable number of steps; the
  coordinate velocity may be annealed by ``1 + coord_anneal * t`` (FlowMM's inference
  anneal), which sharpens the final positions.

Time ``t`` runs from 0 (noise) to 1 (data).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from xtalgen.models.iterative.process import NetFn, Process, Projection, State
from xtalgen.models.iterative.torus import wrap, wrapped_displacement

__all__ = ["FlowConfig", "FlowProcess"]


@dataclass
class FlowConfig:
    """Loss weights and ODE sampler settings."""

    n_steps: int = 100
    """Default number of Euler steps at sampling time."""
    coord_anneal: float = 0.0
    lattice_weight: float = 1.0
    coord_weight: float = 10.0
    """Coordinate velocities are ~0.3 in fractional units; this weight balances the lattice."""
    type_weight: float = 1.0
    type_path: str = "analog"
    """DNG type path: ``"analog"`` (continuous one-hot) or ``"masked"`` (discrete, absorbing)."""

    def __post_init__(self) -> None:
        if self.type_path not in TYPE_PATHS:
            raise ValueError(f"type_path must be one of {TYPE_PATHS}, got {self.type_path!r}")


TYPE_PATHS = ("analog", "masked")


class FlowProcess(Process):
    """Conditional flow matching on torus x Euclidean lattice (x analog types)."""

    def __init__(self, config: FlowConfig | None = None) -> None:
        super().__init__()
        self.config = config or FlowConfig()

    def loss(
        self, net: NetFn, clean: State, batch: torch.Tensor, generate_types: bool
    ) -> dict[str, torch.Tensor]:
        cfg = self.config
        t = torch.rand(clean.lattices.shape[0], device=batch.device)
        t_lat, t_atom = t.view(-1, *[1] * (clean.lattices.ndim - 1)), t[batch][:, None]

        lattices_0 = torch.randn_like(clean.lattices)
        lattices_t = (1 - t_lat) * lattices_0 + t_lat * clean.lattices
        frac_0 = torch.rand_like(clean.frac_coords)
        velocity = wrapped_displacement(clean.frac_coords - frac_0)
        frac_t = wrap(frac_0 + t_atom * velocity)
        types_t, types_0, masked = clean.types, None, None
        if generate_types and cfg.type_path == "masked":
            masked = torch.rand(t_atom.shape[0], device=batch.device) >= t_atom[:, 0]
            types_t = clean.types * (~masked)[:, None]
        elif generate_types:
            types_0 = torch.randn_like(clean.types)
            types_t = (1 - t_atom) * types_0 + t_atom * clean.types

        out = net(t, types_t, frac_t, lattices_t)
        losses = {
            "loss_lattice": F.mse_loss(out.lattice, clean.lattices - lattices_0),
            "loss_coord": F.mse_loss(out.frac, velocity),
        }
        total = cfg.lattice_weight * losses["loss_lattice"] + cfg.coord_weight * losses["loss_coord"]
        if types_0 is not None:
            losses["loss_type"] = F.mse_loss(out.types, clean.types - types_0)
            total = total + cfg.type_weight * losses["loss_type"]
        elif masked is not None:
            target = clean.types.argmax(-1)
            per_atom = F.cross_entropy(out.types, target, reduction="none")
            losses["loss_type"] = (per_atom * masked).sum() / masked.sum().clamp(min=1)
            total = total + cfg.type_weight * losses["loss_type"]
        losses["loss"] = total
        return losses

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
        cfg = self.config
        device = batch.device
        n_graphs, n_atoms = int(batch.max()) + 1, batch.shape[0]
        n_steps = n_steps or cfg.n_steps
        lattices = torch.randn((n_graphs, *lattice_shape), generator=generator, device=device)
        frac = torch.rand((n_atoms, 3), generator=generator, device=device)
        types, masked = fixed_types, None
        if types is None and cfg.type_path == "masked":
            types = torch.zeros((n_atoms, n_types), device=device)
            masked = torch.ones(n_atoms, dtype=torch.bool, device=device)
        elif types is None:
            types = torch.randn((n_atoms, n_types), generator=generator, device=device)
        noise = lattices
        t_start = 0.0
        if init is not None:  # start on the path from the noise to the template
            t_start = 1.0 - noise_level
            lattices = (1 - t_start) * lattices + t_start * init.lattices
            frac = wrap(frac + t_start * wrapped_displacement(init.frac_coords - frac))
        if fixed_lattices is not None:
            lattices = torch.lerp(noise, fixed_lattices.to(noise.dtype), t_start)
        if project is not None:
            lattices, frac = self._project(project, lattices, frac, types)
        dt = (1.0 - t_start) / n_steps
        for i in tqdm(range(n_steps), desc="flow", disable=not progress, leave=False):
            t = t_start + i * dt
            out = net(torch.full((n_graphs,), t, device=device), types, frac, lattices)
            lattices = lattices + dt * out.lattice
            if fixed_lattices is not None:  # the straight path from the noise to the known lattice
                lattices = torch.lerp(noise, fixed_lattices.to(noise.dtype), t + dt)
            frac = wrap(frac + dt * (1 + cfg.coord_anneal * t) * out.frac)
            if masked is not None:
                types, masked = self._unmask(types, masked, out.types, t, dt, generator)
            elif fixed_types is None:
                types = types + dt * out.types
            if project is not None:
                lattices, frac = self._project(project, lattices, frac, types)
        return State(lattices=lattices, frac_coords=frac, types=types)

    @staticmethod
    def _project(project: Projection, lattices: torch.Tensor, frac: torch.Tensor,
                 types: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        state = project(State(lattices=lattices, frac_coords=frac, types=types))
        return state.lattices, state.frac_coords

    @staticmethod
    def _unmask(
        types: torch.Tensor,
        masked: torch.Tensor,
        logits: torch.Tensor,
        t: float,
        dt: float,
        generator: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of the masked type path: reveal each masked atom with prob dt / (1 - t)."""
        p_reveal = 1.0 if t + dt >= 1.0 - 1e-9 else min(1.0, dt / (1.0 - t))
        draw = torch.rand(masked.shape[0], generator=generator, device=masked.device)
        reveal = masked & (draw < p_reveal)
        if reveal.any():
            probs = torch.softmax(logits[reveal].float(), dim=-1)
            chosen = torch.multinomial(probs, 1, generator=generator)[:, 0]
            types = types.clone()
            types[reveal] = F.one_hot(chosen, types.shape[1]).to(types.dtype)
            masked = masked & ~reveal
        return types, masked
