"""What a generative process (diffusion, flow matching) exposes to the shared model.

A process corrupts a clean :class:`State` for training and integrates from noise to a
:class:`State` for sampling. The network is passed in as a function, so one backbone and one
training loop serve every process. Lattices inside a process are in scaled units
(angstrom / ``lattice_scale``), so noise of unit scale is comparable to the data.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from xtalgen.nn.backbone import BackboneOutput

__all__ = ["NetFn", "Process", "Projection", "State"]

NetFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], BackboneOutput]
"""``net(t, type_features, frac_coords, lattices) -> BackboneOutput``; t: (B,) in [0, 1]."""


@dataclass
class State:
    """A (possibly noisy) batch in process space."""

    lattices: torch.Tensor
    """(B, 3, 3) scaled lattice (rows are vectors), or (B, 6) standardised k-vector."""
    frac_coords: torch.Tensor
    """(N, 3) fractional coordinates in [0, 1)."""
    types: torch.Tensor
    """(N, n_types) one-hot (clean or fixed) or continuous type features (noisy)."""


Projection = Callable[[State], State]
"""``project(state) -> state``: a constraint applied to the sampler's state after every step
and to its starting noise, e.g. a space group's symmetric subspace
(:class:`xtalgen.representations.symmetry_projection.SymmetryProjector`)."""


class Process(nn.Module, ABC):
    """Base class of the corruption/generation processes."""

    @abstractmethod
    def loss(
        self, net: NetFn, clean: State, batch: torch.Tensor, generate_types: bool
    ) -> dict[str, torch.Tensor]:
        """Training losses for one batch; ``"loss"`` is the total to minimise.

        Args:
            net: the network; ``batch``: (N,) crystal index per atom.
            generate_types: DNG (types are corrupted and predicted) versus CSP (types fixed).
        """

    @abstractmethod
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
        """Integrate from noise to data. ``fixed_types``: (N, n_types) one-hot for CSP, or None;
        ``lattice_shape``: per-crystal shape of the lattice in process space.

        With ``init`` (a template in process space, e.g. a retrieved prototype), sampling starts
        from ``init`` corrupted to ``noise_level`` (1: pure noise, the template is ignored;
        0.3: mostly template) instead of from pure noise, as in SDEdit / DiffCSP++.

        ``project`` (hard constraints, DiffCSP++-style): applied to the starting state and after
        every step (diffusion: after the corrector and after the predictor), so the network
        only ever sees, and the sampler returns, states inside the constraint set.

        ``fixed_lattices`` (B, *lattice_shape), process space: known lattices (e.g. a VAE's
        lattice head, as CDVAE decodes); the lattice then follows the process's own path from
        its noise to them instead of the network's field, and the sampler returns them."""

    @staticmethod
    def _randn_like(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
