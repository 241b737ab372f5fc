"""A Wasserstein GAN for de novo crystals: noise to a whole crystal in one network call.

The generator (:class:`~xtalgen.models.oneshot.gan_nets.SlotGenerator`) maps noise ``z`` and an
atom count n to a lattice (the rotation-free k-vector, standardised as in the iterative models),
n fractional coordinates and n atom types among the training elements (padded to the largest
training cell, M slots). The critic (:class:`~xtalgen.models.oneshot.gan_nets.Critic`) is the
shared periodic invariant backbone, pooled, with a minibatch-spread feature against mode
collapse. Training is WGAN-GP (Gulrajani et al. 2017) through the one training loop's
``train_step`` hook (:func:`xtalgen.train.train`):

* the loop's batch of ``batch_size`` real crystals is cut into ``n_critic`` chunks; each chunk
  gives one critic update on ``D(fake) - D(real) + gp_weight * GP + drift_weight * D(real)^2``
  (the drift term of ProGAN keeps the scores near 0), with fake crystals of the chunk's atom
  counts (so real and fake pairs have equal counts, and the generator learns each count);
* then one generator update on ``-D(fake)`` for fakes of the last chunk's counts;
* types enter the critic as straight-through Gumbel-softmax samples (one-hot forward,
  softmax gradient; temperature ``gumbel_tau``), so the critic sees one-hot types for real and
  fake crystals alike, and sampling draws each type from the softmax (as in training).

One AdamW optimiser with two parameter groups (``param_groups``: generator and critic, betas
``(0.5, 0.9)``, no weight decay, the critic's rate times ``critic_lr_scale``): in each update
only one network has gradients, and AdamW skips parameters without one, so the groups are two
independent optimisers whose states the loop checkpoints and restores together. The loop's EMA
averages both networks; sampling uses the EMA generator. ``comp_unique`` in the training log is
the share of distinct compositions among the fakes of the generator update (mode collapse
shows there first); the validation loss is the critic's Wasserstein estimate
``D(real) - D(fake)`` on the validation crystals (EMA weights). A model is DNG only: the atom
count is drawn from the training distribution, and a composition, space group or property
condition is refused with one clear error.

Training (2-core CPU, one torch thread, the other core busy; generator MLP 128 wide, critic
backbone 3 x 128, batch 128 in 4 critic chunks of 32): about 3.5-5 steps/s on Perov-5 (5 atoms)
and 1.6 on MP-20 (up to 20), so 50 minutes are some 10,000-15,000 and 5,000 steps::

    xtalgen train --model gan --dataset perov5 --split train --val-split val \
      --hidden-dim 128 --num-layers 3 --batch-size 128 --n-critic 4 --lr 1e-4 \
      --max-steps 100000 --max-time 3000 --lr-schedule time --val-every 1000 --threads 1 \
      --out runs/gan-perov5

and the same with ``--dataset mp20 --split offline_train --val-split offline_val``. Ship
``last.pt`` (EMA weights; the validation loss is the critic's estimate, not a quality measure)
with :func:`xtalgen.models.learned.slim_checkpoint`.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.models.iterative.generative import KS_CLAMP, ModelConfig, sample_num_atoms
from xtalgen.models.learned import LearnedGenerator
from xtalgen.models.oneshot.gan_nets import Critic, SlotGenerator, Slots, gradient_penalty
from xtalgen.nn.backbone import BackboneConfig
from xtalgen.representations.lattice import ks_to_matrix_torch, matrix_to_ks

__all__ = ["CrystalGAN", "GANConfig", "GANGenerator"]

Example = tuple[np.ndarray, np.ndarray, np.ndarray]
"""A prepared crystal: standardised k (6,), fractional coordinates (n, 3), element indices (n,)."""


def _critic_backbone() -> BackboneConfig:
    return BackboneConfig(hidden_dim=128, num_layers=3, n_freqs=8, time_dim=16)


@dataclass
class GANConfig:
    """Sizes, WGAN-GP settings and training statistics of a crystal GAN; saved in checkpoints."""

    family: ClassVar[str] = "gan"
    latent_dim: int = 64
    hidden_dim: int = 256
    """Width of the generator MLP."""
    num_blocks: int = 3
    """Residual blocks of the generator MLP."""
    critic: BackboneConfig = field(default_factory=_critic_backbone)
    """The critic's backbone (``n_types`` is set to the number of training elements)."""
    n_critic: int = 5
    """Critic updates per generator update (each on 1/n_critic of the loop's batch)."""
    gp_weight: float = 10.0
    drift_weight: float = 1e-3
    gumbel_tau: float = 1.0
    minibatch_std: bool = True
    betas: list[float] = field(default_factory=lambda: [0.5, 0.9])
    critic_lr_scale: float = 1.0
    """The critic's learning rate is the loop's times this (TTUR when not 1)."""
    weight_decay: float = 0.0
    lattice_scale: float = 1.0
    """Angstrom per unit of the critic's lattice input (mean training lattice-vector length)."""
    ks_mean: list[float] = field(default_factory=lambda: [0.0] * 6)
    ks_std: list[float] = field(default_factory=lambda: [1.0] * 6)
    num_atoms_counts: dict[int, int] = field(default_factory=dict)
    """Training distribution of atoms per cell: sampling draws from it."""
    elements: list[int] = field(default_factory=list)
    """Atomic numbers of the training crystals: the type vocabulary."""

    def __post_init__(self) -> None:
        if self.n_critic < 1:
            raise XtalgenError(f"n_critic must be at least 1, got {self.n_critic}")
        if self.gp_weight < 0 or self.drift_weight < 0:
            raise XtalgenError("gp_weight and drift_weight must be >= 0")
        if self.gumbel_tau <= 0:
            raise XtalgenError(f"gumbel_tau must be > 0, got {self.gumbel_tau}")
        if len(self.betas) != 2:
            raise XtalgenError(f"betas must be two numbers, got {self.betas}")
        if self.elements:
            self.critic.n_types = len(self.elements)

    @property
    def max_atoms(self) -> int:
        """Slots of the generator: the largest training cell."""
        return max(self.num_atoms_counts) if self.num_atoms_counts else 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GANConfig:
        data = dict(data)
        return cls(critic=BackboneConfig(**data.pop("critic", {})),
                   num_atoms_counts={int(k): int(v)
                                     for k, v in data.pop("num_atoms_counts", {}).items()},
                   **data)

    def fit_statistics(self, crystals: Sequence[Crystal]) -> GANConfig:
        """Lattice scale, k mean/std, atom counts and elements, fitted as the iterative models
        fit them (:meth:`xtalgen.models.iterative.generative.ModelConfig.fit_statistics`)."""
        stats = ModelConfig().fit_statistics(crystals)
        self.lattice_scale, self.ks_mean, self.ks_std = stats.lattice_scale, stats.ks_mean, stats.ks_std
        self.num_atoms_counts, self.elements = stats.num_atoms_counts, stats.elements
        self.critic.n_types = len(self.elements)
        return self


class CrystalGAN(nn.Module):
    """Generator and critic; the learned-family contract of :mod:`xtalgen.models.learned` with
    ``train_step`` (WGAN-GP) and ``param_groups`` (one group per network)."""

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        if not config.elements or not config.num_atoms_counts:
            raise XtalgenError("a GAN needs its training statistics: call fit_statistics first")
        self.config = config
        m, k = config.max_atoms, len(config.elements)
        self.generator = SlotGenerator(config.latent_dim, config.hidden_dim, config.num_blocks, m, k)
        self.critic = Critic(config.critic, m, config.minibatch_std)
        self.register_buffer("ks_mean", torch.tensor(config.ks_mean), persistent=False)
        self.register_buffer("ks_std", torch.tensor(config.ks_std), persistent=False)
        self.register_buffer("element_z", torch.tensor(config.elements), persistent=False)
        self._index = {z: i for i, z in enumerate(config.elements)}

    @property
    def device(self) -> torch.device:
        return self.ks_mean.device

    def param_groups(self) -> list[dict[str, Any]]:
        """AdamW groups: the generator, then the critic (see the module docstring)."""
        c = self.config
        common = {"betas": tuple(c.betas), "weight_decay": c.weight_decay}
        return [{"params": list(self.generator.parameters()), "lr_scale": 1.0, **common},
                {"params": list(self.critic.parameters()), "lr_scale": c.critic_lr_scale, **common}]

    # -- data ------------------------------------------------------------------------------------
    def prepare(self, crystals: Sequence[Crystal]) -> list[Example]:
        """Crystals with at most ``max_atoms`` sites of training elements, as k, coordinates
        and element indices (the others are skipped)."""
        out = []
        mean, std = np.asarray(self.config.ks_mean), np.asarray(self.config.ks_std)
        for c in crystals:
            species = [int(z) for z in c.species]
            if not 0 < len(species) <= self.config.max_atoms or not set(species) <= self._index.keys():
                continue
            ks = (matrix_to_ks(np.asarray(c.lattice, dtype=float)) - mean) / std
            out.append((ks, np.asarray(c.frac_coords, dtype=float) % 1.0,
                        np.array([self._index[z] for z in species])))
        return out

    def collate(self, examples: Sequence[Example], device: torch.device | str = "cpu") -> Slots:
        """Pad prepared crystals to :class:`Slots` (one-hot types)."""
        b, m, k = len(examples), self.config.max_atoms, len(self.config.elements)
        frac = np.zeros((b, m, 3))
        types = np.zeros((b, m, k))
        for i, (_, f, idx) in enumerate(examples):
            frac[i, : len(idx)] = f
            types[i, np.arange(len(idx)), idx] = 1.0
        as_float = dict(dtype=torch.float32, device=device)
        return Slots(torch.tensor(np.stack([e[0] for e in examples]), **as_float),
                     torch.tensor(frac, **as_float), torch.tensor(types, **as_float),
                     torch.tensor([len(e[2]) for e in examples], device=device))

    # -- networks --------------------------------------------------------------------------------
    def lattices(self, ks: torch.Tensor) -> torch.Tensor:
        """(B, 6) standardised k -> (B, 3, 3) symmetric lattices in angstrom."""
        return ks_to_matrix_torch(ks * self.ks_std + self.ks_mean)

    def score(self, crystals: Slots) -> torch.Tensor:
        """(B,) critic scores (higher: more like the training crystals)."""
        lattices = self.lattices(crystals.ks) / self.config.lattice_scale
        return self.critic(lattices, crystals.frac, crystals.types, crystals.num_atoms)

    def fake(self, num_atoms: torch.Tensor, generator: torch.Generator | None = None) -> Slots:
        """Generated crystals with these atom counts; types are straight-through Gumbel-softmax
        samples (one-hot values, softmax gradients)."""
        num_atoms = num_atoms.to(self.device)
        z = torch.randn(len(num_atoms), self.config.latent_dim, device=self.device,
                        generator=generator)
        ks, frac, logits = self.generator(z, num_atoms)
        u = torch.rand(logits.shape, device=self.device, generator=generator)
        gumbel = -torch.log(-torch.log(u.clamp(1e-10, 1.0 - 1e-7)))
        soft = torch.softmax((logits + gumbel) / self.config.gumbel_tau, dim=-1)
        hard = nn.functional.one_hot(soft.argmax(-1), soft.shape[-1]).to(soft.dtype)
        return Slots(ks, frac, hard - soft.detach() + soft, num_atoms)

    def loss(self, batch: Slots) -> dict[str, torch.Tensor]:
        """Validation: the critic's Wasserstein estimate ``D(real) - D(fake)`` (fakes with the
        batch's atom counts)."""
        w = self.score(batch).mean() - self.score(self.fake(batch.num_atoms)).mean()
        return {"loss": w, "wasserstein": w}

    def forward(self, batch: Slots) -> dict[str, torch.Tensor]:
        return self.loss(batch)

    # -- training --------------------------------------------------------------------------------
    def train_step(self, batch: Slots, optimizer: torch.optim.Optimizer, step: int,
                   grad_clip: float) -> dict[str, torch.Tensor]:
        """``n_critic`` critic updates and one generator update (see the module docstring)."""
        if torch.distributed.is_available() and torch.distributed.is_initialized() \
                and torch.distributed.get_world_size() > 1:
            raise XtalgenError("GAN training runs in one process (no torchrun)")
        c = self.config
        n = len(batch.num_atoms)
        parts = max(1, min(c.n_critic, n // 2))  # chunks of at least 2 (the minibatch spread)
        bounds = np.linspace(0, n, parts + 1).round().astype(int)
        chunks = [batch.rows(slice(a, b)) for a, b in itertools.pairwise(bounds.tolist())]
        chunks = [chunks[i % parts] for i in range(c.n_critic)]  # reused if the batch is small
        for real in chunks:
            with torch.no_grad():
                fake = self.fake(real.num_atoms)
            d_real, d_fake = self.score(real), self.score(fake)
            gp = gradient_penalty(self.score, real, fake)
            d_loss = d_fake.mean() - d_real.mean() + c.gp_weight * gp + c.drift_weight * d_real.pow(2).mean()
            optimizer.zero_grad(set_to_none=True)
            d_loss.backward()
            critic_norm = torch.nn.utils.clip_grad_norm_(self.critic.parameters(), grad_clip)
            optimizer.step()
        self.critic.requires_grad_(False)  # the generator update leaves the critic alone
        try:
            fake = self.fake(chunks[-1].num_atoms)
            g_loss = -self.score(fake).mean()
            optimizer.zero_grad(set_to_none=True)
            g_loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(self.generator.parameters(), grad_clip)
            optimizer.step()
        finally:
            self.critic.requires_grad_(True)
        wasserstein = (d_real.mean() - d_fake.mean()).detach()
        return {"loss": d_loss.detach(), "wasserstein": wasserstein, "gp": gp.detach(),
                "g_loss": g_loss.detach(), "critic_grad_norm": critic_norm,
                "grad_norm": grad_norm, "comp_unique": composition_uniqueness(fake)}

    # -- sampling --------------------------------------------------------------------------------
    def sample_num_atoms(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """(n,) atom counts drawn from the training distribution."""
        return sample_num_atoms(self.config.num_atoms_counts, n, generator)

    @torch.no_grad()
    def sample(self, num_atoms: torch.Tensor, generator: torch.Generator | None = None
               ) -> list[Crystal | None]:
        """One crystal per atom count (None where the lattice is not finite); k is clipped to
        ``KS_CLAMP`` standard deviations, coordinates wrapped to [0, 1)."""
        fake = self.fake(num_atoms, generator)
        lattices = self.lattices(fake.ks.clamp(-KS_CLAMP, KS_CLAMP)).double().cpu().numpy()
        frac = (fake.frac.double() % 1.0).cpu().numpy()
        species = self.element_z[fake.types.argmax(-1)].cpu().numpy()
        out: list[Crystal | None] = []
        for i, n in enumerate(fake.num_atoms.tolist()):
            ok = np.isfinite(lattices[i]).all() and abs(np.linalg.det(lattices[i])) > 1e-6
            out.append(Crystal(lattices[i], frac[i, :n], species[i, :n]) if ok else None)
        return out


def composition_uniqueness(crystals: Slots) -> torch.Tensor:
    """Share of distinct compositions (multisets of element indices) in a batch."""
    idx = crystals.types.argmax(-1).tolist()
    keys = {tuple(sorted(row[:n])) for row, n in zip(idx, crystals.num_atoms.tolist())}
    return torch.tensor(len(keys) / max(1, len(idx)))


class GANGenerator(LearnedGenerator):
    """De novo crystals from a trained :class:`CrystalGAN` (its EMA generator)."""

    family = "gan"
    task = "dng"  # compositions come from the model (de novo); no CSP
    model_class = CrystalGAN
    config_class = GANConfig
    half_precision_prefixes = ("generator.", "critic.")

    def __init__(self, model: CrystalGAN, **kwargs: Any) -> None:
        kwargs.pop("n_steps", None)  # an iterative-model option; a GAN takes one step
        super().__init__(model, **kwargs)
        self.name = "gan"
        self.last_report: dict[str, Any] = {}

    def generate(
        self,
        n: int,
        *,
        composition: str | Mapping[str, float] | None = None,
        spacegroup: int | None = None,
        condition: Mapping[str, float] | None = None,
        seed: int | None = None,
    ) -> list[Crystal]:
        """``n`` de novo crystals (atom counts from the training distribution)."""
        if composition is not None:
            raise XtalgenError("the GAN generates compositions de novo (DNG); it takes no "
                               "composition: use a CSP model (e.g. perov5-csp-flow)")
        if spacegroup is not None or condition:
            raise XtalgenError("the GAN is unconditional: no space group or property condition "
                               "(use --filter for rejection sampling)")
        if n < 1:
            raise XtalgenError(f"n must be at least 1, got {n}")
        seed = 0 if seed is None else int(seed)
        generator = torch.Generator(device=self.model.device).manual_seed(seed)
        counts = self.model.sample_num_atoms(n, torch.Generator().manual_seed(seed))

        def draw(chunk: list[int]) -> list[tuple[Crystal | None, str]]:
            crystals = self.model.sample(counts[chunk], generator)
            props = {k: v for k, v in {"generator": self.name, "checkpoint": self.checkpoint,
                                       "seed": seed}.items() if v is not None}
            return [(None, "degenerate lattice") if c is None else
                    (c.with_properties(**props, index=i), "") for i, c in zip(chunk, crystals)]

        return self.sample_in_rounds(n, draw)
