"""``VAEGenerator``: a trained CDVAE-style VAE (:mod:`xtalgen.models.oneshot.vae_model`) behind
the Generator interface, with the VAE's own uses.

* ``generate(n, seed=...)``: de novo, from the prior ``z ~ N(0, I)``.
* ``reconstruct(crystals)``: encode (the posterior mean), decode; each result carries its
  target's ``material_id`` and ``sample_index`` 0, so the CSP metrics score the reconstruction
  (CDVAE: StructureMatcher stol 0.5, angle_tol 10, ltol 0.3).
* ``interpolate(a, b, steps)``: decode the posterior means of ``a`` and ``b`` and the points on
  the segment between them, each with the same sampler noise (the same seed).
* ``optimize(n, ...)``: CDVAE's latent property optimisation: ``n`` starting latents (prior
  draws, or encodings of given crystals), Adam on z minimising the property head's prediction
  (or maximising it), decoded at ``n_decoded`` evenly spaced steps; one :class:`Trajectory`
  each. Score the decoded crystals with an independent predictor (not the head that was
  optimised): :func:`score_trajectories`, then :func:`success_rates` (CDVAE's SR5/10/15).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.models.learned import LearnedGenerator
from xtalgen.models.oneshot.vae_model import PROPERTY_COLUMNS, CrystalVAE, VAEConfig
from xtalgen.representations.tensors import CrystalBatch

__all__ = ["CrystalVAE", "Trajectory", "VAEConfig", "VAEGenerator", "score_trajectories",
           "success_rates"]


@dataclass
class Trajectory:
    """One latent optimisation run: the head's prediction and the decoded crystal at each
    saved step (a crystal is None where its lattice came out degenerate)."""

    index: int
    steps: list[int] = field(default_factory=list)
    """Gradient steps at which z was decoded (0: the start)."""
    predicted: list[float] = field(default_factory=list)
    """Property head's value at those steps (property units)."""
    crystals: list[Crystal | None] = field(default_factory=list)
    start: str | None = None
    """``material_id`` of the encoded starting crystal (None: a prior draw)."""


class VAEGenerator(LearnedGenerator):
    """Samples, reconstructs, interpolates and optimises crystals with a :class:`CrystalVAE`."""

    family = "vae"
    task = "dng"  # compositions come from the model (de novo); no CSP
    model_class = CrystalVAE
    config_class = VAEConfig
    half_precision_prefixes = ("encoder.", "decoder.backbone.")

    def __init__(self, model: CrystalVAE, *, n_steps: int | None = None, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.n_steps = n_steps
        """Flow steps of the decoder (None: the checkpoint's default)."""
        self.name = "vae"

    @property
    def config(self) -> VAEConfig:
        return self.model.config

    # -- de novo ----------------------------------------------------------------------------
    def generate(
        self,
        n: int,
        *,
        composition: str | Mapping[str, float] | None = None,
        spacegroup: int | None = None,
        condition: Mapping[str, float] | None = None,
        seed: int | None = None,
    ) -> list[Crystal]:
        """``n`` crystals decoded from prior draws of z (DNG)."""
        if composition is not None or spacegroup is not None or condition:
            raise XtalgenError("the VAE generates de novo only: no composition, space group or "
                               "condition (wrap it in a filter: `xtalgen sample ... --filter`)")
        if n < 1:
            raise XtalgenError(f"n must be at least 1, got {n}")
        seed = 0 if seed is None else int(seed)
        generator = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.config.latent_dim, generator=generator)
        return self._decode(z, generator, [{"seed": seed} for _ in range(n)])

    # -- encode / decode --------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, crystals: Sequence[Crystal]) -> torch.Tensor:
        """(len(crystals), latent_dim) posterior means, on the CPU."""
        if not crystals:
            raise XtalgenError("no crystals to encode")
        out = []
        for start in range(0, len(crystals), self.batch_size):
            batch = CrystalBatch.from_crystals(list(crystals[start:start + self.batch_size]),
                                               device=self.device)
            out.append(self.model.encode(batch)[0].cpu())
        return torch.cat(out)

    def reconstruct(self, crystals: Sequence[Crystal], *, seed: int | None = None) -> list[Crystal]:
        """Encode then decode each crystal; tagged with its ``material_id`` (or position) and
        ``sample_index`` 0 (degenerate decodings are dropped, with a warning)."""
        seed = 0 if seed is None else int(seed)
        z = self.encode(crystals)
        extras = [{"seed": seed, "sample_index": 0,
                   "material_id": str(c.properties.get("material_id", i))}
                  for i, c in enumerate(crystals)]
        return self._decode(z, torch.Generator().manual_seed(seed), extras)

    def interpolate(self, a: Crystal, b: Crystal, steps: int = 10, *,
                    seed: int | None = None) -> list[Crystal | None]:
        """``steps`` crystals decoded along the segment from ``a``'s latent to ``b``'s (both
        ends included), each with the same sampler noise; None where a lattice degenerated."""
        if steps < 2:
            raise XtalgenError(f"interpolation needs at least 2 steps, got {steps}")
        seed = 0 if seed is None else int(seed)
        za, zb = self.encode([a, b])
        out: list[Crystal | None] = []
        for i, w in enumerate(torch.linspace(0, 1, steps).tolist()):
            z = torch.lerp(za, zb, w)[None]
            crystal = self._decode_one(z, seed)
            out.append(None if crystal is None else crystal.with_properties(
                interpolation_step=i, interpolation_weight=w, seed=seed))
        return out

    # -- latent optimisation ----------------------------------------------------------------
    def optimize(
        self,
        n: int = 100,
        *,
        prop: str | None = None,
        steps: int = 5000,
        lr: float = 1e-3,
        seed: int | None = None,
        starts: Sequence[Crystal] | None = None,
        n_decoded: int = 10,
        maximize: bool = False,
    ) -> list[Trajectory]:
        """CDVAE's latent optimisation: Adam (``lr``) on ``n`` latents for ``steps`` steps
        against the property head (minimised; ``maximize`` to raise it), decoding at
        ``n_decoded`` evenly spaced steps, first and last included. ``starts``: encode these
        crystals (their first ``n``) instead of drawing from the prior (CDVAE starts from test
        crystals). ``prop``: the head's property name or column (a check; default: it)."""
        cfg = self.config
        if not cfg.property_column:
            raise XtalgenError(f"{self.checkpoint or 'this VAE'} was trained without property "
                               "labels, so it has no property head to optimise")
        if prop is not None and prop not in (cfg.property_name, cfg.property_column):
            known = ", ".join(sorted({v[0] for v in PROPERTY_COLUMNS.values()}))
            raise XtalgenError(f"this VAE's property head predicts {cfg.property_name} "
                               f"({cfg.property_column}), not {prop!r} (heads: {known})")
        if n < 1 or steps < 0 or n_decoded < 1:
            raise XtalgenError("optimize needs n >= 1, steps >= 0 and n_decoded >= 1")
        seed = 0 if seed is None else int(seed)
        generator = torch.Generator().manual_seed(seed)
        names: list[str | None] = [None] * n
        if starts is not None:
            starts = list(starts)[:n]
            n = len(starts)
            z0 = self.encode(starts)
            names = [str(c.properties.get("material_id", i)) for i, c in enumerate(starts)]
        else:
            z0 = torch.randn(n, cfg.latent_dim, generator=generator)
        z = z0.to(self.device).clone().requires_grad_(True)
        optimizer = torch.optim.Adam([z], lr=lr)
        saved = sorted(set(np.linspace(0, steps, n_decoded).round().astype(int).tolist()))
        trajectories = [Trajectory(index=i, start=names[i]) for i in range(n)]
        sign = -1.0 if maximize else 1.0
        self.model.requires_grad_(False)
        try:
            for step in range(steps + 1):
                if step in saved:
                    self._record(z.detach(), step, seed, trajectories)
                if step == steps:
                    break
                optimizer.zero_grad()
                (sign * self.model.predict_property(z)).sum().backward()
                optimizer.step()
        finally:
            self.model.requires_grad_(True)
        return trajectories

    def _record(self, z: torch.Tensor, step: int, seed: int, trajectories: list[Trajectory]) -> None:
        with torch.no_grad():
            predicted = self.model.predict_property(z).cpu().tolist()
        decoded = self._decode_batches(z, torch.Generator().manual_seed(seed))
        for traj, value, crystal in zip(trajectories, predicted, decoded):
            traj.steps.append(step)
            traj.predicted.append(float(value))
            traj.crystals.append(None if crystal is None else crystal.with_properties(
                generator=self.name, trajectory=traj.index, step=step,
                **{f"head_{self.config.property_name}": float(value)}))

    # -- shared decoding --------------------------------------------------------------------
    def _decode_batches(self, z: torch.Tensor, generator: torch.Generator) -> list[Crystal | None]:
        out: list[Crystal | None] = []
        for start in range(0, len(z), self.batch_size):
            chunk = z[start:start + self.batch_size].to(self.device)
            out += self.model.decode(chunk, generator=generator, n_steps=self.n_steps).to_crystals(
                invalid_as_none=True)
        return out

    def _decode_one(self, z: torch.Tensor, seed: int) -> Crystal | None:
        return self._decode_batches(z, torch.Generator().manual_seed(seed))[0]

    def _decode(self, z: torch.Tensor, generator: torch.Generator,
                extras: list[dict[str, Any]]) -> list[Crystal]:
        """Decode ``z``, tag each crystal with provenance and ``extras``; drop degenerate ones."""
        n_steps = self.n_steps or self.config.decoder.flow.n_steps
        crystals: list[Crystal] = []
        for i, crystal in enumerate(self._decode_batches(z, generator)):
            if crystal is None:
                continue
            props = {"generator": self.name, "checkpoint": self.checkpoint, "n_steps": n_steps,
                     "index": i, **extras[i]}
            crystals.append(crystal.with_properties(**{k: v for k, v in props.items()
                                                       if v is not None}))
        if len(crystals) < len(z):
            warnings.warn(f"{len(z) - len(crystals)} of {len(z)} decoded crystals had a "
                          "degenerate lattice and were dropped", stacklevel=3)
        return crystals


def score_trajectories(trajectories: Sequence[Trajectory],
                       predictor: Callable[[Sequence[Crystal]], np.ndarray]) -> list[list[float]]:
    """``predictor`` (e.g. :func:`xtalgen.properties.trained.load_predictor`) on every decoded
    crystal of every trajectory, one call in all; NaN where a crystal is None or unscored."""
    crystals = [c for t in trajectories for c in t.crystals if c is not None]
    values = iter(np.asarray(predictor(crystals), dtype=float) if crystals else [])
    return [[float(next(values)) if c is not None else float("nan") for c in t.crystals]
            for t in trajectories]


def success_rates(scores: Sequence[Sequence[float]], thresholds: Mapping[str, float],
                  maximize: bool = False) -> dict[str, float]:
    """CDVAE's optimisation success: for each named threshold, the share of trajectories whose
    best score (lowest; highest with ``maximize``) is at or below (at or above) it."""
    sign = -1.0 if maximize else 1.0
    best = np.array([np.nanmin(sign * np.asarray(s, float)) if np.isfinite(s).any() else np.inf
                     for s in scores])
    return {name: float(np.mean(best <= sign * value)) if len(best) else float("nan")
            for name, value in thresholds.items()}
