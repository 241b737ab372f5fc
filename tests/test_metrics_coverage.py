"""Coverage, fingerprints, distribution distances and space-group statistics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from xtalgen.crystal import Crystal
from xtalgen.metrics.coverage import coverage, min_distances
from xtalgen.metrics.distributions import densities, num_elements, subsample_valid, wasserstein
from xtalgen.metrics.fingerprints import (
    composition_fingerprints,
    scale_composition,
    structure_fingerprint,
    structure_fingerprints,
)
from xtalgen.metrics.symmetry import histogram_tvd, space_group, space_groups


def test_coverage_hand_case() -> None:
    # 1-D fingerprints: generated at 0, 1, 5 (+ one without fingerprint); reference at 0.1, 3
    gen_s = np.array([[0.0], [1.0], [5.0], [np.nan]])
    gen_c = np.array([[0.0], [0.0], [0.0], [0.0]])
    ref_s = np.array([[0.1], [3.0]])
    ref_c = np.array([[0.0], [20.0]])
    res = coverage(gen_s, gen_c, ref_s, ref_c, struct_cutoff=0.4, comp_cutoff=10.0)
    # recall: ref 0.1 is covered (0 within 0.4, composition 0 within 10); ref 3 is not
    assert res.cov_recall == 0.5
    # precision: only the sample at 0 is close to a reference; denominator counts all 4 samples
    assert res.cov_precision == 0.25
    assert res.precision_covered.tolist() == [True, False, False, False]
    assert res.num_gen_with_fp == 3
    assert res.amsd_recall == pytest.approx((0.1 + 2.0) / 2)
    assert res.amsd_precision == pytest.approx((0.1 + 0.9 + 2.0) / 3)
    assert np.isnan(res.struct_min_dist[3])


def test_recall_minima_are_independent() -> None:
    # sample A is close in structure only, sample B in composition only: COV-R still counts it
    res = coverage(np.array([[0.0], [9.0]]), np.array([[50.0], [0.0]]),
                   np.array([[0.0]]), np.array([[0.0]]), 0.4, 10.0)
    assert res.cov_recall == 1.0 and res.cov_precision == 0.0


def test_blockwise_minima_equal_full_cdist() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2500, 61)), rng.normal(size=(700, 61))
    rows, cols = min_distances(a, b)
    full = cdist(a, b)
    assert np.array_equal(rows, full.min(axis=1)) and np.array_equal(cols, full.min(axis=0))


def test_structure_fingerprint_matches_matminer(nacl: Crystal, si: Crystal, cscl: Crystal) -> None:
    from matminer.featurizers.site import CrystalNNFingerprint

    featurizer = CrystalNNFingerprint.from_preset("ops")
    crystals = [nacl, si, cscl]
    fps = structure_fingerprints(crystals, n_jobs=1, progress=False)
    for crystal, fp in zip(crystals, fps):
        s = crystal.to_pymatgen()
        expected = np.mean([featurizer.featurize(s, i) for i in range(len(s))], axis=0)
        assert fp.shape == (61,)
        np.testing.assert_allclose(fp, expected, rtol=0, atol=1e-12)  # fast path: float noise only
    # rock salt: every site is octahedral, CN 6 with weight 1
    labels = featurizer.feature_labels()
    fp = structure_fingerprint(nacl)
    assert fp[labels.index("wt CN_6")] == pytest.approx(1.0)
    assert fp[labels.index("octahedral CN_6")] == pytest.approx(1.0, abs=1e-3)


def test_composition_fingerprint_is_scaled_with_cdvae_constants(nacl: Crystal) -> None:
    raw = composition_fingerprints([nacl])
    assert raw.shape == (1, 132)
    scaled = scale_composition(raw)
    assert not np.isnan(scaled).any()
    scaled_nan = scale_composition(np.full((1, 132), np.nan))
    assert (scaled_nan == 0).all()  # replace_nan_token = 0


def test_distribution_helpers(nacl: Crystal, si: Crystal) -> None:
    assert densities([nacl])[0] == pytest.approx(nacl.to_pymatgen().density)
    assert num_elements([nacl, si]).tolist() == [2.0, 1.0]
    assert wasserstein(np.array([0.0, 1.0]), np.array([1.0, 2.0])) == pytest.approx(1.0)
    valid = np.array([True, False] * 50)
    a, b = subsample_valid(valid, 10, seed=3), subsample_valid(valid, 10, seed=3)
    assert np.array_equal(a, b) and len(a) == 10 and valid[a].all()
    assert len(subsample_valid(valid, 1000, seed=3)) == 50


def test_space_groups(nacl: Crystal, si: Crystal, cscl: Crystal) -> None:
    assert space_groups([nacl, si, cscl]).tolist() == [225, 227, 221]
    rng = np.random.default_rng(1)
    p1 = Crystal(np.diag([4.1, 5.3, 6.7]) + rng.normal(0, 0.3, (3, 3)), rng.random((5, 3)), [8, 14, 26, 11, 3])
    assert space_group(p1) == 1
    assert histogram_tvd(np.array([1, 1]), np.array([1, 1])) == 0.0
    assert histogram_tvd(np.array([1, 2]), np.array([3, 3])) == 1.0
