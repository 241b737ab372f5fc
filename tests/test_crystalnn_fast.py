"""The fast CrystalNN "ops" fingerprint (xtalgen.metrics.crystalnn) equals matminer's.

Bundled data (MP-20 pilot_test, Perov-5 and Carbon-24 test) plus strained / shaken copies,
and odd cells that take the fallback path. The full-size comparison (500 structures) is
``benchmarks/bench_fingerprint.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from xtalgen.crystal import Crystal, perturb
from xtalgen.data import load_dataset
from xtalgen.metrics.coverage import coverage
from xtalgen.metrics.crystalnn import FastStats
from xtalgen.metrics.fingerprints import (
    composition_fingerprints,
    scale_composition,
    structure_fingerprint,
    structure_fingerprints,
)

ATOL = 1e-10  # float noise only; the reference itself is not more stable than this


def perturbed(crystals: list[Crystal], seed: int, noise: float = 0.02, strain: float = 0.03) -> list[Crystal]:
    """Copies with the lattice strained by up to ``strain`` and fractional coordinates shaken."""
    rng = np.random.default_rng(seed)
    return [perturb(c, rng, frac_noise=noise, strain=strain) for c in crystals]


SAMPLES = {  # dataset, split, rows taken, perturbed copies of the first rows
    "mp20": ("mp20", "pilot_test", slice(0, 6), 3),
    "perov5": ("perov5", "test", slice(0, 6), 3),
    "carbon24": ("carbon24", "test", slice(0, 3), 2),
}


@pytest.fixture(scope="module")
def pairs() -> dict[str, tuple[list[Crystal], np.ndarray, np.ndarray, FastStats]]:
    """Per data set: crystals, fast and matminer fingerprints, fast-path counters."""
    out = {}
    for key, (name, split, rows, n_shaken) in SAMPLES.items():
        data = load_dataset(name, split, progress=False)
        crystals = [data[i] for i in range(rows.start, rows.stop)]
        crystals += perturbed(crystals[:n_shaken], seed=len(key))
        stats = FastStats()
        fast = np.array([structure_fingerprint(c, "fast", stats) for c in crystals])
        ref = np.array([structure_fingerprint(c, "matminer") for c in crystals])
        out[key] = (crystals, fast, ref, stats)
    return out


@pytest.mark.parametrize("key", list(SAMPLES))
def test_fast_fingerprint_equals_matminer(pairs, key: str) -> None:
    crystals, fast, ref, stats = pairs[key]
    assert fast.shape == ref.shape == (len(crystals), 61)
    np.testing.assert_allclose(fast, ref, rtol=0, atol=ATOL)
    # the fast path itself produced these (no structure handed to matminer)
    assert stats.fallback_structures == 0, stats.reasons
    assert stats.sites == sum(c.num_sites for c in crystals)


def test_coverage_verdicts_are_the_same(pairs) -> None:
    crystals = [c for key in SAMPLES for c in pairs[key][0]]
    fast = np.concatenate([pairs[key][1] for key in SAMPLES])
    ref = np.concatenate([pairs[key][2] for key in SAMPLES])
    comp = scale_composition(composition_fingerprints(crystals))
    half = len(crystals) // 2
    results = [coverage(fp[:half], comp[:half], fp[half:], comp[half:], 0.4, 10.0) for fp in (fast, ref)]
    a, b = results
    assert (a.cov_recall, a.cov_precision) == (b.cov_recall, b.cov_precision)
    np.testing.assert_array_equal(a.precision_covered, b.precision_covered)
    np.testing.assert_array_equal(a.recall_covered, b.recall_covered)
    np.testing.assert_allclose(a.struct_min_dist, b.struct_min_dist, rtol=0, atol=1e-9)


ODD = {
    # one atom, fcc Cu primitive cell: the fast path handles it
    "one_atom": (Crystal([[0, 1.8, 1.8], [1.8, 0, 1.8], [1.8, 1.8, 0]], [[0, 0, 0]], [29]), False),
    # noble gases have no electronegativity (chemical weight 1)
    "noble_gas": (Crystal(np.eye(3) * 3.0, [[0, 0, 0], [0.5, 0.5, 0.5]], [2, 10]), False),
    # a lone atom in a 20 A box: no neighbour within 7 A, pymatgen widens its search
    "sparse": (Crystal(np.eye(3) * 20.0, [[0, 0, 0]], [29]), True),
    # two atoms on one spot
    "overlap": (Crystal(np.eye(3) * 4.0, [[0, 0, 0], [0, 0, 0], [0.5, 0.5, 0.5]], [11, 17, 17]), True),
    # a flat sheet of atoms: qhull fails on the search sphere, pymatgen widens it
    "flat": (Crystal(np.diag([3.0, 3.0, 30.0]), [[0, 0, 0]], [6]), True),
}


@pytest.mark.parametrize("key", list(ODD))
def test_odd_cells_match_through_fallback(key: str) -> None:
    crystal, falls_back = ODD[key]
    stats = FastStats()
    fast = structure_fingerprint(crystal, "fast", stats)
    ref = structure_fingerprint(crystal, "matminer")
    np.testing.assert_allclose(fast, ref, rtol=0, atol=ATOL)
    assert stats.fallback_structures == int(falls_back), stats.reasons


def test_matminer_failure_is_none_on_both_paths() -> None:
    disordered = Crystal(np.eye(3) * 4.0, [[0, 0, 0], [0.5, 0.5, 0.5]], [11, 17],
                         site_occupancies=[((11, 0.5), (19, 0.5)), None])
    assert structure_fingerprint(disordered, "matminer") is None
    stats = FastStats()
    assert structure_fingerprint(disordered, "fast", stats) is None
    assert stats.fallback_structures == 1
    rows = structure_fingerprints([disordered], n_jobs=1, progress=False, method="fast")
    assert rows.shape == (1, 61) and np.isnan(rows).all()


def test_method_is_checked_and_part_of_the_cache_key(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XTALGEN_CACHE", str(tmp_path))
    crystal = ODD["one_atom"][0]
    with pytest.raises(ValueError, match="fingerprint method"):
        structure_fingerprint(crystal, "fastest")
    for method in ("fast", "matminer"):
        structure_fingerprints([crystal], n_jobs=1, progress=False, cache=True, method=method)
    names = sorted(p.name for p in (tmp_path / "fingerprints").glob("*.npy"))
    assert len(names) == 2 and "-fast-" in names[0] and "-matminer-" in names[1]
    monkeypatch.setenv("XTALGEN_FINGERPRINT_METHOD", "fast")
    from xtalgen.metrics.fingerprints import default_method

    assert default_method() == "fast"


def test_bcc_follows_the_reference_order_of_tied_neighbours() -> None:
    # pilot_test rows whose CN-8 neighbours have equal weights, where the order-dependent "bcc"
    # OP changes when they swap: the shared tessellation orders them differently from pymatgen
    data = load_dataset("mp20", "pilot_test", progress=False)
    stats = FastStats()
    for row in (437, 575):
        fast = structure_fingerprint(data[row], "fast", stats)
        np.testing.assert_allclose(fast, structure_fingerprint(data[row], "matminer"), rtol=0, atol=ATOL)
    assert stats.fallback_structures == 0 and stats.reference_groups > 0


def _ideal_shapes() -> dict[int, list[np.ndarray]]:
    """Unit bond vectors of ideal polyhedra (collinear pairs, 90-degree angles: the edge cases)."""
    e = np.eye(3)
    cube = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]) / np.sqrt(3)
    cuboct = np.array([v for i in range(3) for v in
                       np.insert(np.array([[a, b] for a in (-1, 1) for b in (-1, 1)]), i, 0, axis=1)]) / np.sqrt(2)
    ang = np.arange(3) * 2 * np.pi / 3
    return {2: [np.array([e[0], -e[0]])],
            3: [np.column_stack([np.cos(ang), np.sin(ang), np.zeros(3)])],
            4: [cube[[0, 3, 5, 6]], np.array([e[0], -e[0], e[1], -e[1]])],
            6: [np.concatenate([e, -e])],
            8: [cube],
            12: [cuboct]}


def test_order_parameters_equal_pymatgen_on_random_and_ideal_environments() -> None:
    from xtalgen.metrics.crystalnn.fingerprint import _reference_ops, ops_preset
    from xtalgen.metrics.crystalnn.order_params import geometry, order_parameter, unit_bonds

    preset = ops_preset()
    rng = np.random.default_rng(7)
    ideal = _ideal_shapes()
    checked = 0
    for cn in range(1, 13):
        envs = [rng.normal(size=(cn, 3)) for _ in range(2)] + ideal.get(cn, [])
        for directions in envs:
            lengths = rng.uniform(1.8, 2.6, (len(directions), 1))
            nbrs = 1.5 + directions / np.linalg.norm(directions, axis=1, keepdims=True) * lengths
            center = np.full(3, 1.5)
            unit, dist = unit_bonds(center, nbrs)
            geo = geometry(unit[None], dist[None])
            expected = _reference_ops(center, nbrs, preset.ops[cn])
            for (_, kind, params, _), ref in zip(preset.ops[cn], expected):
                value, ambiguous = order_parameter(geo, kind, params)
                if not ambiguous[0]:
                    assert np.nan_to_num(value[0]) == pytest.approx(ref, abs=ATOL), (cn, kind)
                    checked += 1
    assert checked > 80
