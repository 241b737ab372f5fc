"""Matcher presets, the MatterGen disordered matcher, and the cached-reduction fast path."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.matching import (
    DisorderedStructureMatcher,
    can_substitute,
    csp_matcher,
    disorder_structure,
    get_matcher,
    matcher_settings,
    ordered_matcher,
    rmsd_matcher,
    substitution_cliques,
)
from xtalgen.metrics.fastmatch import PreparedMatcher
from xtalgen.metrics.presets import ANGLE_TOLERANCE, SYMPREC


def rocksalt_nacl(a: float = 5.64) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def cscl_type_nacl(a: float = 3.3) -> Structure:
    return Structure(Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def test_presets_have_the_published_tolerances() -> None:
    csp = csp_matcher()
    assert (csp.ltol, csp.stol, csp.angle_tol) == (0.3, 0.5, 10)
    assert not csp._supercell and not csp._subset and csp._primitive_cell and csp._scale
    ordered = ordered_matcher()
    assert (ordered.ltol, ordered.stol, ordered.angle_tol) == (0.2, 0.3, 5)
    rmsd = rmsd_matcher()
    assert (rmsd.ltol, rmsd.stol, rmsd.angle_tol, rmsd._scale, rmsd._supercell) == (0.5, 0.5, 10, False, True)
    assert matcher_settings("disordered")["comparator"] == "OrderDisorderElementComparator"
    assert (SYMPREC, ANGLE_TOLERANCE) == (0.1, 5.0)
    with pytest.raises(XtalgenError, match="unknown matcher preset"):
        get_matcher("loose")


@pytest.mark.parametrize("preset", ["csp", "ordered", "disordered"])
def test_polymorphs_do_not_match_but_a_strained_copy_does(preset: str) -> None:
    matcher = get_matcher(preset)
    rocksalt, cscl_type = rocksalt_nacl(), cscl_type_nacl()
    assert not matcher.fit(rocksalt, cscl_type)
    strained = rocksalt.copy()
    strained.apply_strain([0.02, 0.0, -0.01])
    strained.perturb(0.02, min_distance=0.0)
    assert matcher.fit(rocksalt, strained)


def test_hume_rothery_rule_and_cliques() -> None:
    from pymatgen.core import Element

    assert can_substitute(Element("Cu"), Element("Au"))
    assert not can_substitute(Element("Na"), Element("Cl"))  # electronegativity 0.93 vs 3.16
    cuau = Structure(Lattice.cubic(3.0), ["Cu", "Au"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    cliques = substitution_cliques(cuau)
    assert [sorted(el.symbol for el in c) for c in cliques] == [["Au", "Cu"]]
    mixed = disorder_structure(cuau, cliques)
    assert not mixed.is_ordered
    assert mixed[0].species.get_atomic_fraction("Cu") == pytest.approx(0.5)
    assert substitution_cliques(rocksalt_nacl()) == []


def test_disordered_matcher_matches_an_ordered_approximant_of_an_alloy() -> None:
    # CsCl-type CuAu versus a bcc cell with Cu/Au disorder on both sites
    ordered = Structure(Lattice.cubic(3.0), ["Cu", "Au"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    alloy = Structure(Lattice.cubic(3.0), [{"Cu": 0.5, "Au": 0.5}] * 2, [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert DisorderedStructureMatcher().fit(ordered, alloy)
    assert not ordered_matcher().fit(ordered, alloy)
    # different reduced formulas of two ordered structures never match
    other = Structure(Lattice.cubic(3.0), ["Cu", "Cu"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert not DisorderedStructureMatcher().fit(ordered, other)


def _pairs(n_base: int = 120) -> list[tuple[Structure, Structure]]:
    """Pairs from MP-20: (s, strained copy), (s, a heavily shaken copy), (s, same-formula other)."""
    from xtalgen.data import load_dataset

    crystals = list(load_dataset("mp20", "pilot_test", progress=False))[:n_base]
    rng = np.random.default_rng(0)
    pairs = []
    for c in crystals:
        s = c.to_pymatgen()
        a = s.copy()
        a.apply_strain(rng.uniform(-0.05, 0.05, 3).tolist())
        pairs.append((s, a))
        noisy = c.replace(frac_coords=c.frac_coords + rng.normal(0, 0.08, c.frac_coords.shape))
        pairs.append((s, noisy.to_pymatgen()))
    by_formula: dict[str, list[Structure]] = {}
    for c in load_dataset("mp20", "biternary_test", progress=False)[:3000]:
        by_formula.setdefault(c.formula, []).append(c.to_pymatgen())
    same = [g for g in by_formula.values() if len(g) > 1]
    pairs += [(g[0], g[1]) for g in same[:60]]
    return pairs


def test_fast_path_equals_pymatgen_on_hundreds_of_pairs() -> None:
    pairs = _pairs()
    assert len(pairs) >= 250
    csp, fast_csp = csp_matcher(), PreparedMatcher("csp")
    ordered, fast_ordered = ordered_matcher(), PreparedMatcher("ordered")
    n_match = 0
    for s1, s2 in pairs:
        a, b = fast_csp.prepare(s1), fast_csp.prepare(s2)
        plain = csp.get_rms_dist(s1, s2)
        fast = fast_csp.rms_dist(a, b)
        assert (plain is None) == (fast is None)
        if plain is not None:
            n_match += 1
            assert fast[0] == plain[0] and fast[1] == plain[1]
        a, b = fast_ordered.prepare(s1), fast_ordered.prepare(s2)
        assert fast_ordered.fit(a, b) == ordered.fit(s1, s2)
    assert 0 < n_match < len(pairs)  # both outcomes are exercised


def test_fast_disordered_path_equals_the_matcher() -> None:
    pairs = _pairs(25)
    matcher, fast = DisorderedStructureMatcher(), PreparedMatcher("disordered")
    results = [(fast.fit(fast.prepare(s1), fast.prepare(s2)), matcher.fit(s1, s2)) for s1, s2 in pairs]
    assert all(f == p for f, p in results)
    assert any(p for _, p in results) and not all(p for _, p in results)


def test_fast_path_accepts_crystals_round_trip(nacl: Crystal) -> None:
    fast = PreparedMatcher("csp")
    a = fast.prepare(nacl.to_pymatgen())
    assert fast.rms_dist(a, a)[0] == pytest.approx(0.0, abs=1e-8)
