"""Search-based generators behind the common :class:`~xtalgen.models.base.Generator` interface.

* :class:`RandomSymmetricSearch` (``"random-search"``): AIRSS-style random symmetric crystals
  (pyxtal, Wyckoff-consistent), relaxed with the default potential, lowest energies kept.
* :class:`PrototypeSubstitution` (``"substitution"``): known structures of the same anonymous
  formula with species substituted by chemical similarity, rescaled, relaxed, ranked.

Every returned crystal carries provenance in ``properties``: ``generator``, ``seed``,
``composition`` (requested reduced formula), ``spacegroup_requested``, ``spacegroup`` and
``spacegroup_symbol`` (detected by spglib, symprec=0.1), ``relaxed``, ``energy_per_atom``
(eV/atom, when scored), ``n_potential_calls`` (for this crystal), ``search_potential_calls``
and ``search_wall_time`` (s, the whole call), and ``sample_index`` (rank, 0 = best).
Substitution adds ``template_material_id``, ``template_formula``, ``species_substitution``
and ``substitution_distance``; evolution adds ``generation`` and ``operator``. For CSP
evaluation, add the target's ``material_id`` (``xtalgen.metrics.csp``); ``sample_index`` is set.

From the command line: ``xtalgen sample random-search --composition Li2MnO3 --n 20`` (defaults)
or ``xtalgen search {random-search,substitution,evolution} --composition ... --max-calls ...``.
Every config takes ``relax``, a ``budget`` (:class:`SearchBudget`: potential calls and/or wall
time) and an optional ``executor`` (``xtalgen.screen``) to relax candidates in parallel.
"""

from __future__ import annotations

from xtalgen.search.common import SearchBudget
from xtalgen.search.evolution import EvolutionarySearch, EvolutionConfig
from xtalgen.search.random_search import RandomSearchConfig, RandomSymmetricSearch
from xtalgen.search.substitution import PrototypeSubstitution, SubstitutionConfig

__all__ = [
    "EvolutionConfig",
    "EvolutionarySearch",
    "PrototypeSubstitution",
    "RandomSearchConfig",
    "RandomSymmetricSearch",
    "SearchBudget",
    "SubstitutionConfig",
]
