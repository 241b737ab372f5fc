"""``IterativeGenerator``: a trained diffusion or flow model behind the Generator interface.

CSP models take a composition (``generate(n, composition="Li2MnO3")``: the cell holds exactly
the formula as written, so ``"Li4Mn2O6"`` asks for a doubled cell) or a list of target crystals
(:meth:`IterativeGenerator.sample_csp`, which tags each sample with the target's ``material_id``
and its ``sample_index`` for the CSP metrics). DNG models draw the number of atoms from the
training distribution and generate the atom types too.

Conditions (:mod:`xtalgen.conditions`): ``generate(n, spacegroup=225, condition={"chemical_system":
"Li-Mn-O", "band_gap": 2.0})`` samples with classifier-free guidance of scale ``guidance``
(attribute or keyword; 1: plain conditional sampling) from a model trained with those conditions
(``ModelConfig.conditions``); any other condition is one clear error naming what the model knows
and the predictor filter (:class:`xtalgen.pipelines.conditioned.RejectionGenerator`) that serves it.
A DNG model asked for a chemical system decodes only the system's elements (a hard mask on the
types, trained embedding or not), so every sample lies within the system by construction; that
every element of the system is present is likely with a trained ``chemical_system`` embedding
but not guaranteed (the filter checks both).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from xtalgen.conditions import Conditions, system_label
from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.models.iterative.generative import CrystalGenerativeModel, ModelConfig
from xtalgen.models.iterative.templates import assign_templates
from xtalgen.models.learned import LearnedGenerator, composition_species
from xtalgen.representations.tensors import CrystalBatch

__all__ = ["IterativeGenerator"]


class IterativeGenerator(LearnedGenerator):
    """Samples crystals from a :class:`CrystalGenerativeModel` (EMA weights)."""

    family = "iterative"
    model_class = CrystalGenerativeModel
    config_class = ModelConfig
    half_precision_prefixes = ("backbone.",)

    def __init__(
        self,
        model: CrystalGenerativeModel,
        *,
        checkpoint: str | None = None,
        n_steps: int | None = None,
        batch_size: int = 256,
        device: str = "cpu",
        progress: bool = False,
        provenance: Mapping[str, Any] | None = None,
        guidance: float = 1.0,
    ) -> None:
        super().__init__(model, checkpoint=checkpoint, batch_size=batch_size, device=device,
                         progress=progress, provenance=provenance)
        self.n_steps = n_steps
        self.guidance = guidance
        """Classifier-free guidance scale of conditional sampling (1: conditional, no guidance)."""
        self.name = f"{model.config.process}-{model.config.task}"

    @property
    def task(self) -> str:
        return self.model.config.task

    @property
    def label(self) -> str:
        """How errors name this generator: a shipped checkpoint's name, another checkpoint's
        path, else the family name."""
        from xtalgen.checkpoints import CHECKPOINT_DIR

        if not self.checkpoint:
            return self.name
        path = Path(self.checkpoint)
        return path.stem if path.parent.resolve() == CHECKPOINT_DIR.resolve() else str(path)

    @property
    def native_conditions(self) -> frozenset[str]:  # type: ignore[override]
        """The conditions the model was trained with; DNG also takes a chemical system."""
        extra = {"chemical_system"} if self.task == "dng" else set()
        return frozenset(self.model.config.conditions) | extra

    # -- sampling ---------------------------------------------------------------------------
    def generate(
        self,
        n: int,
        *,
        composition: str | Mapping[str, float] | None = None,
        spacegroup: int | None = None,
        condition: Mapping[str, float] | None = None,
        seed: int | None = None,
    ) -> list[Crystal]:
        return self.sample(n, composition=composition, spacegroup=spacegroup,
                           condition=condition, seed=seed)

    def _conditions(
        self,
        spacegroup: int | None,
        condition: Mapping[str, Any] | None,
        species: list[int] | None,
        guidance: float,
    ) -> Conditions:
        """The validated request (CSP: the chemical system is the composition's)."""
        conditions = Conditions.from_mapping(condition, spacegroup=spacegroup)
        trained = self.model.config.conditions
        if guidance < 0:
            raise XtalgenError(f"guidance must be >= 0, got {guidance}")
        if guidance != 1.0 and not trained:
            raise XtalgenError(f"{self.label} was not trained with conditions, so guidance does "
                               "not apply to it (drop the guidance scale)")
        if species is not None:
            system = tuple(sorted(set(species)))
            if conditions.chemical_system not in (None, system):
                raise XtalgenError(f"the composition's elements ({system_label(system)}) are not "
                                   f"the chemical system {system_label(conditions.chemical_system)}")
            conditions = replace(conditions,
                                 chemical_system=system if "chemical_system" in trained else None)
        self.model.check_conditions(conditions, self.label)
        return conditions

    def sample(
        self,
        n: int,
        *,
        composition: str | Mapping[str, float] | None = None,
        spacegroup: int | None = None,
        condition: Mapping[str, float] | None = None,
        seed: int | None = None,
        n_steps: int | None = None,
        guidance: float | None = None,
    ) -> list[Crystal]:
        """``n`` crystals (CSP: of ``composition``; DNG: de novo), conditioned on ``spacegroup``
        and ``condition`` (names and units: :mod:`xtalgen.conditions`) with guidance scale
        ``guidance`` (default: the ``guidance`` attribute). See the module docstring."""
        if n < 1:
            raise XtalgenError(f"n must be at least 1, got {n}")
        seed = 0 if seed is None else int(seed)
        generator = torch.Generator().manual_seed(seed)
        extra: dict[str, Any] = {}
        guidance = self.guidance if guidance is None else float(guidance)
        species = None
        if self.task == "csp":
            if composition is None:
                raise XtalgenError(f"{self.name} is a crystal-structure-prediction model: give a composition")
            species = composition_species(composition)
            extra["composition"] = composition if isinstance(composition, str) else dict(composition)
        elif composition is not None:
            raise XtalgenError(f"{self.name} generates compositions itself; drop the composition")
        conditions = self._conditions(spacegroup, condition, species, guidance)
        if conditions:
            extra.update({f"condition_{k}": v for k, v in conditions.as_dict().items()})
            if self.model.config.conditions:
                extra["guidance"] = guidance
        if species is not None:
            counts = torch.full((n,), len(species))
            types = torch.tensor(species).repeat(n)
        else:
            counts = self.model.sample_num_atoms(n, generator)
            types = None
        return self._sample(counts, types, generator, seed, n_steps, [dict(extra) for _ in range(n)],
                            conditions=conditions, guidance=guidance)

    def sample_csp(
        self,
        targets: Sequence[Crystal],
        k: int = 1,
        *,
        seed: int | None = None,
        n_steps: int | None = None,
        templates: Sequence[Sequence[Crystal]] | None = None,
        noise_level: float = 0.5,
        template_cells: str = "prefer",
        template_fill: str = "noise",
        n_templated: int | None = None,
        templates_first: bool = True,
        reuse_noise_level: float | None = None,
    ) -> list[Crystal]:
        """``k`` structures per target composition, each tagged with the target's
        ``material_id`` and ``sample_index`` (0..k-1); ordered target by target.

        ``templates`` (optional, one list per target, best first, e.g. retrieved prototypes of
        the target's composition): templated samples start from a template corrupted to
        ``noise_level`` (DiffCSP++-style) and are tagged ``template_noise`` and
        ``template_rank``; the top-k distinct usable templates are used once each, in order
        (see :func:`xtalgen.models.iterative.templates.assign_templates` for ``template_cells``,
        ``template_fill``, ``n_templated`` and ``templates_first``). Samples without a template
        start from pure noise with the target's sites. A templated sample keeps its template's
        cell, which (unless ``template_cells="target"``) may hold a different number of
        formula units than the target. With ``template_fill="cycle"``, a template's second and
        later uses start from ``reuse_noise_level`` (default ``noise_level``), e.g. higher, to
        explore around it.
        """
        if self.task != "csp":
            raise XtalgenError(f"{self.name} is not a crystal-structure-prediction model")
        seed = 0 if seed is None else int(seed)
        generator = torch.Generator().manual_seed(seed)
        plan: list[list[Crystal | None]] = [[None] * k for _ in targets]
        if templates is not None:
            plan = assign_templates(targets, templates, k, cells=template_cells,
                                    fill=template_fill, n_templated=n_templated,
                                    templates_first=templates_first)
        plain: list[tuple[Crystal, dict[str, Any]]] = []
        seeded: dict[float, list[tuple[Crystal, dict[str, Any]]]] = {}
        reuse = noise_level if reuse_noise_level is None else reuse_noise_level
        for i, (target, starts) in enumerate(zip(targets, plan)):
            mid = target.properties.get("material_id", str(i))
            ranks = {id(t): r for r, t in enumerate(templates[i])} if templates else {}
            used: set[int] = set()
            for j, template in enumerate(starts):
                extra = {"material_id": mid, "sample_index": j, "composition": target.formula}
                if template is None:
                    plain.append((target, extra))
                    continue
                noise = reuse if id(template) in used else noise_level
                used.add(id(template))
                extra.update(template_noise=noise, template_rank=ranks.get(id(template)),
                             template_material_id=template.properties.get(
                                 "template_material_id", template.properties.get("material_id")))
                seeded.setdefault(noise, []).append((template, extra))
        out: list[Crystal] = []
        if plain:
            counts = torch.tensor([t.num_sites for t, _ in plain])
            types = torch.cat([torch.tensor(np.array(t.species)) for t, _ in plain])
            out += self._sample(counts, types, generator, seed, n_steps, [e for _, e in plain])
        for noise, group in seeded.items():
            out += self._sample(None, None, generator, seed, n_steps, [e for _, e in group],
                                init=[t for t, _ in group], noise_level=noise)
        order = {(str(c.properties["material_id"]), c.properties["sample_index"]): c for c in out}
        keys = [(str(t.properties.get("material_id", str(i))), j)
                for i, t in enumerate(targets) for j in range(k)]
        return [order[key] for key in keys if key in order]

    def _sample(
        self,
        counts: torch.Tensor | None,
        types: torch.Tensor | None,
        generator: torch.Generator,
        seed: int,
        n_steps: int | None,
        extras: list[dict[str, Any]],
        init: list[Crystal] | None = None,
        noise_level: float = 1.0,
        conditions: Conditions | None = None,
        guidance: float = 1.0,
    ) -> list[Crystal]:
        n_steps = n_steps or self.n_steps
        if init is not None:
            counts = torch.tensor([c.num_sites for c in init])
        offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(counts, 0)])
        crystals: list[Crystal] = []
        failed = 0
        starts = range(0, len(counts), self.batch_size)
        for start in tqdm(starts, desc=f"sampling {self.name}", disable=not self.progress):
            stop = min(start + self.batch_size, len(counts))
            chunk_types = None if types is None else types[offsets[start] : offsets[stop]]
            chunk_init = None
            if init is not None:
                chunk_init = CrystalBatch.from_crystals(init[start:stop])
            out = self.model.sample(counts[start:stop], chunk_types, n_steps=n_steps,
                                    generator=generator, progress=self.progress,
                                    init=chunk_init, noise_level=noise_level,
                                    conditions=conditions, guidance=guidance)
            for i, crystal in enumerate(out.to_crystals(invalid_as_none=True)):
                if crystal is None:
                    failed += 1
                    continue
                props = {"generator": self.name, "checkpoint": self.checkpoint, "seed": seed,
                         "n_steps": n_steps, "index": start + i, **extras[start + i]}
                props = {k: v for k, v in props.items() if v is not None}  # files need values
                crystals.append(crystal.with_properties(**props))
        if failed:
            warnings.warn(f"{failed} of {len(counts)} samples had a degenerate lattice and were dropped",
                          stacklevel=3)
        return crystals
