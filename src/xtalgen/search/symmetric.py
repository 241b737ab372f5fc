"""Random crystals that respect space-group symmetry and Wyckoff multiplicities (pyxtal).

Priors: the cell volume is pyxtal's estimate from atomic volumes times ``volume_factor``; atoms
are kept at least ``distance_factor`` x pyxtal's "atomic" tolerance matrix apart.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from xtalgen.crystal import Crystal

__all__ = ["compatible_spacegroups", "pick_spacegroup", "random_symmetric_crystal"]


@functools.cache
def _wyckoff_bounds(spacegroup: int) -> tuple[list[int], list[int | None]]:
    """pyxtal's (distinct Wyckoff multiplicities, max uses of each; None = unlimited)."""
    from pyxtal.symmetry import Group

    return Group(spacegroup)._get_base_and_upper_bounds()


@functools.lru_cache(maxsize=1024)
def compatible_spacegroups(counts: tuple[int, ...]) -> tuple[int, ...]:
    """Space groups (1-230) whose Wyckoff multiplicities can hold ``counts`` atoms per species
    (pyxtal's ``Group.check_compatible``, with the per-group tables cached per process)."""
    from pyxtal.util import get_wyc_from_comp

    out = []
    for sg in range(1, 231):
        base, upper = _wyckoff_bounds(sg)
        try:
            ok = len(get_wyc_from_comp(list(counts), base, upper, max_wyc=1)) > 0
        except Exception:
            ok = False
        if ok:
            out.append(sg)
    return tuple(out)


def pick_spacegroup(
    counts: Sequence[int],
    rng: np.random.Generator,
    allowed: Sequence[int] | None = None,
    weights: Mapping[int, float] | None = None,
) -> int | None:
    """A random space group compatible with ``counts``; None when there is none.

    ``allowed`` restricts the choice; ``weights`` (space group -> weight) gives a prior,
    e.g. space-group frequencies of a training set (uniform otherwise; groups missing from
    ``weights`` share at most 1% of the probability, so none is impossible).
    """
    options = compatible_spacegroups(tuple(int(c) for c in counts))
    if allowed is not None:
        allowed_set = {int(a) for a in allowed}
        options = tuple(sg for sg in options if sg in allowed_set)
    if not options:
        return None
    if weights:
        # groups absent from the prior share at most 1% of the probability, so none is impossible
        known = sum(max(float(weights.get(sg, 0.0)), 0.0) for sg in options)
        floor = 0.01 * (known or 1.0) / len(options)
        p = np.array([max(float(weights.get(sg, 0.0)), floor) for sg in options])
        return int(rng.choice(options, p=p / p.sum()))
    return int(rng.choice(options))


_TOLERANCES: dict[float, Any] = {}


def _tolerance(distance_factor: float) -> Any:
    if distance_factor not in _TOLERANCES:
        from pyxtal.tolerance import Tol_matrix

        _TOLERANCES[distance_factor] = Tol_matrix(prototype="atomic", factor=distance_factor)
    return _TOLERANCES[distance_factor]


def random_symmetric_crystal(
    symbols: Sequence[str],
    counts: Sequence[int],
    spacegroup: int,
    rng: np.random.Generator,
    *,
    volume_factor: float = 1.1,
    distance_factor: float = 1.0,
    max_attempts: int = 5,
) -> Crystal | None:
    """One random crystal in ``spacegroup`` with ``counts[i]`` atoms of ``symbols[i]``.

    Returns None when pyxtal cannot place the atoms in ``max_attempts`` tries.
    """
    from pyxtal import pyxtal

    for _ in range(max_attempts):
        xtal = pyxtal()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                xtal.from_random(
                    3,
                    int(spacegroup),
                    list(symbols),
                    [int(c) for c in counts],
                    factor=volume_factor,
                    random_state=rng,
                    tm=_tolerance(distance_factor),
                )
        except Exception:
            continue
        if not xtal.valid:
            continue
        try:
            return Crystal.from_pymatgen(xtal.to_pymatgen())
        except Exception:
            continue
    return None
