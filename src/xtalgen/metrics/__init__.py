"""The evaluation protocol of the field (CDVAE / DiffCSP / FlowMM / MatterGen), implemented exactly.

>>> from xtalgen.data import load_dataset
>>> from xtalgen.metrics import evaluate_dng, evaluate_csp, write_report
>>> test = load_dataset("mp20", "offline_test")
>>> result = evaluate_dng(samples, test, train=load_dataset("mp20", "offline_train"))  # doctest: +SKIP
>>> result["cov_recall"].value, result.table[~result.table.valid]                     # doctest: +SKIP
>>> write_report(result, "evaluation/")                                               # doctest: +SKIP

Modules: ``presets`` (spglib tolerances, coverage cutoffs), ``fastmatch`` (pymatgen matching
with cached reductions), ``novelty`` (unique / novel masks), ``validity``, ``fingerprints``,
``coverage``, ``distributions``, ``symmetry``, ``dng`` and ``csp`` (the two suites), ``report``
(metrics.json, per-structure table, Markdown with plots). The matcher presets and MatterGen's
disordered matcher live below the metrics, in :mod:`xtalgen.matching` (re-exported here).
"""

from xtalgen.matching import (
    csp_matcher,
    disordered_matcher,
    get_matcher,
    ordered_matcher,
    rmsd_matcher,
)
from xtalgen.metrics.core import Metric
from xtalgen.metrics.csp import CSPConfig, evaluate_csp
from xtalgen.metrics.dng import DNGConfig, evaluate_dng
from xtalgen.metrics.evaluation import Evaluation
from xtalgen.metrics.novelty import novel_mask, unique_mask
from xtalgen.metrics.presets import ANGLE_TOLERANCE, SYMPREC
from xtalgen.metrics.report import write_report
from xtalgen.metrics.validity import smact_validity, structure_validity

__all__ = [
    "ANGLE_TOLERANCE",
    "SYMPREC",
    "CSPConfig",
    "DNGConfig",
    "Evaluation",
    "Metric",
    "csp_matcher",
    "disordered_matcher",
    "evaluate_csp",
    "evaluate_dng",
    "get_matcher",
    "novel_mask",
    "ordered_matcher",
    "rmsd_matcher",
    "smact_validity",
    "structure_validity",
    "unique_mask",
    "write_report",
]
