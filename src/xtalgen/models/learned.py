"""What every learned family shares: the model contract, the family registry and the generator base.

A learned family is an ``nn.Module`` built from a config dataclass (``Model(config)``) that has

* ``config``: the dataclass, with ``to_dict()``, ``from_dict(d)`` (a classmethod),
  ``fit_statistics(crystals)`` (data statistics set before training, e.g. atom counts) and a
  class attribute ``family`` naming the family in :data:`FAMILIES`;
* ``prepare(crystals) -> list``: the training examples of a split, computed once (the iterative
  models use the crystals as they are; the Wyckoff transformer encodes them to tokens);
* ``collate(examples, device) -> batch``: one batch of examples;
* ``loss(batch) -> dict[str, Tensor]``: the training losses, ``"loss"`` the total (``forward``
  is the same, so that DDP wraps it);
* optionally ``train_step(batch, optimizer, step, grad_clip) -> dict``: the hook for a family
  whose optimisation step differs from "loss, backward, clip, step" (a GAN's alternating
  critic and generator updates, a GFlowNet's on-policy batches). It does its own backward and
  optimiser steps and returns its losses, with ``"loss"`` and ``"grad_norm"``; the one training
  loop (:func:`xtalgen.train.train`) still owns the schedule, EMA, checkpoints and time budget.
* optionally ``param_groups() -> list[dict]``: the AdamW parameter groups of the one
  optimiser (default: one group of all parameters), e.g. a GAN's generator and critic,
  each with its own betas, weight decay and ``lr_scale`` (a factor on the scheduled rate);
  the optimiser's state (both groups) is checkpointed and restored as a whole;
* optionally ``training_done() -> bool``: checked after every step; True stops the loop (with
  its last checkpoint) before ``max_steps``, e.g. a GFlowNet that has spent its budget of
  reward evaluations.

Its :class:`LearnedGenerator` subclass puts the model behind the :class:`Generator` interface.
Every checkpoint records its ``family``; :func:`load_model` (:meth:`LearnedGenerator.load`)
reads it and returns the right generator (checkpoints written before families existed are
iterative); :func:`slim_checkpoint` keeps what sampling needs, in the family's precision. The
file format itself is :mod:`xtalgen.models.checkpoint`.
"""

from __future__ import annotations

import importlib
import warnings
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from torch import nn
from tqdm.auto import tqdm

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.models.base import Generator
from xtalgen.models.checkpoint import read_checkpoint, write_checkpoint

__all__ = ["FAMILIES", "LearnedGenerator", "composition_species", "family_generator",
           "load_model", "model_class_for", "slim_checkpoint"]

FAMILIES: dict[str, str] = {
    "iterative": "xtalgen.models.iterative.generator:IterativeGenerator",
    "wyckoff": "xtalgen.models.autoregressive.wyckoff:WyckoffGenerator",
    "cif-lm": "xtalgen.models.autoregressive.cif_lm:CifLMGenerator",
    "gflownet": "xtalgen.models.gflownet.model:GFlowNetGenerator",
    "gan": "xtalgen.models.oneshot.gan:GANGenerator",
    "vae": "xtalgen.models.oneshot.vae:VAEGenerator",
}
"""Family name (as recorded in checkpoints) -> ``"module:Class"`` of its generator."""

DEFAULT_FAMILY = "iterative"
"""The family of checkpoints written before families were recorded."""


def family_generator(family: str) -> type[LearnedGenerator]:
    """The :class:`LearnedGenerator` subclass of a family."""
    if family not in FAMILIES:
        raise XtalgenError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")
    module_name, class_name = FAMILIES[family].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def model_class_for(config: Any) -> type[nn.Module]:
    """The ``nn.Module`` class that ``config`` (a family's config dataclass) builds.

    A generator family's class comes from :data:`FAMILIES`. A trained model that is not a
    generator (a property predictor, :mod:`xtalgen.properties.predictor`) is not registered
    there: its config names its module class itself (``config.model_class()``), so the one
    training loop and the one checkpoint format serve it without this layer knowing of it.
    """
    family = getattr(config, "family", None)
    if family is None:
        raise XtalgenError(f"{type(config).__name__} names no model family")
    own = getattr(config, "model_class", None)
    if callable(own):
        return own()
    return family_generator(family).model_class


def composition_species(composition: str | Mapping[str, float]) -> list[int]:
    """Atomic numbers of the sites of one cell of ``composition`` (integer amounts only)."""
    from pymatgen.core import Composition

    try:
        comp = Composition(composition)
    except Exception as exc:
        raise XtalgenError(f"cannot parse composition {composition!r}: {exc}") from None
    species: list[int] = []
    for element, amount in comp.items():
        if amount <= 0 or abs(amount - round(amount)) > 1e-6:
            raise XtalgenError(
                f"composition {composition!r} needs whole numbers of atoms per cell, got "
                f"{amount:g} {element}"
            )
        species += [int(element.Z)] * round(amount)
    if not species:
        raise XtalgenError(f"composition {composition!r} has no atoms")
    return species


class LearnedGenerator(Generator):
    """Base of every trained generator: a family's model (EMA weights) behind ``Generator``."""

    family: ClassVar[str] = ""
    model_class: ClassVar[type[nn.Module]]
    config_class: ClassVar[type]
    max_rounds: int = 3
    """Rounds of :meth:`sample_in_rounds` (families whose draws can fail)."""
    half_precision_prefixes: ClassVar[tuple[str, ...]] = ()
    """State-dict key prefixes stored in half precision by ``slim_checkpoint`` (network
    weights; exact buffers such as noise schedules stay fp32)."""

    def __init__(
        self,
        model: nn.Module,
        *,
        checkpoint: str | None = None,
        batch_size: int = 256,
        device: str = "cpu",
        progress: bool = False,
        provenance: Mapping[str, Any] | None = None,
    ) -> None:
        self.model = model.to(device).eval()
        self.checkpoint = checkpoint
        self.batch_size = batch_size
        self.device = device
        self.progress = progress
        self.provenance = dict(provenance or {})

    @classmethod
    def load(cls, path: str | Path, **kwargs: Any) -> LearnedGenerator:
        """The generator of a checkpoint file, of whichever family it records."""
        payload = read_checkpoint(path)
        if payload.get("family") == "predictor":
            raise XtalgenError(f"checkpoint {str(path)!r} holds a property predictor, not a "
                               "generator: use it with `xtalgen predict` or `evaluate --property`")
        target = family_generator(payload.get("family", DEFAULT_FAMILY))
        if not issubclass(target, cls):
            raise XtalgenError(f"checkpoint {str(path)!r} holds a {target.family} model, not "
                               f"a {cls.family} one")
        try:
            model = target.model_class(target.config_class.from_dict(payload["model_config"]))
            model.load_state_dict(payload["ema_state_dict"])
        except (TypeError, KeyError, RuntimeError, ValueError) as exc:
            raise XtalgenError(f"checkpoint {str(path)!r} does not match this xtalgen version: {exc}") from None
        return target(model, checkpoint=str(path), provenance=payload.get("provenance"), **kwargs)

    def sample_in_rounds(
        self, n: int, draw: Callable[[list[int]], list[tuple[Crystal | None, str]]]
    ) -> list[Crystal]:
        """Rejection sampling shared by the families whose draws can fail: ``draw(indices)``
        returns one ``(crystal, "")`` or ``(None, reason)`` per index (in chunks of
        ``batch_size``); failed indices are drawn again, at most ``self.max_rounds`` rounds in
        all. Every failure is counted by reason in ``self.last_report`` (requested, decoded,
        failed_attempts, rounds, given_up) and a warning names what was given up."""
        results: dict[int, Crystal] = {}
        failures: Counter[str] = Counter()
        todo, rounds = list(range(n)), 0
        bar = tqdm(total=n, desc=f"sampling {getattr(self, 'name', self.family)}",
                   disable=not self.progress)
        while todo and rounds < self.max_rounds:
            rounds += 1
            retry: list[int] = []
            for start in range(0, len(todo), self.batch_size):
                chunk = todo[start: start + self.batch_size]
                for i, (crystal, reason) in zip(chunk, draw(chunk)):
                    if crystal is None:
                        failures[reason] += 1
                        retry.append(i)
                    else:
                        results[i] = crystal
                        bar.update(1)
            todo = retry
        bar.close()
        self.last_report = {"requested": n, "decoded": len(results),
                            "failed_attempts": dict(failures), "rounds": rounds,
                            "given_up": len(todo)}
        if todo:
            warnings.warn(f"{getattr(self, 'name', self.family)}: {len(todo)} of {n} samples "
                          f"failed {self.max_rounds} times ({dict(failures)}); returning "
                          f"{len(results)}", stacklevel=3)
        return [results[i] for i in sorted(results)]

    def save(self, path: str | Path) -> None:
        write_checkpoint(
            path,
            family=self.family,
            model_config=self.model.config,
            ema_state_dict=self.model.state_dict(),
            provenance=self.provenance,
        )


def load_model(path: str | Path, **kwargs: Any) -> LearnedGenerator:
    """``load_model(path).generate(n, ...)``: the generator of a checkpoint file, of the family
    the file records (:meth:`LearnedGenerator.load`); ``kwargs`` go to the generator."""
    return LearnedGenerator.load(path, **kwargs)


def slim_checkpoint(src: str | Path, dst: str | Path) -> Path:
    """Copy a checkpoint keeping only what sampling needs (EMA weights, config, provenance)."""
    payload = read_checkpoint(src)
    keep = ("family", "model_config", "ema_state_dict", "train_config", "provenance", "step",
            "wall_time_s", "best_val_loss")
    fields = {k: payload[k] for k in keep if k in payload}
    # network weights in half precision; exact buffers (noise schedules) stay fp32; a family
    # that is not a generator (a property predictor) keeps all of its weights in fp32
    family = payload.get("family", DEFAULT_FAMILY)
    prefixes = family_generator(family).half_precision_prefixes if family in FAMILIES else ()
    fields["ema_state_dict"] = {
        k: v.half() if v.is_floating_point() and k.startswith(prefixes) else v
        for k, v in fields["ema_state_dict"].items()
    }
    return write_checkpoint(dst, **fields)
