"""The de novo generation (DNG) suite: CDVAE proxy metrics plus uniqueness, novelty, symmetry.

``evaluate_dng(samples, test, train=...)`` returns an :class:`~xtalgen.metrics.evaluation.Evaluation`
with, in order:

* ``struct_valid``, ``comp_valid``, ``valid``: fractions of **all** samples (a sample whose
  CrystalNN fingerprint fails is not valid, as in CDVAE);
* ``cov_recall``, ``cov_precision``, ``amsd_*``, ``amcd_*``: coverage of the test split by all
  samples, with the cutoffs of ``config.eval_model`` (mp20 0.4/10, carbon 0.2/4, perovskite 0.2/4);
* ``wdist_density``, ``wdist_num_elems``, ``wdist_prop``: Wasserstein distances between a seeded
  subsample of ``n_subsample`` valid samples and the test split; ``comp_div``, ``struct_div``;
* ``unique``, ``novel``, ``unique_novel``: with the named matcher preset ``config.matcher``
  (novelty against ``train``; skipped when no training split is given);
* ``sg_above_p1``, ``sg_tvd``, ``sg_match_requested``: space-group statistics.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial.distance import pdist
from tqdm.auto import tqdm

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.matching import MATCHER_PRESETS, matcher_settings
from xtalgen.metrics.core import Metric, fraction
from xtalgen.metrics.coverage import coverage
from xtalgen.metrics.distributions import (
    PropertyFn,
    densities,
    num_elements,
    subsample_valid,
    wasserstein,
)
from xtalgen.metrics.evaluation import Evaluation
from xtalgen.metrics.fingerprints import (
    composition_fingerprints,
    default_method,
    scale_composition,
    structure_fingerprints,
)
from xtalgen.metrics.novelty import novel_mask, unique_mask
from xtalgen.metrics.presets import COVERAGE_CUTOFFS
from xtalgen.metrics.symmetry import (
    histogram_tvd,
    requested_space_groups,
    space_group,
    space_groups,
)
from xtalgen.metrics.validity import MIN_DISTANCE, MIN_VOLUME, min_distance, smact_validity
from xtalgen.parallel import cpu_seconds

__all__ = ["DNGConfig", "evaluate_dng"]


@dataclass(frozen=True)
class DNGConfig:
    """Settings of the DNG suite (all recorded in metrics.json)."""

    eval_model: str = "mp20"
    """Coverage cutoffs: ``mp20`` (also MPTS-52), ``carbon`` or ``perovskite``."""
    n_subsample: int = 1000
    """Valid samples drawn for the Wasserstein distances and diversities."""
    seed: int = 0
    """Seed of that draw (the reference code has none)."""
    matcher: str = "ordered"
    """Matcher preset of uniqueness and novelty (see :mod:`xtalgen.matching`)."""
    n_jobs: int | None = None
    """Worker processes (default: all CPUs this process may use)."""
    progress: bool = True
    cache_reference: bool = True
    """Cache the test split's CrystalNN fingerprints on disk."""

    def __post_init__(self) -> None:
        if self.eval_model not in COVERAGE_CUTOFFS:
            raise XtalgenError(
                f"unknown eval_model {self.eval_model!r}; choose one of {list(COVERAGE_CUTOFFS)}"
            )
        if self.matcher not in MATCHER_PRESETS:
            raise XtalgenError(f"unknown matcher preset {self.matcher!r}; choose one of {list(MATCHER_PRESETS)}")
        if self.n_subsample < 1:
            raise XtalgenError("n_subsample must be at least 1")


class _Timer:
    """Wall and CPU seconds (this process plus finished worker processes) per stage."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def __call__(self, name: str):
        timer = self

        class _Block:
            def __enter__(self) -> None:
                self.start, self.cpu = time.perf_counter(), cpu_seconds()

            def __exit__(self, *exc: object) -> None:
                timer.times[name] = round(time.perf_counter() - self.start, 3)
                timer.cpu[name] = round(cpu_seconds() - self.cpu, 3)

        return _Block()


def evaluate_dng(
    samples: Sequence[Crystal],
    test: Sequence[Crystal],
    *,
    train: Sequence[Crystal] | None = None,
    property_fn: PropertyFn | None = None,
    property_name: str = "property",
    property_settings: Mapping[str, Any] | None = None,
    config: DNGConfig | None = None,
    reference_names: dict[str, str] | None = None,
) -> Evaluation:
    """Evaluate generated ``samples`` against the ``test`` split (novelty against ``train``).

    ``property_settings``: what the property predictor is (name, units, validation MAE, ...),
    stored in the settings of ``wdist_prop`` under ``"predictor"``."""
    config = config or DNGConfig()
    samples, test = list(samples), list(test)
    if not samples:
        raise XtalgenError("no samples to evaluate")
    if not test:
        raise XtalgenError("the reference (test) split is empty")
    timer = _Timer()
    n = len(samples)
    jobs = dict(n_jobs=config.n_jobs, progress=config.progress)
    metrics: list[Metric] = []

    # -- validity ------------------------------------------------------------------------------
    with timer("validity"):
        bar = tqdm(samples, desc="validity", disable=not config.progress, leave=False)
        min_dist = np.array([min_distance(c) for c in bar])
        volumes = np.array([c.volume for c in samples])
        struct_valid = (min_dist >= MIN_DISTANCE) & (volumes >= MIN_VOLUME)
        comp_valid = np.array([smact_validity(c) for c in samples])
    with timer("fingerprints_samples"):
        gen_struct = structure_fingerprints(samples, **jobs)
        gen_comp = scale_composition(composition_fingerprints(samples))
    with timer("fingerprints_reference"):
        ref_struct = structure_fingerprints(test, cache=config.cache_reference, **jobs)
        ref_comp = scale_composition(composition_fingerprints(test))
    fp_ok = ~np.isnan(gen_struct).any(axis=1)
    valid = struct_valid & comp_valid & fp_ok
    vsettings = {"min_distance_A": MIN_DISTANCE, "min_volume_A3": MIN_VOLUME}
    metrics += [
        fraction("struct_valid", "Fraction of all samples whose periodic inter-site distances are "
                 ">= 0.5 A and volume >= 0.1 A^3.", struct_valid, settings=vsettings),
        fraction("comp_valid", "Fraction of all samples passing SMACT charge neutrality plus the "
                 "Pauling electronegativity test (gcd-reduced composition; single elements and "
                 "all-metal compositions pass).", comp_valid,
                 settings={"use_pauling_test": True, "include_alloys": True}),
        fraction("valid", "Fraction of all samples that are structurally and compositionally "
                 "valid and have a CrystalNN fingerprint.", valid, settings=vsettings),
    ]

    # -- coverage -----------------------------------------------------------------------------
    d_s, d_c = COVERAGE_CUTOFFS[config.eval_model]
    ref_ok = ~np.isnan(ref_struct).any(axis=1)
    if not fp_ok.any() or not ref_ok.any():
        raise XtalgenError("coverage needs CrystalNN fingerprints, and none could be computed for "
                           + ("the samples" if not fp_ok.any() else "the reference"))
    with timer("coverage"):
        cov = coverage(gen_struct, gen_comp, ref_struct[ref_ok], ref_comp[ref_ok], d_s, d_c, n)
    csettings = {
        "eval_model": config.eval_model, "struct_cutoff": d_s, "comp_cutoff": d_c,
        "struct_fingerprint": "matminer CrystalNNFingerprint 'ops', site mean",
        "struct_fingerprint_method": default_method(),
        "comp_fingerprint": "matminer ElementProperty 'magpie', CDVAE CompScaler",
        "reference_size": int(ref_ok.sum()), "reference_without_fingerprint": int((~ref_ok).sum()),
    }
    metrics += [
        Metric("cov_recall", "COV-R: fraction of test crystals with some sample within the "
               "structure cutoff and some (possibly other) sample within the composition cutoff.",
               cov.cov_recall, csettings, int(cov.recall_covered.sum()), cov.num_ref),
        Metric("cov_precision", "COV-P: fraction of all samples within both cutoffs of some test "
               "crystals (denominator: all samples, with or without fingerprint).",
               cov.cov_precision, csettings, int(cov.precision_covered.sum()), n,
               per_sample=cov.precision_covered),
        Metric("amsd_recall", "Mean over test crystals of the smallest structure-fingerprint "
               "distance to a sample.", cov.amsd_recall, csettings),
        Metric("amsd_precision", "Mean over samples (with fingerprint) of the smallest "
               "structure-fingerprint distance to a test crystal.", cov.amsd_precision, csettings),
        Metric("amcd_recall", "Mean over test crystals of the smallest scaled composition-"
               "fingerprint distance to a sample.", cov.amcd_recall, csettings),
        Metric("amcd_precision", "Mean over samples of the smallest scaled composition-"
               "fingerprint distance to a test crystal.", cov.amcd_precision, csettings),
    ]

    # -- distributions on a seeded subsample of valid samples -----------------------------------
    with timer("distributions"):
        sub = subsample_valid(valid, config.n_subsample, config.seed)
        in_sub = np.zeros(n, dtype=bool)
        in_sub[sub] = True
        gen_density, ref_density = densities(samples), densities(test)
        gen_nelem, ref_nelem = num_elements(samples), num_elements(test)
    note = None
    if len(sub) < config.n_subsample:
        note = f"only {len(sub)} valid samples; all of them used (the reference code raises)"
    dsettings = {"n_subsample": config.n_subsample, "n_used": len(sub), "seed": config.seed,
                 "reference_size": len(test)}
    metrics += [
        Metric("wdist_density", "Wasserstein distance between the densities (g/cm^3) of the "
               "valid subsample and of the test split.",
               wasserstein(gen_density[sub], ref_density), dsettings, note=note),
        Metric("wdist_num_elems", "Wasserstein distance between the numbers of distinct elements "
               "of the valid subsample and of the test split.",
               wasserstein(gen_nelem[sub], ref_nelem), dsettings, note=note),
    ]
    gen_prop = np.full(n, np.nan)
    if property_fn is None:
        metrics.append(Metric("wdist_prop", "Wasserstein distance of a predicted property "
                              "between the valid subsample and the test split.", None,
                              dsettings, note="skipped: no property predictor was given"))
    else:
        with timer("property"):
            gen_prop[sub] = np.asarray(property_fn([samples[i] for i in sub]), float)
            ref_prop = np.asarray(property_fn(test), float)
        metrics.append(Metric("wdist_prop", f"Wasserstein distance of the predicted "
                              f"{property_name} between the valid subsample and the test split.",
                              wasserstein(gen_prop[sub], ref_prop),
                              {**dsettings, "property": property_name,
                               **({"predictor": dict(property_settings)}
                                  if property_settings else {})}, note=note))
    sub_struct = gen_struct[sub][~np.isnan(gen_struct[sub]).any(axis=1)]
    metrics += [
        Metric("comp_div", "Mean pairwise distance of the scaled composition fingerprints in "
               "the valid subsample.", _mean_pdist(gen_comp[sub]), dsettings),
        Metric("struct_div", "Mean pairwise distance of the structure fingerprints in the valid "
               "subsample.", _mean_pdist(sub_struct), dsettings),
    ]

    # -- uniqueness and novelty ---------------------------------------------------------------
    msettings = matcher_settings(config.matcher)
    with timer("uniqueness"):
        unique = unique_mask(samples, preset=config.matcher, **jobs)
    metrics.append(fraction("unique", "Fraction of all samples that match no earlier sample "
                            "(greedy first occurrence, compared within the same reduced formula, "
                            "or chemical system when disordered).", unique, settings=msettings))
    novel = np.full(n, np.nan)
    if train is None:
        metrics += [Metric(name, desc, None, msettings, note="skipped: no training split given")
                    for name, desc in (("novel", "Fraction of samples matching no training "
                                        "crystal."), ("unique_novel", "Fraction of samples "
                                        "both unique and novel."))]
    else:
        with timer("novelty"):
            novel_flags = novel_mask(samples, list(train), preset=config.matcher, **jobs)
        novel = novel_flags.astype(float)
        tsettings = {**msettings, "train_size": len(train)}
        metrics += [
            fraction("novel", "Fraction of all samples matching no training crystal of the same "
                     "reduced formula.", novel_flags, settings=tsettings),
            fraction("unique_novel", "Fraction of all samples that are both unique and novel.",
                     unique & novel_flags, settings=tsettings),
        ]

    # -- symmetry -----------------------------------------------------------------------------
    with timer("symmetry"):
        bar = tqdm(samples, desc="space groups", disable=not config.progress, leave=False)
        gen_sg = np.array([space_group(c) for c in bar], dtype=int)
        ref_sg = space_groups(test)
        requested = requested_space_groups(samples)
    ssettings = {"symprec": 0.1, "angle_tolerance": 5.0, "library": "spglib"}
    metrics += [
        fraction("sg_above_p1", "Fraction of all samples whose detected space group is above P1.",
                 gen_sg > 1, settings=ssettings),
        Metric("sg_tvd", "Total-variation distance between the space-group histograms of the "
               "samples and of the test split (0 = identical, 1 = disjoint).",
               histogram_tvd(gen_sg, ref_sg), ssettings),
    ]
    has_request = requested > 0
    if has_request.any():
        metrics.append(fraction("sg_match_requested", "Among samples generated for a requested "
                                "space group, the fraction whose detected group equals it.",
                                gen_sg[has_request] == requested[has_request], settings=ssettings))

    table = pd.DataFrame({
        "index": np.arange(n),
        "material_id": [c.properties.get("material_id", "") for c in samples],
        "formula": [c.formula for c in samples],
        "num_sites": [c.num_sites for c in samples],
        "min_distance": min_dist,
        "volume": volumes,
        "struct_valid": struct_valid,
        "comp_valid": comp_valid,
        "fingerprint_ok": fp_ok,
        "valid": valid,
        "in_subsample": in_sub,
        "density": gen_density,
        "num_elems": gen_nelem.astype(int),
        "property": gen_prop,
        "cov_precision_covered": cov.precision_covered,
        "struct_fp_min_dist": cov.struct_min_dist,
        "comp_fp_min_dist": cov.comp_min_dist,
        "unique": unique,
        "novel": novel,
        "space_group": gen_sg,
        "space_group_requested": requested,
    })
    info = {
        "num_samples": n,
        "num_test": len(test),
        "num_train": None if train is None else len(train),
        "references": dict(reference_names or {}),
        "config": asdict(config),
        "timings_s": timer.times,
        "cpu_s": timer.cpu,
    }
    ref_values = {
        "density": ref_density,
        "num_elems": ref_nelem,
        "num_sites": np.array([c.num_sites for c in test], dtype=float),
        "space_group": ref_sg,
    }
    return Evaluation("dng", metrics, table, info, ref_values)


def _mean_pdist(x: np.ndarray) -> float | None:
    return float(pdist(x).mean()) if len(x) >= 2 else None
