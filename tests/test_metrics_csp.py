"""CSP match rate / RMSE: association, gates, @k, corrected metrics, equality with pymatgen."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.matching import csp_matcher
from xtalgen.metrics.csp import CSPConfig, associate, evaluate_csp

CFG = dict(n_jobs=1, progress=False)


def tag(crystal: Crystal, target: int, rank: int) -> Crystal:
    return crystal.with_properties(target_index=target, sample_index=rank)


def cscl_type_nacl() -> Crystal:
    return Crystal.from_pymatgen(Structure(Lattice.cubic(3.3), ["Na", "Cl"], [[0, 0, 0], [0.5] * 3]))


def strained(crystal: Crystal, eps: float) -> Crystal:
    return crystal.replace(lattice=crystal.lattice @ np.diag([1 + eps, 1, 1 - eps]))


def test_association_by_material_id_and_sample_index(nacl: Crystal, si: Crystal) -> None:
    reference = [nacl.with_properties(material_id="mp-1"), si.with_properties(material_id="mp-2")]
    samples = [
        si.with_properties(material_id="mp-2", sample_index=1),
        si.with_properties(material_id="mp-2", sample_index=0),
        nacl.with_properties(target_index=0),
    ]
    assert associate(samples, reference) == [[2], [1, 0]]
    with pytest.raises(XtalgenError, match="neither"):
        associate([Crystal(nacl.lattice, nacl.frac_coords, nacl.species)], reference)
    with pytest.raises(XtalgenError, match="not in the reference"):
        associate([nacl.with_properties(material_id="mp-9")], reference)


def test_self_prediction_matches_with_rmse_zero(nacl: Crystal, si: Crystal, srtio3: Crystal) -> None:
    reference = [nacl, si, srtio3]
    samples = [tag(c, i, 0) for i, c in enumerate(reference)]
    result = evaluate_csp(samples, reference, config=CSPConfig(k=5, **CFG))
    assert result["match_rate@1"].value == 1.0
    assert result["rmse@1"].value == pytest.approx(0.0, abs=1e-8)
    assert result["match_rate@5"].value == 1.0


def test_polymorph_does_not_match_and_k_samples_take_the_best(nacl: Crystal, si: Crystal) -> None:
    reference = [nacl, si]
    samples = [
        tag(cscl_type_nacl(), 0, 0),       # wrong polymorph first
        tag(strained(nacl, 0.01), 0, 1),   # right one second
        tag(strained(si, 0.02), 1, 0),
        tag(si, 1, 1),                     # an exact copy: the minimum RMSE is 0
    ]
    result = evaluate_csp(samples, reference, config=CSPConfig(k=2, **CFG))
    assert result["match_rate@1"].value == 0.5  # only Si's first sample matches
    assert result["match_rate@2"].value == 1.0
    assert result["rmse@2"].value == pytest.approx(0.0, abs=1e-8)
    assert result["rmse@1"].value > 0  # strained Si
    table = result.table
    assert not table.loc[0, "matched"] and table.loc[1, "matched"]
    k1 = evaluate_csp(samples, reference, config=CSPConfig(k=1, **CFG))
    assert k1["match_rate@1"].value == k1["match_rate@1"].value == 0.5


def test_validity_gates(nacl: Crystal) -> None:
    # ground truth failing SMACT: NaCl2 in a rock-salt-like cell with an extra Cl
    bad_gt = Crystal(nacl.lattice, np.vstack([nacl.frac_coords, [[0.25, 0.25, 0.25]]]),
                     [*nacl.species.tolist(), 17])
    samples = [tag(bad_gt, 0, 0)]
    strict = evaluate_csp(samples, [bad_gt], config=CSPConfig(gate="pred_and_gt", k=1, **CFG))
    pred_only = evaluate_csp(samples, [bad_gt], config=CSPConfig(gate="pred", k=1, **CFG))
    off = evaluate_csp(samples, [bad_gt], config=CSPConfig(gate="none", k=1, **CFG))
    assert strict["match_rate@1"].value == 0.0  # the gt is invalid
    assert pred_only["match_rate@1"].value == 0.0  # the prediction (same crystal) is invalid too
    assert off["match_rate@1"].value == 1.0
    with pytest.raises(XtalgenError, match="gate"):
        CSPConfig(gate="both")


def test_corrected_metrics_penalise_misses_and_pool_polymorphs(nacl: Crystal) -> None:
    cscl_nacl = cscl_type_nacl()
    # two test polymorphs of NaCl; both predictions are rock salt (right for target 0 only)
    reference = [nacl, cscl_nacl]
    samples = [tag(strained(nacl, 0.01), 0, 0), tag(nacl, 1, 0)]
    result = evaluate_csp(samples, reference, config=CSPConfig(k=1, corrected=True, **CFG))
    r = result["rmse@1"].value
    assert result["match_rate@1"].value == 0.5
    assert result["cRMSE@1"].value == pytest.approx((r + 0.5) / 2)
    # METRe pools by composition with counts: rock salt NaCl (8 sites) and CsCl-type (2) differ
    assert result["METRe@1"].value == 0.5
    # same composition Na4Cl4: target 1's rock-salt neighbour matches it through the pool
    supercell = Structure(Lattice.cubic(3.3), ["Na", "Cl"], [[0, 0, 0], [0.5] * 3])
    supercell.make_supercell([2, 2, 1])
    wrong = Crystal.from_pymatgen(supercell)
    reference2 = [nacl, strained(nacl, 0.02)]
    samples2 = [tag(nacl, 0, 0), tag(wrong, 1, 0)]
    result2 = evaluate_csp(samples2, reference2, config=CSPConfig(k=1, corrected=True, **CFG))
    assert result2["match_rate@1"].value == 0.5
    assert result2["METRe@1"].value == 1.0


def test_rms_equals_plain_get_rms_dist_on_mp20() -> None:
    from xtalgen.data import load_dataset

    reference = list(load_dataset("mp20", "pilot_test", progress=False))[:120]
    rng = np.random.default_rng(0)
    samples = []
    for i, c in enumerate(reference):
        noisy = c.replace(lattice=c.lattice * rng.uniform(0.97, 1.03),
                          frac_coords=c.frac_coords + rng.normal(0, 0.04, c.frac_coords.shape))
        samples.append(tag(noisy, i, 0))
    samples.append(tag(reference[1], 0, 1))  # a different structure as a second sample
    result = evaluate_csp(samples, reference, config=CSPConfig(k=2, gate="none", n_jobs=2, progress=False))
    matcher = csp_matcher()
    table = result.table
    for row in table.itertuples():
        plain = matcher.get_rms_dist(samples[row.index].to_pymatgen(),
                                     reference[row.target_index].to_pymatgen())
        if plain is None:
            assert np.isnan(row.rms_dist)
        else:
            assert row.rms_dist == plain[0]
    assert 0 < table["matched"].sum() < len(table)
