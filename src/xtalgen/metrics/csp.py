"""Crystal structure prediction (CSP) metrics: match rate and RMSE (CDVAE / DiffCSP / FlowMM).

**How samples are tied to ground truth.** A CSP sample set holds k predictions per test
structure. Each predicted ``Crystal`` carries in ``properties``:

* ``material_id``: the ``material_id`` of its target in the reference split, **or**
  ``target_index``: the target's 0-based position in the reference split;
* ``sample_index``: 0, 1, ..., k-1 (the order in which samples count; sample 0 is the one
  used for the single-sample metrics). Without it, file order within a target is used.

**Metrics** (matcher preset ``csp``: ``StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3)``;
``r = get_rms_dist(pred, gt)``, a match when ``r`` is not None, RMSE = ``r[0]``, which is
normalised by ``(V/N)^(1/3)`` and dimensionless):

* ``match_rate@1`` = #(matched first samples) / N_test, ``rmse@1`` = mean RMSE over matches.
  Validity gate (``gate``): ``"pred_and_gt"`` (DiffCSP / FlowMM, default): a pair counts only
  when prediction and ground truth are both valid; ``"pred"`` (CDVAE): prediction only.
* ``match_rate@k`` / ``rmse@k``: per target, matched if any of its first k valid predictions
  matches; RMSE the minimum. Gated on prediction validity only, as in DiffCSP / FlowMM.
* With ``corrected=True`` (arXiv 2509.12178, as read from its summary; see the docstrings):
  ``cRMSE@1`` / ``cRMSE@k``: mean over **all** test structures of the (best) RMSE, an unmatched
  target counting as ``stol`` = 0.5; ``METRe@1`` / ``METRe@k``: a test structure counts as
  matched when any valid prediction made for a target of the **same composition** matches it
  (polymorphs of one composition share their predictions).

Validity = structural validity and SMACT validity (spec B.2-B.3). The reference code also
fails a structure whose CrystalNN fingerprint raises; that costs ~0.15 s per structure, so it
is an option (``fingerprint_gate``) rather than the default.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.matching import matcher_settings
from xtalgen.metrics.core import Metric
from xtalgen.metrics.evaluation import Evaluation
from xtalgen.metrics.fastmatch import PreparedMatcher
from xtalgen.metrics.fingerprints import structure_fingerprints
from xtalgen.metrics.validity import smact_validity, structure_validity
from xtalgen.parallel import parallel_map

__all__ = ["CSPConfig", "associate", "evaluate_csp", "rms_for_target"]

GATES = ("pred_and_gt", "pred", "none")
STOL = 0.5


@dataclass(frozen=True)
class CSPConfig:
    """Settings of the CSP suite (all recorded in metrics.json)."""

    k: int = 20
    """Samples per target counted by the @k metrics."""
    gate: str = "pred_and_gt"
    """Validity gate of the @1 metrics: ``pred_and_gt`` (DiffCSP/FlowMM) or ``pred`` (CDVAE);
    ``none`` switches validity off everywhere (for sanity checks, not for reporting)."""
    corrected: bool = False
    """Also report METRe and cRMSE (arXiv 2509.12178)."""
    fingerprint_gate: bool = False
    """Count a failing CrystalNN fingerprint as invalid (reference behaviour; slow)."""
    n_jobs: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.gate not in GATES:
            raise XtalgenError(f"unknown validity gate {self.gate!r}; choose one of {GATES}")
        if self.k < 1:
            raise XtalgenError("k must be at least 1")


def _validity(crystals: Sequence[Crystal], config: CSPConfig) -> np.ndarray:
    valid = np.array([structure_validity(c) and smact_validity(c) for c in crystals], dtype=bool)
    if config.fingerprint_gate and len(crystals):
        fps = structure_fingerprints(crystals, n_jobs=config.n_jobs, progress=config.progress)
        valid &= ~np.isnan(fps).any(axis=1)
    return valid


def associate(samples: Sequence[Crystal], reference: Sequence[Crystal]) -> list[list[int]]:
    """Sample indices of each reference structure, ordered by ``sample_index`` (file order ties).

    Raises XtalgenError for a sample without a target, or with an unknown target.
    """
    by_id = {}
    for i, ref in enumerate(reference):
        mid = ref.properties.get("material_id")
        if mid is not None:
            by_id.setdefault(str(mid), i)
    groups: list[list[tuple[int, int]]] = [[] for _ in reference]
    for j, sample in enumerate(samples):
        props = sample.properties
        if props.get("target_index") is not None:
            target = int(props["target_index"])
            if not 0 <= target < len(reference):
                raise XtalgenError(f"sample {j}: target_index {target} is outside the reference "
                                   f"(0-{len(reference) - 1})")
        elif props.get("material_id") is not None:
            mid = str(props["material_id"])
            if mid not in by_id:
                raise XtalgenError(f"sample {j}: material_id {mid!r} is not in the reference split")
            target = by_id[mid]
        else:
            raise XtalgenError(f"sample {j} has neither 'material_id' nor 'target_index' in its "
                               "properties: CSP samples must name their target")
        order = props.get("sample_index")
        groups[target].append((int(order) if order is not None else len(groups[target]), j))
    return [[j for _, j in sorted(g)] for g in groups]


def rms_for_target(task: tuple[Crystal, list[Crystal]]) -> list[float]:
    """``get_rms_dist(pred, gt)[0]`` of each prediction of one target (NaN where no match)."""
    gt, preds = task
    if not preds:
        return []
    matcher = PreparedMatcher("csp")
    gt_prepared = matcher.prepare(gt.to_pymatgen())
    out = []
    for pred in preds:
        try:
            r = matcher.rms_dist(matcher.prepare(pred.to_pymatgen()), gt_prepared)
        except Exception:  # the reference code counts an exception as no match
            r = None
        out.append(np.nan if r is None else float(r[0]))
    return out


def _pool_task(task: tuple[list[Crystal], list[list[Crystal]]]) -> list[list[float]]:
    """rms of every prediction made for any target of one composition against each target."""
    gts, preds_by_target = task
    pool = [p for preds in preds_by_target for p in preds]
    return [rms_for_target((gt, pool)) for gt in gts]


def evaluate_csp(
    samples: Sequence[Crystal],
    reference: Sequence[Crystal],
    *,
    config: CSPConfig | None = None,
    reference_names: dict[str, str] | None = None,
) -> Evaluation:
    """Match rate and RMSE of CSP ``samples`` against the ``reference`` (test) split."""
    config = config or CSPConfig()
    samples, reference = list(samples), list(reference)
    if not reference:
        raise XtalgenError("the reference split is empty")
    times: dict[str, float] = {}
    start = time.perf_counter()
    groups = associate(samples, reference)
    counted = [g[: config.k] for g in groups]
    used = sorted(j for g in counted for j in g)
    pred_valid = np.zeros(len(samples), dtype=bool)
    pred_valid[used] = _validity([samples[j] for j in used], config)
    gt_valid = _validity(reference, config)
    validity_table, gt_validity_table = pred_valid.copy(), gt_valid.copy()
    if config.gate == "none":
        pred_valid[used] = True
        gt_valid = np.ones(len(reference), dtype=bool)
    times["validity"] = round(time.perf_counter() - start, 3)

    start = time.perf_counter()
    tasks = [(reference[i], [samples[j] for j in g if pred_valid[j]]) for i, g in enumerate(counted)]
    valid_rms = parallel_map(rms_for_target, tasks, n_jobs=config.n_jobs, desc="CSP matching",
                             progress=config.progress, chunksize=8)
    rms = np.full(len(samples), np.nan)
    for g, values in zip(counted, valid_rms):
        for j, r in zip([j for j in g if pred_valid[j]], values):
            rms[j] = r
    times["matching"] = round(time.perf_counter() - start, 3)

    n_test = len(reference)
    first = np.array([g[0] if g else -1 for g in counted])
    r1 = np.array([rms[j] if j >= 0 else np.nan for j in first])
    gate1 = np.array([j >= 0 and pred_valid[j] for j in first])
    if config.gate == "pred_and_gt":
        gate1 &= gt_valid
    matched1 = gate1 & ~np.isnan(r1)
    best_k = np.array([np.nanmin(rms[g]) if g and (~np.isnan(rms[g])).any() else np.nan
                       for g in counted])
    matched_k = ~np.isnan(best_k)

    gate_k = "none" if config.gate == "none" else "pred"
    msettings = {**matcher_settings("csp"), "gate_at_1": config.gate, "gate_at_k": gate_k,
                 "k": config.k, "fingerprint_gate": config.fingerprint_gate, "n_test": n_test}
    metrics = [
        Metric("match_rate@1", "Fraction of test structures whose first prediction matches "
               "(StructureMatcher stol=0.5, angle_tol=10, ltol=0.3) under the validity gate.",
               float(matched1.sum() / n_test), msettings, int(matched1.sum()), n_test),
        Metric("rmse@1", "Mean normalised RMS displacement (get_rms_dist, divided by "
               "(V/N)^(1/3)) over matched first predictions.", _mean(r1[matched1]), msettings),
        Metric(f"match_rate@{config.k}", f"Fraction of test structures matched by any of their "
               f"first {config.k} valid predictions.", float(matched_k.sum() / n_test), msettings,
               int(matched_k.sum()), n_test),
        Metric(f"rmse@{config.k}", f"Mean over matched test structures of the smallest RMS "
               f"displacement among their first {config.k} predictions.", _mean(best_k[matched_k]),
               msettings),
    ]
    if config.corrected:
        start = time.perf_counter()
        metrics += _corrected(reference, samples, counted, first, pred_valid, gt_valid, r1,
                              best_k, gate1, config, msettings)
        times["corrected"] = round(time.perf_counter() - start, 3)

    target_of = np.full(len(samples), -1)
    rank_of = np.full(len(samples), -1)
    for i, g in enumerate(groups):
        for rank, j in enumerate(g):
            target_of[j], rank_of[j] = i, rank
    table = pd.DataFrame({
        "index": np.arange(len(samples)),
        "target_index": target_of,
        "target_material_id": [str(reference[t].properties.get("material_id", "")) for t in target_of],
        "sample_rank": rank_of,
        "counted": np.isin(np.arange(len(samples)), used),
        "formula": [c.formula for c in samples],
        "valid": validity_table,
        "target_valid": gt_validity_table[target_of],
        "rms_dist": rms,
        "matched": ~np.isnan(rms),
    })
    info = {
        "num_samples": len(samples),
        "num_test": n_test,
        "num_targets_with_samples": int(sum(1 for g in groups if g)),
        "max_samples_per_target": int(max((len(g) for g in groups), default=0)),
        "num_test_valid": int(gt_validity_table.sum()),
        "references": dict(reference_names or {}),
        "config": asdict(config),
        "timings_s": times,
        "association": "properties['material_id'] or ['target_index'], ordered by ['sample_index']",
    }
    return Evaluation("csp", metrics, table, info, {"gt_valid": gt_validity_table})


def _mean(x: np.ndarray) -> float | None:
    return float(np.mean(x)) if len(x) else None


def _corrected(reference, samples, counted, first, pred_valid, gt_valid, r1, best_k, gate1,
               config, settings) -> list[Metric]:
    n_test = len(reference)
    c1 = np.where(gate1 & ~np.isnan(r1), r1, STOL)
    ck = np.where(~np.isnan(best_k), best_k, STOL)
    # METRe: predictions are pooled over the targets of one composition (with counts)
    pools: dict[str, list[int]] = defaultdict(list)
    for i, ref in enumerate(reference):
        pools[ref.composition.formula].append(i)
    metre1 = (gate1 & ~np.isnan(r1)).copy()
    metre_k = ~np.isnan(best_k)
    multi = [idx for idx in pools.values() if len(idx) > 1]
    for tag, picks in (("1", [[j] if j >= 0 else [] for j in first]), ("k", counted)):
        tasks = [([reference[i] for i in idx],
                  [[samples[j] for j in picks[i] if pred_valid[j]] for i in idx]) for idx in multi]
        results = parallel_map(_pool_task, tasks, n_jobs=config.n_jobs, progress=config.progress,
                               desc=f"METRe@{tag} pools")
        for idx, per_gt in zip(multi, results):
            for i, values in zip(idx, per_gt):
                hit = bool(values) and bool((~np.isnan(values)).any())
                if tag == "1":
                    gate_ok = gt_valid[i] if config.gate == "pred_and_gt" else True
                    metre1[i] |= hit and gate_ok
                else:
                    metre_k[i] |= hit
    csettings = {**settings, "unmatched_penalty": STOL, "pooling": "same composition (counts)",
                 "source": "arXiv 2509.12178 (definitions as implemented here; see csp.py)"}
    k = config.k
    return [
        Metric("cRMSE@1", "Mean over all test structures of the first prediction's RMS "
               "displacement, an unmatched one counting as stol = 0.5.", float(c1.mean()), csettings),
        Metric(f"cRMSE@{k}", f"Mean over all test structures of the best RMS displacement among "
               f"the first {k} predictions, unmatched counting as stol = 0.5.", float(ck.mean()),
               csettings),
        Metric("METRe@1", "Fraction of test structures matched by the first prediction of any "
               "target with the same composition.", float(metre1.sum() / n_test), csettings,
               int(metre1.sum()), n_test),
        Metric(f"METRe@{k}", f"Fraction of test structures matched by any of the first {k} "
               f"predictions of any target with the same composition.",
               float(metre_k.sum() / n_test), csettings, int(metre_k.sum()), n_test),
    ]
