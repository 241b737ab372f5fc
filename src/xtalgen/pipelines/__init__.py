"""Pipelines: generators composed of a search method, a learned model and a relaxation.

They sit above :mod:`xtalgen.search`, :mod:`xtalgen.models` and :mod:`xtalgen.relax`, and
behave like any other :class:`~xtalgen.models.base.Generator`.

* :mod:`xtalgen.pipelines.templated_csp`: :class:`TemplatedCSP` (``"templated-csp"``; the CLI's
  ``xtalgen sample CHECKPOINT --templates ...``): retrieved prototypes refined by a CSP model,
  optionally relaxed.
"""

from xtalgen.pipelines.templated_csp import (
    TemplatedCSP,
    TemplatedCSPConfig,
    relax_samples,
    retrieve_templates,
)

__all__ = ["TemplatedCSP", "TemplatedCSPConfig", "relax_samples", "retrieve_templates"]
