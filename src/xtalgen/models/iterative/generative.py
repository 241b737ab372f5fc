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

Conditioning (``ModelConfig.conditions``; default none): classifier-free guidance as in
MatterGen (Zeni et al., Nature 2025). Condition embeddings
(:mod:`xtalgen.models.iterative.conditioning`) are added to the backbone's atom states; in
training each condition is replaced by its learned null embedding with probability
``cond_dropout``; at sampling the network is evaluated with the conditions (``out_c``) and,
when the guidance scale ``w`` is not 1, with every condition null (``out_u``, in the same
backbone call), and the fields are combined as ``out_u + w (out_c - out_u)`` (lattice,
coordinates and type fields; for the masked type path the log-probabilities, so that the type
distribution is ``p_u^(1-w) p_c^w`` renormalised). ``w = 1`` is plain conditional sampling,
``w = 0`` unconditional. A DNG model asked for a chemical system also restricts its decoded
types to the system's elements (with or without a trained ``chemical_system`` embedding).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from xtalgen.conditions import (
    CONDITION_NAMES,
    PROPERTY_COLUMNS,
    Conditions,
    condition_name,
    crystal_property,
    crystal_spacegroup,
    system_label,
)
from xtalgen.crystal import Crystal, element_symbol
from xtalgen.errors import XtalgenError
from xtalgen.models.iterative.conditioning import (
    ConditionEmbedding,
    condition_tensors,
    request_tensors,
)
from xtalgen.models.iterative.diffusion import DiffusionConfig, DiffusionProcess
from xtalgen.models.iterative.flow import FlowConfig, FlowProcess
from xtalgen.models.iterative.process import NetFn, Process, Projection, State
from xtalgen.nn.backbone import Backbone, BackboneConfig, BackboneOutput, types_to_onehot
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
    conditions: list[str] = field(default_factory=list)
    """Conditions the model is trained on (classifier-free guidance), a subset of
    ``chemical_system``, ``spacegroup``, ``band_gap``, ``formation_energy``; empty:
    unconditional (and the state dict is that of an unconditional model)."""
    cond_dropout: float = 0.2
    """Training: probability of the null embedding per condition and crystal (MatterGen's
    ``p_unconditional`` is 0.2); the null branch is what guidance subtracts."""
    condition_ranges: dict[str, list[float]] = field(default_factory=dict)
    """Property conditions: [min, max] of the training values (property units), the span of
    the radial-basis centres."""

    def __post_init__(self) -> None:
        if self.process not in PROCESSES:
            raise XtalgenError(f"unknown process {self.process!r}; choose one of {PROCESSES}")
        if self.task not in TASKS:
            raise XtalgenError(f"unknown task {self.task!r}; choose one of {TASKS}")
        if self.lattice_repr not in LATTICE_REPRS:
            raise XtalgenError(f"unknown lattice_repr {self.lattice_repr!r}; choose one of {LATTICE_REPRS}")
        self.backbone.lattice_output = self.lattice_repr
        self.conditions = [c for c in CONDITION_NAMES
                           if c in {condition_name(n) for n in self.conditions}]
        if not 0 <= self.cond_dropout < 1:
            raise XtalgenError(f"cond_dropout must be in [0, 1), got {self.cond_dropout}")

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
        """Set ``lattice_scale``, ``num_atoms_counts``, ``elements`` and (property conditions)
        ``condition_ranges`` from training crystals."""
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
        for name in self.conditions:
            if name not in PROPERTY_COLUMNS:
                continue
            values = np.array([crystal_property(c, name) for c in crystals])
            values = values[np.isfinite(values)]
            if not len(values):
                raise XtalgenError(f"no training crystal has a {name} value (column "
                                   f"{PROPERTY_COLUMNS[name]!r}): cannot train the {name} condition")
            self.condition_ranges[name] = [float(values.min()), float(values.max())]
        return self


def sample_num_atoms(counts: dict[int, int], n: int, generator: torch.Generator) -> torch.Tensor:
    """(n,) atom counts drawn from a training histogram ``{atoms per cell: crystals}``."""
    if not counts:
        raise XtalgenError("this model has no atom-count distribution; fit_statistics first")
    sizes = torch.tensor(list(counts))
    probs = torch.tensor(list(counts.values()), dtype=torch.float)
    return sizes[torch.multinomial(probs, n, replacement=True, generator=generator)]


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
        self.condition_embedding: ConditionEmbedding | None = None
        if config.conditions:
            self.condition_embedding = ConditionEmbedding(
                config.conditions, config.backbone.hidden_dim, config.backbone.n_types,
                config.condition_ranges)

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

    def _net(
        self,
        num_atoms: torch.Tensor,
        batch: torch.Tensor,
        cond: torch.Tensor | None = None,
        *,
        null_cond: torch.Tensor | None = None,
        guidance: float = 1.0,
        allowed_types: torch.Tensor | None = None,
    ) -> NetFn:
        """The network as the process sees it. ``cond``: (B, hidden_dim) condition embedding;
        with ``null_cond`` (all conditions null) and ``guidance`` != 1, classifier-free
        guidance (module docstring). ``allowed_types``: (n_types,) bool, a further restriction
        of the masked type logits (a chemical system)."""
        scale = self.config.lattice_scale
        as_matrix = self.config.lattice_repr == "ks"

        masked_types = (self.generates_types and self.config.process == "flow"
                        and self.config.flow.type_path == "masked")
        type_mask = self.type_mask if allowed_types is None else self.type_mask & allowed_types
        guided = cond is not None and null_cond is not None and guidance != 1.0
        n_graphs = num_atoms.shape[0]
        if guided:  # both branches in one backbone call: conditional first, then null
            num_atoms2 = torch.cat([num_atoms, num_atoms])
            batch2 = torch.cat([batch, batch + n_graphs])
            cond2 = torch.cat([cond, null_cond])

        def restrict(logits: torch.Tensor) -> torch.Tensor:
            return logits.masked_fill(~type_mask, -1e4)

        def net(t, types, frac, lattices):  # the NetFn signature
            if as_matrix:  # the backbone sees the lattice itself, in units of lattice_scale
                lattices = self.decode_lattices(lattices) / scale
            if not guided:
                out = self.backbone(t, types, frac, lattices, num_atoms, batch, cond)
            else:
                both = self.backbone(torch.cat([t, t]), torch.cat([types, types]),
                                     torch.cat([frac, frac]), torch.cat([lattices, lattices]),
                                     num_atoms2, batch2, cond2)
                n_atoms = types.shape[0]
                types_c, types_u = both.types[:n_atoms], both.types[n_atoms:]
                if masked_types:  # guide the log-probabilities among the allowed types
                    types_c = torch.log_softmax(restrict(types_c).float(), -1)
                    types_u = torch.log_softmax(restrict(types_u).float(), -1)
                out = BackboneOutput(
                    lattice=torch.lerp(both.lattice[n_graphs:], both.lattice[:n_graphs], guidance),
                    frac=torch.lerp(both.frac[n_atoms:], both.frac[:n_atoms], guidance),
                    types=torch.lerp(types_u, types_c, guidance).to(both.types.dtype),
                )
            if masked_types:  # type logits: only elements seen in training (and allowed)
                out = replace(out, types=restrict(out.types))
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

    def loss(self, batch: CrystalBatch, cond: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Training losses of one batch (``"loss"`` is the total). ``cond``: an explicit
        (B, hidden_dim) conditioning vector (e.g. a VAE decoder's projected latent), used
        instead of the condition embedding."""
        if cond is None and self.condition_embedding is not None:
            dropout = self.config.cond_dropout if self.training else 0.0
            cond = self.condition_embedding(batch.conditions or {}, batch.num_graphs, dropout)
        net = self._net(batch.num_atoms, batch.batch, cond)
        return self.process.loss(net, self.to_state(batch), batch.batch, self.generates_types)

    def forward(self, batch: CrystalBatch) -> dict[str, torch.Tensor]:
        """Same as :meth:`loss` (so that DDP wraps the training step)."""
        return self.loss(batch)

    @property
    def ddp_find_unused_parameters(self) -> bool:
        """CSP never uses the type head, so DDP must not wait for its gradients."""
        return not self.generates_types

    def prepare(self, crystals: Sequence[Crystal]) -> Sequence[Crystal]:
        """Training examples: the crystals themselves (a space-group condition: each tagged
        once with its ``spacegroup``, from its stored column or spglib at symprec 0.1)."""
        if "spacegroup" not in self.config.conditions:
            return crystals
        return [c.with_properties(spacegroup=crystal_spacegroup(c)) for c in crystals]

    def collate(self, examples: Sequence[Crystal], device: torch.device | str = "cpu") -> CrystalBatch:
        """One training batch (with its condition values for a conditional model)."""
        out = CrystalBatch.from_crystals(list(examples))
        if self.config.conditions:
            out.conditions = condition_tensors(list(examples), self.config.conditions,
                                               self.config.backbone.n_types)
        return out.to(device)

    def check_conditions(self, conditions: Conditions, label: str = "this model") -> None:
        """One clear error for a request this model cannot serve natively: a condition it was
        not trained on (a chemical system is served by a DNG model through its type mask
        alone), or an element it never saw in training."""
        trained = self.config.conditions
        knows = ", ".join(trained) or "none"
        for name in conditions.names:
            if name in trained or (name == "chemical_system" and self.generates_types):
                continue
            raise XtalgenError(
                f"{label} was not trained with the {name} condition (it knows: {knows}); "
                f"use a predictor filter instead: `xtalgen sample {label} --filter ...` "
                "(Python: xtalgen.pipelines.conditioned.RejectionGenerator)")
        if conditions.chemical_system is not None and self.config.elements:
            unseen = sorted(set(conditions.chemical_system) - set(self.config.elements))
            if unseen:
                raise XtalgenError(
                    f"{label} never saw {', '.join(element_symbol(z) for z in unseen)} in "
                    f"training, so it cannot generate the {system_label(conditions.chemical_system)} "
                    "system")

    def sample_num_atoms(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """(n,) atom counts drawn from the training distribution."""
        return sample_num_atoms(self.config.num_atoms_counts, n, generator)

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
        conditions: Conditions | None = None,
        guidance: float = 1.0,
        project: Projection | None = None,
        cond: torch.Tensor | None = None,
        fixed_lattices: torch.Tensor | None = None,
    ) -> CrystalBatch:
        """Generate one batch.

        Args:
            num_atoms: (B,) atoms per crystal.
            atom_types: (N,) atomic numbers (CSP; N = num_atoms.sum()); None for DNG.
            n_steps: sampler steps (diffusion: strided below ``timesteps``; flow: Euler steps).
            init: templates (CSP): start from them corrupted to ``noise_level`` in (0, 1]
                instead of from pure noise; their atom types are used.
            conditions: what every crystal of the batch is conditioned on (see
                :meth:`check_conditions`); conditions the model knows but not given are null.
            guidance: classifier-free guidance scale w (1: conditional; > 1: stronger).
            project: applied to the state after every sampler step (hard constraints, e.g. a
                space group: :class:`xtalgen.representations.symmetry_projection.SymmetryProjector`).
            cond: an explicit (B, hidden_dim) conditioning vector, used instead of the
                condition embedding (no guidance), e.g. a VAE decoder's projected latent.
            fixed_lattices: (B, *lattice_shape) known lattices in process space (flow only;
                see :meth:`Process.sample`), e.g. a VAE's lattice head.
        """
        if guidance < 0:
            raise XtalgenError(f"guidance must be >= 0, got {guidance}")
        conditions = conditions or Conditions()
        self.check_conditions(conditions)
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
        n_types = self.config.backbone.n_types
        null_cond = allowed = None
        if conditions.chemical_system is not None and atom_types is None:
            allowed = torch.zeros(n_types, dtype=torch.bool, device=device)
            allowed[torch.tensor(conditions.chemical_system, device=device) - 1] = True
        if cond is not None:
            cond = cond.to(device)
        elif self.condition_embedding is not None:
            values = request_tensors(conditions, self.config.conditions, len(num_atoms), n_types,
                                     device)
            cond = self.condition_embedding(values, len(num_atoms))
            if guidance != 1.0 and set(conditions.names) & set(self.config.conditions):
                null_cond = self.condition_embedding({}, len(num_atoms))
        state = self.process.sample(
            self._net(num_atoms, batch, cond, null_cond=null_cond, guidance=guidance,
                      allowed_types=allowed),
            batch,
            fixed,
            self.config.backbone.n_types,
            n_steps,
            generator,
            progress,
            lattice_shape=self.lattice_shape,
            init=None if init is None else self.to_state(init.to(device)),
            noise_level=noise_level,
            project=project,
            fixed_lattices=None if fixed_lattices is None else fixed_lattices.to(device),
        )
        if atom_types is None:
            type_mask = self.type_mask if allowed is None else self.type_mask & allowed
            logits = state.types.masked_fill(~type_mask, float("-inf"))
            atom_types = logits.argmax(-1) + 1
        return CrystalBatch(
            lattices=self.decode_lattices(state.lattices),
            frac_coords=state.frac_coords,
            atom_types=atom_types.to(device).long(),
            num_atoms=num_atoms,
            batch=batch,
        )
