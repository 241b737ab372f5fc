"""One generative model for crystals: the shared backbone driven by a process.

``CrystalGenerativeModel`` turns a :class:`CrystalBatch` into process space (one-hot types and a
lattice representation), computes the training loss of its process (diffusion or flow
matching) and samples new batches. Lattice representations (``ModelConfig.lattice_repr``):

* ``"ks"`` (default; DiffCSP++ / MatterGen style): the six log-space coordinates k of the
  symmetric polar factor ``S = (L L^T)^(1/2)`` (:mod:`xtalgen.representations.lattice`),
  standardised per component. Rotation-free and always a valid (positive-definite) lattice.
* ``"matrix"`` (DiffCSP): the lattice matrix divided by ``lattice_scale``; the backbone
  predicts a rotation-equivariant field ``M L``.
 CSP fixes the atom types (the composition); DNG also
generates them, with the number of atoms drawn from the training distribution.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.models.iterative.diffusion import DiffusionConfig, DiffusionProcess
from xtalgen.models.iterative.flow import FlowConfig, FlowProcess
from xtalgen.models.iterative.process import NetFn, Process, State
from xtalgen.nn.backbone import Backbone, BackboneConfig, types_to_onehot
from xtalgen.representations.lattice import (
    ks_to_matrix_torch,
    matrix_to_ks,
    matrix_to_ks_torch,
)
from xtalgen.representations.tensors import CrystalBatch

__all__ = ["LATTICE_REPRS", "PROCESSES", "TASKS", "CrystalGenerativeModel", "ModelConfig"]

PROCESSES = ("diffusion", "flow")
TASKS = ("csp", "dng")
LATTICE_REPRS = ("ks", "matrix")
MIN_KS_STD = 0.1
"""Floor of the per-component k standard deviation (Perov-5 is all cubic: five k are 0)."""
KS_CLAMP = 6.0
"""Decoded k-vectors are clipped to this many standard deviations around the training mean."""


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model; saved inside every checkpoint."""

    family: ClassVar[str] = "iterative"

    process: str = "diffusion"
    """``"diffusion"`` (DiffCSP) or ``"flow"`` (FlowMM)."""
    task: str = "csp"
    """``"csp"``: composition given, types fixed; ``"dng"``: types and atom count generated."""
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    lattice_repr: str = "ks"
    """``"ks"`` (rotation-free log-space k-vector) or ``"matrix"`` (see the module docstring)."""
    lattice_scale: float = 1.0
    """Angstrom per unit of the backbone's lattice input: mean lattice-vector length in training."""
    ks_mean: list[float] = field(default_factory=lambda: [0.0] * 6)
    ks_std: list[float] = field(default_factory=lambda: [1.0] * 6)
    """Per-component standardisation of k (``"ks"`` representation), fitted on training data."""
    num_atoms_counts: dict[int, int] = field(default_factory=dict)
    """Training distribution of atoms per cell (DNG samples from it)."""
    elements: list[int] = field(default_factory=list)
    """Atomic numbers seen in training; DNG decodes types among them only."""

    def __post_init__(self) -> None:
        if self.process not in PROCESSES:
            raise XtalgenError(f"unknown process {self.process!r}; choose one of {PROCESSES}")
        if self.task not in TASKS:
            raise XtalgenError(f"unknown task {self.task!r}; choose one of {TASKS}")
        if self.lattice_repr not in LATTICE_REPRS:
            raise XtalgenError(f"unknown lattice_repr {self.lattice_repr!r}; choose one of {LATTICE_REPRS}")
        self.backbone.lattice_output = self.lattice_repr

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        data = dict(data)
        data.setdefault("lattice_repr", "matrix")  # checkpoints written before "ks" existed
        return cls(
            backbone=BackboneConfig(**data.pop("backbone", {})),
            diffusion=DiffusionConfig(**data.pop("diffusion", {})),
            flow=FlowConfig(**data.pop("flow", {})),
            num_atoms_counts={int(k): int(v) for k, v in data.pop("num_atoms_counts", {}).items()},
            **data,
        )

    def fit_statistics(self, crystals: Sequence[Crystal]) -> ModelConfig:
        """Set ``lattice_scale``, ``num_atoms_counts`` and ``elements`` from training crystals."""
        if not crystals:
            raise XtalgenError("cannot fit model statistics on an empty training set")
        lengths = np.concatenate([np.linalg.norm(c.lattice, axis=1) for c in crystals])
        counts: dict[int, int] = {}
        for c in crystals:
            counts[c.num_sites] = counts.get(c.num_sites, 0) + 1
        self.lattice_scale = float(lengths.mean())
        ks = matrix_to_ks(np.stack([c.lattice for c in crystals]))
        self.ks_mean = [float(v) for v in ks.mean(0)]
        self.ks_std = [float(max(v, MIN_KS_STD)) for v in ks.std(0)]
        self.num_atoms_counts = dict(sorted(counts.items()))
        self.elements = sorted({int(z) for c in crystals for z in c.species})
        return self


class CrystalGenerativeModel(nn.Module):
    """Backbone + process; ``loss(batch)`` for training, ``sample(...)`` for generation."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = Backbone(config.backbone)
        self.process: Process = (
            DiffusionProcess(config.diffusion)
            if config.process == "diffusion"
            else FlowProcess(config.flow)
        )
        mask = torch.zeros(config.backbone.n_types, dtype=torch.bool)
        if config.elements:
            mask[torch.tensor(config.elements) - 1] = True
        else:
            mask[:] = True
        self.register_buffer("type_mask", mask, persistent=False)
        self.register_buffer("ks_mean", torch.tensor(config.ks_mean), persistent=False)
        self.register_buffer("ks_std", torch.tensor(config.ks_std), persistent=False)

    @property
    def generates_types(self) -> bool:
        return self.config.task == "dng"

    @property
    def lattice_shape(self) -> tuple[int, ...]:
        """Per-crystal shape of the lattice in process space."""
        return (6,) if self.config.lattice_repr == "ks" else (3, 3)

    def encode_lattices(self, lattices: torch.Tensor) -> torch.Tensor:
        """(B, 3, 3) angstrom -> process space."""
        if self.config.lattice_repr == "ks":
            ks = matrix_to_ks_torch(lattices.double()).to(lattices.dtype)
            return (ks - self.ks_mean) / self.ks_std
        return lattices / self.config.lattice_scale

    def decode_lattices(self, lattices: torch.Tensor) -> torch.Tensor:
        """Process space -> (B, 3, 3) angstrom (``"ks"``: the symmetric form, rows = vectors)."""
        if self.config.lattice_repr == "ks":
            # within KS_CLAMP standard deviations of the training mean: always a sane lattice
            ks = lattices.clamp(-KS_CLAMP, KS_CLAMP) * self.ks_std + self.ks_mean
            return ks_to_matrix_torch(ks.double()).to(lattices.dtype)
        return lattices * self.config.lattice_scale

    def _net(self, num_atoms: torch.Tensor, batch: torch.Tensor) -> NetFn:
        scale = self.config.lattice_scale
        as_matrix = self.config.lattice_repr == "ks"

        masked_types = (self.generates_types and self.config.process == "flow"
                        and self.config.flow.type_path == "masked")

        def net(t, types, frac, lattices):  # the NetFn signature
            if as_matrix:  # the backbone sees the lattice itself, in units of lattice_scale
                lattices = self.decode_lattices(lattices) / scale
            out = self.backbone(t, types, frac, lattices, num_atoms, batch)
            if masked_types:  # type logits: only elements seen in training
                out = replace(out, types=out.types.masked_fill(~self.type_mask, -1e4))
            return out

        return net

    def to_state(self, batch: CrystalBatch) -> State:
        """A clean batch in process space."""
        return State(
            lattices=self.encode_lattices(batch.lattices),
            frac_coords=batch.frac_coords,
            types=types_to_onehot(batch.atom_types, self.config.backbone.n_types).to(
                batch.frac_coords.dtype
            ),
        )

    def loss(self, batch: CrystalBatch) -> dict[str, torch.Tensor]:
        """Training losses of one batch (``"loss"`` is the total)."""
        net = self._net(batch.num_atoms, batch.batch)
        return self.process.loss(net, self.to_state(batch), batch.batch, self.generates_types)

    def forward(self, batch: CrystalBatch) -> dict[str, torch.Tensor]:
        """Same as :meth:`loss` (so that DDP wraps the training step)."""
        return self.loss(batch)

    @property
    def ddp_find_unused_parameters(self) -> bool:
        """CSP never uses the type head, so DDP must not wait for its gradients."""
        return not self.generates_types

    def prepare(self, crystals: Sequence[Crystal]) -> Sequence[Crystal]:
        """Training examples: the crystals themselves."""
        return crystals

    def collate(self, examples: Sequence[Crystal], device: torch.device | str = "cpu") -> CrystalBatch:
        """One training batch."""
        return CrystalBatch.from_crystals(list(examples), device=device)

    def sample_num_atoms(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """(n,) atom counts drawn from the training distribution."""
        if not self.config.num_atoms_counts:
            raise XtalgenError("this model has no atom-count distribution; fit_statistics first")
        sizes = torch.tensor(list(self.config.num_atoms_counts))
        probs = torch.tensor(list(self.config.num_atoms_counts.values()), dtype=torch.float)
        return sizes[torch.multinomial(probs, n, replacement=True, generator=generator)]

    @torch.no_grad()
    def sample(
        self,
        num_atoms: torch.Tensor,
        atom_types: torch.Tensor | None = None,
        *,
        n_steps: int | None = None,
        generator: torch.Generator | None = None,
        progress: bool = False,
        init: CrystalBatch | None = None,
        noise_level: float = 1.0,
    ) -> CrystalBatch:
        """Generate one batch.

        Args:
            num_atoms: (B,) atoms per crystal.
            atom_types: (N,) atomic numbers (CSP; N = num_atoms.sum()); None for DNG.
            n_steps: sampler steps (diffusion: strided below ``timesteps``; flow: Euler steps).
            init: templates (CSP): start from them corrupted to ``noise_level`` in (0, 1]
                instead of from pure noise; their atom types are used.
        """
        if init is not None:
            if not 0 < noise_level <= 1:
                raise XtalgenError(f"noise_level must be in (0, 1], got {noise_level}")
            num_atoms, atom_types = init.num_atoms, init.atom_types
        device = self.type_mask.device
        num_atoms = num_atoms.to(device)
        batch = torch.repeat_interleave(torch.arange(len(num_atoms), device=device), num_atoms)
        if generator is None:
            generator = torch.Generator(device=device).manual_seed(0)
        elif generator.device.type != device.type:  # e.g. a CPU generator for a GPU model
            seed = int(torch.randint(2**62, (1,), generator=generator))
            generator = torch.Generator(device=device).manual_seed(seed)
        fixed = None
        if atom_types is not None:
            fixed = types_to_onehot(atom_types.to(device), self.config.backbone.n_types)
        elif not self.generates_types:
            raise XtalgenError("a CSP model needs atom types (a composition) to sample")
        state = self.process.sample(
            self._net(num_atoms, batch),
            batch,
            fixed,
            self.config.backbone.n_types,
            n_steps,
            generator,
            progress,
            lattice_shape=self.lattice_shape,
            init=None if init is None else self.to_state(init.to(device)),
            noise_level=noise_level,
        )
        if atom_types is None:
            logits = state.types.masked_fill(~self.type_mask, float("-inf"))
            atom_types = logits.argmax(-1) + 1
        return CrystalBatch(
            lattices=self.decode_lattices(state.lattices),
            frac_coords=state.frac_coords,
            atom_types=atom_types.to(device).long(),
            num_atoms=num_atoms,
            batch=batch,
        )
