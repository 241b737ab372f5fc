"""Template-seeded crystal structure prediction (DiffCSP++-style) as one :class:`Generator`.

For each target composition:

1. **retrieve** prototypes of its anonymous formula from a pool of known crystals
   (:class:`xtalgen.search.substitution.PrototypeSubstitution`: species mapped by chemical
   similarity, volume rescaled, unrelaxed, prototype-diverse order, templates with the target's
   number of formula units first);
2. **refine** them with a learned CSP model: each sample starts from a template pushed back to
   ``noise_level`` of the model's noise path (see
   :meth:`xtalgen.models.iterative.generator.IterativeGenerator.sample_csp`); compositions without a template
   of their formula type are sampled from pure noise (template-free);
3. optionally **relax** every sample with the project's potential (``relax_steps > 0``; CHGNet
   by default, FIRE + cell filter, at most ``relax_steps`` steps, ``fmax`` in eV/angstrom). A
   relaxation that fails keeps the unrelaxed sample; one that runs out of steps keeps its last
   structure. Each sample says what happened in ``properties`` (``relaxed``,
   ``relax_steps``, ``relax_converged``, ``energy_per_atom`` in eV/atom).

Results obtained with templates or with relaxation are a different protocol from a plain
generative model's: report them labelled, next to the template-free figures.

A pipeline, not a model: it composes a search method (retrieval), a learned model and a
relaxation, so it sits above all three.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.models.base import Generator
from xtalgen.models.iterative.templates import TEMPLATE_CELLS, TEMPLATE_FILLS, templates_as_samples
from xtalgen.models.learned import LearnedGenerator, composition_species

__all__ = ["TemplatedCSP", "TemplatedCSPConfig", "relax_samples", "retrieve_templates"]


@dataclass
class TemplatedCSPConfig:
    """Settings of :class:`TemplatedCSP` (all optional).

    Attributes:
        pool: crystals to take templates from (default: the bundled MP-20 ``offline_train``;
            empty: no templates, every sample starts from noise).
        n_retrieve: templates retrieved per target before the sampler picks its ``k``.
        noise_level: noise of a template's first use (0: the template is returned as it is,
            refined only by relaxation; 1: pure noise).
        reuse_noise_level: noise of a template's later uses when there are fewer templates
            than samples (``template_fill="cycle"``).
        template_cells: ``"prefer"`` (templates with the target's number of sites first),
            ``"any"`` or ``"target"``; see :func:`xtalgen.models.iterative.templates.assign_templates`.
        template_fill: samples beyond the usable templates: ``"cycle"`` (reuse templates) or
            ``"noise"`` (template-free).
        relax_steps: relax every sample for at most this many steps (0: no relaxation).
        fmax: force threshold of the relaxation, eV/angstrom.
        relax_batch: crystals relaxed in lockstep, one batched potential call per step (pays
            on a GPU; on a CPU one by one costs less memory for about 10% more time).
        potential: potential name (see :func:`xtalgen.relax.get_potential`).
    """

    pool: Sequence[Crystal] | None = None
    n_retrieve: int = 100
    noise_level: float = 0.05
    reuse_noise_level: float | None = 0.3
    template_cells: str = "prefer"
    template_fill: str = "cycle"
    relax_steps: int = 0
    fmax: float = 0.1
    relax_batch: int = 1
    potential: str = "chgnet"

    def __post_init__(self) -> None:
        if self.template_cells not in TEMPLATE_CELLS:
            raise XtalgenError(f"template_cells must be one of {TEMPLATE_CELLS}, got {self.template_cells!r}")
        if self.template_fill not in TEMPLATE_FILLS:
            raise XtalgenError(f"template_fill must be one of {TEMPLATE_FILLS}, got {self.template_fill!r}")
        for name in ("noise_level", "reuse_noise_level"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise XtalgenError(f"{name} must lie in [0, 1], got {value}")
        if self.n_retrieve < 1:
            raise XtalgenError(f"n_retrieve must be at least 1, got {self.n_retrieve}")
        if self.relax_steps < 0:
            raise XtalgenError(f"relax_steps must be >= 0, got {self.relax_steps}")


class TemplatedCSP(Generator):
    """Retrieved templates, refined by a learned CSP model, optionally relaxed.

    Example::

        model = load_model("mp20-csp-flow", n_steps=20)
        csp = TemplatedCSP(model, relax_steps=50)
        crystals = csp.generate(20, composition="LiMnO2")
    """

    name = "templated-csp"

    def __init__(self, model: LearnedGenerator, config: TemplatedCSPConfig | None = None, *,
                 executor: Any = None, **overrides: Any) -> None:
        """``executor``: relaxes in parallel (see :func:`relax_samples`); None: in-process."""
        if model.task != "csp":
            raise XtalgenError(f"{model.name} is not a crystal-structure-prediction model")
        from xtalgen.search.common import apply_overrides

        self.model = model
        self.config = apply_overrides(config or TemplatedCSPConfig(), overrides, self.name)
        self.executor = executor
        self._search = None

    @classmethod
    def benchmark_kwargs(cls, train: Sequence[Crystal]) -> dict[str, Any]:
        """Templates retrieved from the benchmark's training split; the default recipe
        otherwise (noise 0.05, cycled at 0.3, no relaxation)."""
        return {"pool": list(train)}

    def retrieve(self, targets: Sequence[Crystal]) -> list[list[Crystal]]:
        """Up to ``n_retrieve`` templates per target, best first (empty: no template of the
        target's formula type in the pool); see :func:`retrieve_templates`."""
        from xtalgen.search.substitution import PrototypeSubstitution

        if self.config.pool is not None and len(self.config.pool) == 0:
            return [[] for _ in targets]  # an empty pool: template-free sampling
        if self._search is None:  # kept: its prototype index is built once
            self._search = PrototypeSubstitution(pool=self.config.pool, relax=False, energies=False,
                                                 progress=False)
        return retrieve_templates(targets, self.config.n_retrieve, search=self._search,
                                  progress=self.model.progress)

    def sample_csp(self, targets: Sequence[Crystal], k: int = 1, *, seed: int | None = None,
                   templates: Sequence[Sequence[Crystal]] | None = None) -> list[Crystal]:
        """``k`` structures per target (tagged ``material_id``, ``sample_index``), as
        :meth:`LearnedGenerator.sample_csp`; ``templates`` skips the retrieval (e.g. cached)."""
        cfg = self.config
        templates = self.retrieve(targets) if templates is None else templates
        if cfg.noise_level == 0:
            samples = templates_as_samples(targets, templates, k, cells=cfg.template_cells,
                                           fill=cfg.template_fill)
        else:
            samples = self.model.sample_csp(
                targets, k, seed=seed, templates=templates, noise_level=cfg.noise_level,
                reuse_noise_level=cfg.reuse_noise_level, template_cells=cfg.template_cells,
                template_fill=cfg.template_fill,
            )
        if cfg.relax_steps > 0:
            samples = relax_samples(samples, max_steps=cfg.relax_steps, fmax=cfg.fmax,
                                    batch_size=cfg.relax_batch, potential=cfg.potential,
                                    progress=self.model.progress, executor=self.executor)
        return samples

    def generate(
        self,
        n: int,
        *,
        composition: str | Mapping[str, float] | None = None,
        spacegroup: int | None = None,
        condition: Mapping[str, float] | None = None,
        seed: int | None = None,
    ) -> list[Crystal]:
        """``n`` structures of ``composition`` (one cell of it: ``Li2Mn2O4`` asks for 8 sites)."""
        if composition is None:
            raise XtalgenError("templated CSP needs a composition")
        if spacegroup is not None or condition:
            raise XtalgenError(f"{self.name} does not support space-group or property conditions")
        if n < 1:
            raise XtalgenError(f"n must be at least 1, got {n}")
        species = composition_species(composition)
        target = Crystal(lattice=[[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]],
                         frac_coords=[[0.0, 0.0, 0.0]] * len(species), species=species,
                         properties={"material_id": "target"})
        samples = self.sample_csp([target], n, seed=seed)
        requested = composition if isinstance(composition, str) else dict(composition)
        return [s.with_properties(generator=self.name, composition=requested) for s in samples]


def retrieve_templates(targets: Sequence[Crystal], n_retrieve: int, *,
                       pool: Sequence[Crystal] | None = None, search: Any = None,
                       progress: bool = False) -> list[list[Crystal]]:
    """Up to ``n_retrieve`` prototype-substitution templates per target, best first, unrelaxed
    (empty: no template of the target's formula type). ``search``: a ready
    :class:`~xtalgen.search.substitution.PrototypeSubstitution` (else one over ``pool``)."""
    from tqdm.auto import tqdm

    from xtalgen.search.substitution import PrototypeSubstitution

    if search is None:
        search = PrototypeSubstitution(pool=pool, relax=False, energies=False, progress=False)
    out: list[list[Crystal]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "returned fewer than n" is expected here
        for target in tqdm(targets, desc="templates", disable=not progress):
            try:
                out.append(search.generate(n_retrieve, composition=target.formula, seed=0))
            except XtalgenError:  # no template of this formula type: template-free samples
                out.append([])
    return out


def relax_samples(samples: Sequence[Crystal], *, max_steps: int = 50, fmax: float = 0.1,
                  batch_size: int = 1, potential: Any = "chgnet", progress: bool = False,
                  executor: Any = None, chunk_size: int = 10) -> list[Crystal]:
    """Every sample relaxed (positions and cell) for at most ``max_steps`` FIRE steps, with its
    properties kept and ``relaxed``, ``relax_steps``, ``relax_converged`` and
    ``energy_per_atom`` (eV/atom) added. A failed relaxation keeps the input crystal.

    ``batch_size`` crystals are relaxed in lockstep (one batched potential call per step; for a
    GPU). ``executor`` (e.g. ``xtalgen.screen.get_executor(n_workers=2)``, with ``potential``
    given by name) relaxes chunks of ``chunk_size`` crystals in parallel worker processes.
    """
    from tqdm.auto import tqdm

    samples = list(samples)
    if not samples:
        return []
    step = max(chunk_size, batch_size)
    chunks = [(start, samples[start:start + step], max_steps, fmax, batch_size, potential)
              for start in range(0, len(samples), step)]
    out: list[Crystal | None] = [None] * len(samples)
    parallel = executor is not None and isinstance(potential, str)
    results = executor.imap_unordered(_relax_chunk, chunks) if parallel else map(_relax_chunk, chunks)
    with tqdm(total=len(samples), desc="relax", unit="crystal", disable=not progress) as bar:
        for start, relaxed in results:
            out[start:start + len(relaxed)] = relaxed
            bar.update(len(relaxed))
    return out  # type: ignore[return-value]


def _relax_chunk(task: tuple) -> tuple[int, list[Crystal]]:
    """Relax one batch (worker side of :func:`relax_samples`)."""
    from xtalgen.relax import get_potential, relax
    from xtalgen.relax.relaxer import RelaxConfig

    start, samples, max_steps, fmax, batch_size, potential = task
    pot = get_potential(potential) if isinstance(potential, str) else potential
    # no RMSD to the input: its supercell matching costs more than the relaxation itself
    config = RelaxConfig(fmax=fmax, max_steps=max_steps, compute_rmsd=False)
    results = relax(samples, potential=pot, config=config, batch_size=batch_size, progress=False)
    out = []
    for sample, result in zip(samples, results):
        if result.crystal is None:
            out.append(sample.with_properties(relaxed=False, relax_error=result.error))
            continue
        relaxed = result.crystal.replace(properties=dict(sample.properties))
        out.append(relaxed.with_properties(relaxed=True, relax_steps=int(result.n_steps),
                                           relax_converged=bool(result.converged),
                                           energy_per_atom=float(result.energy_per_atom)))
    return start, out
