"""Uniqueness and novelty: hand cases, grouping, and equality with a plain greedy loop."""

from __future__ import annotations

import numpy as np
import pytest

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.matching import get_matcher
from xtalgen.metrics.novelty import group_keys, novel_mask, unique_mask


def shaken(crystal: Crystal, seed: int, scale: float = 0.01) -> Crystal:
    rng = np.random.default_rng(seed)
    return crystal.replace(
        lattice=crystal.lattice * (1 + rng.uniform(-0.01, 0.01)),
        frac_coords=crystal.frac_coords + rng.normal(0, scale, crystal.frac_coords.shape),
    )


def test_unique_keeps_first_occurrence(nacl: Crystal, cscl: Crystal, si: Crystal) -> None:
    crystals = [nacl, si, shaken(nacl, 1), cscl, shaken(si, 2), shaken(nacl, 3)]
    mask = unique_mask(crystals, preset="ordered", n_jobs=1, progress=False)
    assert mask.tolist() == [True, True, False, True, False, False]


def test_novel_against_reference(nacl: Crystal, cscl: Crystal, si: Crystal, srtio3: Crystal) -> None:
    mask = novel_mask([shaken(nacl, 0), srtio3, si], [nacl, cscl, si], preset="ordered",
                      n_jobs=1, progress=False)
    assert mask.tolist() == [False, True, False]


def test_grouping_is_formula_when_ordered_else_chemsys(nacl: Crystal, disordered_alloy: Crystal) -> None:
    assert group_keys([nacl], "formula") == ["NaCl"]
    assert group_keys([nacl], "chemsys") == ["Cl-Na"]
    # a disordered crystal switches the whole comparison to chemical systems: no error, and a
    # crystal is always novel against an empty group
    mask = novel_mask([disordered_alloy], [nacl], preset="disordered", n_jobs=1, progress=False)
    assert mask.tolist() == [True]
    with pytest.raises(XtalgenError, match="group_by"):
        unique_mask([nacl], group_by="spacegroup")
    with pytest.raises(XtalgenError, match="preset"):
        unique_mask([nacl], preset="nope")


def _plain_unique(crystals: list[Crystal], preset: str) -> list[bool]:
    matcher = get_matcher(preset)
    kept: dict[str, list] = {}
    out = []
    for c in crystals:
        s = c.to_pymatgen()
        group = kept.setdefault(c.formula, [])
        unique = not any(matcher.fit(s, other) for other in group)
        if unique:
            group.append(s)
        out.append(unique)
    return out


def _plain_novel(crystals: list[Crystal], reference: list[Crystal], preset: str) -> list[bool]:
    matcher = get_matcher(preset)
    groups: dict[str, list] = {}
    for r in reference:
        groups.setdefault(r.formula, []).append(r.to_pymatgen())
    return [not any(matcher.fit(c.to_pymatgen(), r) for r in groups.get(c.formula, []))
            for c in crystals]


def test_parallel_fast_path_equals_plain_loop_on_mp20() -> None:
    from xtalgen.data import load_dataset

    base = list(load_dataset("mp20", "biternary_test", progress=False))[:200]
    # duplicates (shaken copies) and same-formula polymorphs interleaved
    crystals = base[:150] + [shaken(c, i) for i, c in enumerate(base[:40])]
    reference = base[100:200]
    for preset in ("ordered", "csp"):
        fast_unique = unique_mask(crystals, preset=preset, n_jobs=2, progress=False)
        assert fast_unique.tolist() == _plain_unique(crystals, preset)
        fast_novel = novel_mask(crystals, reference, preset=preset, n_jobs=2, progress=False)
        assert fast_novel.tolist() == _plain_novel(crystals, reference, preset)
    assert 0 < fast_unique.sum() < len(crystals)
    assert 0 < fast_novel.sum() < len(crystals)
