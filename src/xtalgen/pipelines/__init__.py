"""Pipelines: generators composed of a search method, a learned model and a relaxation.

They sit above :mod:`xtalgen.search`, :mod:`xtalgen.models` and :mod:`xtalgen.relax`, and
behave like any other :class:`~xtalgen.models.base.Generator`.

* :mod:`xtalgen.pipelines.templated_csp`: :class:`TemplatedCSP` (``"templated-csp"``; the CLI's
  ``xtalgen sample CHECKPOINT --templates ...``): retrieved prototypes refined by a CSP model,
  optionally relaxed.
* :mod:`xtalgen.pipelines.conditioned`: :class:`RejectionGenerator` (the CLI's ``xtalgen sample
  GENERATOR --filter``): any generator, kept to a chemical system, a space group and target
  properties (by spglib and the property predictors) by rejection.
* :mod:`xtalgen.pipelines.symmetric_sampling`: :class:`SymmetricSampler` (hard space-group
  conditioning, DiffCSP++-style): a CSP model sampled inside Wyckoff templates (from the
  Wyckoff-token model, a pool or user-given crystals), every sample exactly symmetric.

:data:`PIPELINES` names the pipelines that wrap one learned checkpoint, so that
``xtalgen benchmark`` can run them as ``PIPELINE:CHECKPOINT`` (e.g.
``templated-csp:mp20-csp-flow``), built with the class's ``benchmark_kwargs``.
"""

from xtalgen.pipelines.conditioned import RejectionGenerator, satisfies
from xtalgen.pipelines.symmetric_sampling import (
    PoolTemplates,
    SymmetricSampler,
    SymmetricSamplerConfig,
    WyckoffTemplates,
)
from xtalgen.pipelines.templated_csp import (
    TemplatedCSP,
    TemplatedCSPConfig,
    relax_samples,
    retrieve_templates,
)

PIPELINES: dict[str, str] = {"templated-csp": "xtalgen.pipelines.templated_csp:TemplatedCSP"}
"""Pipeline name -> ``"module:Class"`` of the pipelines built as ``Class(learned_generator,
**Class.benchmark_kwargs(train))``."""

__all__ = ["PIPELINES", "PoolTemplates", "RejectionGenerator", "SymmetricSampler", "SymmetricSamplerConfig",
           "TemplatedCSP", "TemplatedCSPConfig", "WyckoffTemplates", "relax_samples",
           "retrieve_templates", "satisfies"]
