"""Pluggable GFlowNet rewards R = exp(-beta * E), handled as log-rewards -beta * E.

A reward is any callable ``crystals -> (N,) log-rewards`` (:class:`Reward`); NaN where it has
no value (the environment then gives the log-reward floor and counts the crystal). It may also
have

* ``invalid_reasons(crystals) -> list[str | None]``: hard validity terms (e.g. charge
  neutrality); a crystal with a reason is floored and counted, never rewarded;
* ``check_system(elements)``: raises :class:`XtalgenError` when the reward cannot score a
  chemical system at all (e.g. an element without a hull reference), before any training.

Built in, by name (:data:`REWARDS`, imported when asked for, so that this package needs
neither the potentials nor the metrics):

* ``"toy"``: :class:`ToyReward`, analytic and instant, for tests and the enumerable toy;
* ``"formation-energy"``: the formation energy per atom (eV/atom) predicted by the trained
  predictor ``mp20-formation-energy`` (:class:`xtalgen.properties.rewards.FormationEnergyReward`);
* ``"chgnet-formation-energy"``: CHGNet single-point energy against the bundled hull's
  elemental references (eV/atom; :class:`xtalgen.properties.rewards.CHGNetFormationEnergyReward`);
* ``"e-hull"``: CHGNet energy above the bundled hull after a short relaxation (eV/atom),
  cached by structure (:class:`xtalgen.properties.rewards.EHullReward`).

All three add charge neutrality (SMACT, metals exempt) as a hard term; the minimum
interatomic distance is the environment's (:mod:`xtalgen.models.gflownet.env`). A user's
reward: ``"package.module:Class"``.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from xtalgen.crystal import Crystal, crystals_sha256
from xtalgen.errors import XtalgenError

__all__ = ["REWARDS", "EnergyReward", "Reward", "ToyReward", "make_reward"]

REWARDS: dict[str, str] = {
    "toy": "xtalgen.models.gflownet.rewards:ToyReward",
    "formation-energy": "xtalgen.properties.rewards:FormationEnergyReward",
    "chgnet-formation-energy": "xtalgen.properties.rewards:CHGNetFormationEnergyReward",
    "e-hull": "xtalgen.properties.rewards:EHullReward",
}
"""Reward names -> ``"module:Class"``; each class takes keyword options (``beta``, ...)."""


@runtime_checkable
class Reward(Protocol):
    """``reward(crystals)`` -> (N,) log-rewards (natural log; NaN: no value)."""

    def __call__(self, crystals: Sequence[Crystal]) -> np.ndarray: ...


class EnergyReward:
    """log R = -beta * E for an energy-like E of each crystal (``energy``), cached by
    structure (lattice, coordinates and species, exactly), so no crystal is evaluated twice.

    Args:
        beta: inverse temperature, per unit of E (eV/atom for the energy rewards): a change of
            1/beta in E changes the reward e-fold.
    """

    name = "energy"
    unit = "eV/atom"

    def __init__(self, beta: float = 1.0) -> None:
        if not beta > 0 or not math.isfinite(beta):
            raise XtalgenError(f"beta must be a positive number, got {beta}")
        self.beta = float(beta)
        self._energies: dict[str, float] = {}

    def energy(self, crystals: Sequence[Crystal]) -> np.ndarray:
        """(N,) E of each crystal (NaN where it has none)."""
        raise NotImplementedError

    def energies(self, crystals: Sequence[Crystal]) -> np.ndarray:
        """``energy`` through the structure cache."""
        keys = [crystals_sha256([c]) for c in crystals]
        todo = [i for i, k in enumerate(keys) if k not in self._energies]
        if todo:
            values = np.asarray(self.energy([crystals[i] for i in todo]), dtype=np.float64)
            for i, value in zip(todo, values):
                self._energies[keys[i]] = float(value)
        return np.array([self._energies[k] for k in keys], dtype=np.float64)

    def __call__(self, crystals: Sequence[Crystal]) -> np.ndarray:
        return -self.beta * self.energies(crystals)

    def check_system(self, elements: Sequence[int]) -> None:
        """Raise when the reward cannot score crystals of these elements (default: it can)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(beta={self.beta:g})"


class ToyReward(EnergyReward):
    """An analytic stand-in, instant: E = |ln(v / v0)| + mixing * (1 - x_min / x_max), where v
    is the volume per atom (cubic angstrom) and x the composition's atom fractions.

    Zero for a cell at ``volume_per_atom`` with equal amounts of its elements; for tests and
    the enumerable toy environment, where the sampled distribution can be compared with the
    exact reward.
    """

    name = "toy"
    unit = "dimensionless"

    def __init__(self, beta: float = 3.0, volume_per_atom: float = 20.0, mixing: float = 0.5) -> None:
        super().__init__(beta)
        if not volume_per_atom > 0:
            raise XtalgenError(f"volume_per_atom must be positive, got {volume_per_atom}")
        self.volume_per_atom = float(volume_per_atom)
        self.mixing = float(mixing)

    def energy(self, crystals: Sequence[Crystal]) -> np.ndarray:
        out = []
        for crystal in crystals:
            v = crystal.volume / crystal.num_sites
            counts = np.unique(crystal.species, return_counts=True)[1]
            balance = counts.min() / counts.max() if len(counts) > 1 else 0.0
            out.append(abs(math.log(v / self.volume_per_atom)) + self.mixing * (1.0 - balance))
        return np.array(out, dtype=np.float64)


def make_reward(spec: str, **options: Any) -> Reward:
    """The reward named ``spec`` (a key of :data:`REWARDS` or ``"package.module:Class"``)
    built with ``options`` (``beta=...``); one clear :class:`XtalgenError` otherwise."""
    if spec in REWARDS:
        path = REWARDS[spec]
    elif ":" in spec:
        path = spec
    else:
        raise XtalgenError(f"unknown reward {spec!r}; known: {', '.join(REWARDS)} "
                           "(or package.module:Class)")
    module_name, _, attr = path.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise XtalgenError(f"cannot import reward {spec!r}: {exc}") from None
    try:
        reward = factory(**options)
    except TypeError as exc:
        raise XtalgenError(f"reward {spec!r} does not take these options {options}: {exc}") from None
    if not callable(reward):
        raise XtalgenError(f"reward {spec!r} is not callable")
    return reward
