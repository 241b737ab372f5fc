"""Physical rewards of the GFlowNet: R = exp(-beta * E), E in eV/atom.

* :class:`FormationEnergyReward` (``"formation-energy"``): E = the formation energy per atom
  predicted by the trained predictor (:mod:`xtalgen.properties.predictor`, shipped as
  ``mp20-formation-energy``), as Crystal-GFN rewards with its formation-energy proxy. Fast
  (a batched forward pass) but a proxy: it was trained on MP-20 crystals near the hull and can
  be fooled by cells unlike them, so the S.U.N. screen (CHGNet relaxation) is the check.
* :class:`CHGNetFormationEnergyReward` (``"chgnet-formation-energy"``): E = the CHGNet
  single-point energy per atom of the crystal as generated, minus the elemental references of
  the bundled MP-20 hull (the convention of :func:`xtalgen.properties.chgnet_formation_energy`,
  which caches to disk per call and so does not suit a training loop).
* :class:`EHullReward` (``"e-hull"``): E = the CHGNet energy above the bundled hull after a
  short relaxation (``relax_steps`` FIRE steps, positions and cell; eV/atom).

All are cached by structure (:class:`xtalgen.models.gflownet.rewards.EnergyReward`) and add
a hard validity term: a composition that is not charge neutral (SMACT oxidation states;
all-metal compositions pass, as in the DNG suite's validity) is never rewarded
(``invalid_reasons``). The minimum interatomic distance is the environment's. The GFlowNet
resolves them by name (:data:`xtalgen.models.gflownet.rewards.REWARDS`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from xtalgen.crystal import Crystal, element_symbol
from xtalgen.errors import XtalgenError
from xtalgen.models.gflownet.rewards import EnergyReward

__all__ = ["CHGNetFormationEnergyReward", "EHullReward", "FormationEnergyReward"]


class _ChargeNeutralReward(EnergyReward):
    """The hard term every physical reward shares: charge neutrality by SMACT (metals pass)."""

    def __init__(self, beta: float, *, charge_neutral: bool = True,
                 pauling_test: bool = False) -> None:
        super().__init__(beta)
        self.charge_neutral = charge_neutral
        self.pauling_test = pauling_test

    def invalid_reasons(self, crystals: Sequence[Crystal]) -> list[str | None]:
        """"not charge neutral" for a composition SMACT cannot balance (metals pass)."""
        if not self.charge_neutral:
            return [None] * len(crystals)
        from xtalgen.metrics.validity import smact_validity

        return [None if smact_validity(c, use_pauling_test=self.pauling_test) else
                "not charge neutral" for c in crystals]


class FormationEnergyReward(_ChargeNeutralReward):
    """E = the predicted formation energy per atom, eV/atom, from a trained predictor
    (default: the shipped ``mp20-formation-energy``; any predictor name or ``.pt`` file whose
    property is a formation energy). ``beta`` per eV/atom (default 5: 0.2 eV/atom is a factor
    e)."""

    name = "formation-energy"

    def __init__(self, beta: float = 5.0, *, predictor: str = "formation_energy",
                 batch_size: int = 64, **kwargs: Any) -> None:
        super().__init__(beta, **kwargs)
        self.predictor_name = predictor
        self.batch_size = batch_size
        self._predictor: Any = None

    @property
    def predictor(self) -> Any:
        if self._predictor is None:
            from xtalgen.properties.trained import load_predictor

            predictor = load_predictor(self.predictor_name, batch_size=self.batch_size)
            if "formation" not in predictor.prop:
                raise XtalgenError(f"predictor {self.predictor_name!r} predicts {predictor.prop}, "
                                   "not a formation energy")
            self._predictor = predictor
        return self._predictor

    def check_system(self, elements: Sequence[int]) -> None:
        """Raise when the predictor is missing or never saw an element of the system."""
        unseen = self.predictor.unseen_elements(elements)
        if unseen:
            raise XtalgenError(f"predictor {self.predictor.name} never saw "
                               f"{', '.join(element_symbol(z) for z in unseen)} in training: "
                               f"the {self.name} reward cannot score them")

    def energy(self, crystals: Sequence[Crystal]) -> np.ndarray:
        return np.asarray(self.predictor(list(crystals)), dtype=np.float64)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(beta={self.beta:g}, predictor={self.predictor_name!r})"


class _CHGNetReward(_ChargeNeutralReward):
    """Shared parts: the potential (loaded on first use, with torch's current thread count),
    the bundled hull and the element check."""

    def __init__(self, beta: float = 5.0, *, charge_neutral: bool = True,
                 pauling_test: bool = False, potential: str = "chgnet",
                 batch_size: int = 32) -> None:
        super().__init__(beta, charge_neutral=charge_neutral, pauling_test=pauling_test)
        self.potential_name = potential
        self.batch_size = batch_size
        self._potential: Any = None
        self._hull: Any = None

    @property
    def potential(self) -> Any:
        if self._potential is None:
            import torch

            from xtalgen.relax.potential import get_potential

            kwargs = {"threads": torch.get_num_threads()} if self.potential_name == "chgnet" else {}
            self._potential = get_potential(self.potential_name, **kwargs)
        return self._potential

    @property
    def hull(self) -> Any:
        if self._hull is None:
            from xtalgen.relax.hull import ConvexHull

            self._hull = ConvexHull()
        return self._hull

    def check_system(self, elements: Sequence[int]) -> None:
        """Raise when an element of the system has no elemental reference in the hull."""
        missing = [element_symbol(z) for z in elements
                   if element_symbol(z) not in self.hull.reference.elemental_energy_per_atom]
        if missing:
            raise XtalgenError(f"the bundled hull has no elemental reference for "
                               f"{', '.join(missing)}: the {self.name} reward cannot score them")

    def _single_points(self, crystals: Sequence[Crystal]) -> list[float]:
        """Potential energy per atom (eV/atom) of each crystal as given; NaN on failure."""
        out: list[float] = []
        for start in range(0, len(crystals), self.batch_size):
            chunk = list(crystals[start: start + self.batch_size])
            try:
                out += [r[0] for r in self.potential.single_points(chunk)]
            except Exception:  # one bad cell must not lose the batch: one at a time
                for crystal in chunk:
                    try:
                        out.append(self.potential.single_points([crystal])[0][0])
                    except Exception:
                        out.append(math.nan)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(beta={self.beta:g}, potential={self.potential_name!r})"


class CHGNetFormationEnergyReward(_CHGNetReward):
    """E = CHGNet single-point formation energy against the hull's elemental references,
    eV/atom (no relaxation). ``beta`` per eV/atom (default 5: 0.2 eV/atom is a factor e)."""

    name = "chgnet-formation-energy"

    def energy(self, crystals: Sequence[Crystal]) -> np.ndarray:
        energies = self._single_points(crystals)
        out = np.full(len(crystals), np.nan)
        for i, (crystal, energy) in enumerate(zip(crystals, energies)):
            composition = crystal.composition
            if math.isfinite(energy) and not self.hull.missing_elements(composition):
                out[i] = self.hull.formation_energy_per_atom(composition, energy)
        return out


class EHullReward(_CHGNetReward):
    """E = CHGNet energy above the bundled hull after ``relax_steps`` FIRE steps (force
    criterion ``fmax`` eV/angstrom), eV/atom; NaN where the relaxation fails."""

    name = "e-hull"

    def __init__(self, beta: float = 10.0, *, relax_steps: int = 50, fmax: float = 0.1,
                 **kwargs: Any) -> None:
        super().__init__(beta, **kwargs)
        if relax_steps < 0:
            raise XtalgenError(f"relax_steps must be >= 0, got {relax_steps}")
        self.relax_steps = relax_steps
        self.fmax = fmax

    def energy(self, crystals: Sequence[Crystal]) -> np.ndarray:
        from xtalgen.relax import RelaxConfig, relax
        from xtalgen.relax.hull import e_above_hull

        config = RelaxConfig(fmax=self.fmax, max_steps=self.relax_steps, compute_rmsd=False)
        results = relax(list(crystals), potential=self.potential, config=config, progress=False)
        out = np.full(len(crystals), np.nan)
        relaxed = [(i, r) for i, r in enumerate(results)
                   if r.crystal is not None and math.isfinite(r.energy_per_atom)]
        hull = e_above_hull([r.crystal for _, r in relaxed], [r.energy_per_atom for _, r in relaxed],
                            hull=self.hull, correction=self.potential.correction)
        for (i, _), result in zip(relaxed, hull):
            out[i] = result.e_above_hull
        return out
