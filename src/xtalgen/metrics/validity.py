"""Structural and compositional validity (CDVAE protocol, spec B.2-B.3).

* Structural: every periodic minimum-image distance between two different sites is at least
  0.5 angstrom and the cell volume is at least 0.1 cubic angstrom (a one-site cell is valid
  unless its volume is below 0.1).
* Compositional: SMACT charge neutrality plus the Pauling electronegativity test on the
  gcd-reduced composition, with SMACT's default oxidation-state lists; a single element and an
  all-metal composition (``smact.metals``) are valid.

The SMACT test enumerates ``itertools.product`` of oxidation states exactly as the reference
code does, but vectorised: charge neutrality is ``sum(ox_i * c_i) == 0`` (what
``smact.neutral_ratios`` checks for one fixed stoichiometry whose gcd is 1), and only the
neutral combinations go through ``smact.screening.pauling_test``. Results are cached per
composition. An element without an oxidation-state list in SMACT has no combination, so a
multi-element composition containing it is invalid unless all elements are metals. As in CDVAE
and MatterGen (default), there is no cap on the number of combinations (DiffCSP returns False
above 1e7).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np

from xtalgen.crystal import Crystal, element_symbol

__all__ = [
    "MAX_OX_COMBINATIONS",
    "MIN_DISTANCE",
    "MIN_VOLUME",
    "is_charge_neutral",
    "min_distance",
    "smact_composition_valid",
    "smact_validity",
    "structure_validity",
]

MIN_DISTANCE = 0.5
"""Smallest allowed distance between two sites, angstrom."""

MIN_VOLUME = 0.1
"""Smallest allowed cell volume, cubic angstrom."""

MAX_OX_COMBINATIONS = 10**7
"""Bound on the oxidation-state combinations searched by the SMACT check (DiffCSP's guard)."""

_CHUNK = 1 << 18  # oxidation-state combinations per vectorised block


def min_distance(crystal: Crystal) -> float:
    """Smallest periodic minimum-image distance between two different sites (angstrom).

    ``inf`` for a one-site cell. Uses pymatgen's ``Structure.distance_matrix`` as the
    reference implementation does.
    """
    if crystal.num_sites < 2:
        return math.inf
    dist = np.array(crystal.to_pymatgen().distance_matrix, dtype=float)
    np.fill_diagonal(dist, np.inf)
    return float(dist.min())


def structure_validity(crystal: Crystal, cutoff: float = MIN_DISTANCE) -> bool:
    """True when all inter-site distances are >= ``cutoff`` and the volume >= 0.1 A^3."""
    return bool(min_distance(crystal) >= cutoff and crystal.volume >= MIN_VOLUME)


def _reduced_counts(crystal: Crystal) -> tuple[tuple[int, ...], tuple[int, ...]]:
    zs, counts = np.unique(crystal.species, return_counts=True)
    g = math.gcd(*(int(c) for c in counts))
    return tuple(int(z) for z in zs), tuple(int(c) // g for c in counts)


def smact_validity(crystal: Crystal, *, use_pauling_test: bool = True, include_alloys: bool = True) -> bool:
    """SMACT charge-neutrality (+ Pauling) validity of the crystal's composition."""
    zs, counts = _reduced_counts(crystal)
    return _smact_valid(zs, counts, use_pauling_test, include_alloys)


@lru_cache(maxsize=65536)
def _smact_valid(
    zs: tuple[int, ...], counts: tuple[int, ...], use_pauling_test: bool, include_alloys: bool
) -> bool:
    symbols = tuple(element_symbol(z) for z in zs)
    return smact_composition_valid(
        symbols, counts, use_pauling_test=use_pauling_test, include_alloys=include_alloys
    )


def is_charge_neutral(ox_states: Sequence[int], counts: Sequence[int]) -> bool:
    """``sum(ox_i * c_i) == 0``: one oxidation-state assignment balances the composition."""
    return int(np.dot(np.asarray(ox_states, np.int64), np.asarray(counts, np.int64))) == 0


def smact_composition_valid(
    symbols: Sequence[str],
    counts: Sequence[int],
    *,
    use_pauling_test: bool = True,
    include_alloys: bool = True,
    oxidation_states: Mapping[str, Sequence[int]] | None = None,
    max_combinations: int | None = MAX_OX_COMBINATIONS,
) -> bool:
    """SMACT validity of a composition given by element symbols and gcd-reduced counts.

    ``oxidation_states`` overrides SMACT's default lists for some elements (for checks by
    hand, e.g. ``{"Cl": [1]}``); the published metric never sets it. A composition with more
    than ``max_combinations`` oxidation-state combinations is invalid without the search, as
    in DiffCSP's code (1e7; CDVAE's loop has no bound and does not finish on compositions of
    ten or more elements, which untrained models produce); None: no bound.
    """
    import smact
    from smact.screening import pauling_test

    symbols = tuple(symbols)
    if len(set(symbols)) == 1:
        return True
    if include_alloys and all(s in smact.metals for s in symbols):
        return True
    try:
        space = smact.element_dictionary(symbols)
    except (KeyError, NameError):  # element unknown to SMACT
        return False
    elements = [space[s] for s in symbols]
    electronegs = [e.pauling_eneg for e in elements]
    overrides = dict(oxidation_states or {})
    ox_lists = [list(overrides.get(s, e.oxidation_states or ())) for s, e in zip(symbols, elements)]
    if any(len(ox) == 0 for ox in ox_lists):
        return False
    if max_combinations is not None and math.prod(len(ox) for ox in ox_lists) > max_combinations:
        return False
    stoich = np.array(counts, dtype=np.int64)
    for block in _blocks(ox_lists):
        neutral = block[(block * stoich).sum(axis=1) == 0]
        for ox_states in neutral:
            if not use_pauling_test:
                return True
            try:
                ok = pauling_test(tuple(int(o) for o in ox_states), electronegs)
            except TypeError:  # missing electronegativity counts as passing (reference code)
                ok = True
            if ok:
                return True
    return False


def _blocks(ox_lists: list[list[int]]):
    """Rows of ``itertools.product(*ox_lists)`` as int arrays, in product order, in blocks."""
    product = itertools.product(*ox_lists)
    width = len(ox_lists)
    while True:
        rows = list(itertools.islice(product, _CHUNK))
        if not rows:
            return
        yield np.array(rows, dtype=np.int64).reshape(-1, width)
