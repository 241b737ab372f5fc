"""Fast CrystalNN "ops" site fingerprints, equal to matminer's ``CrystalNNFingerprint`` up to float noise.

Layout and parameters are read from ``CrystalNNFingerprint.from_preset("ops")`` itself: for CN
1-24 the CN probability "wt", and for CN 1-12 its motif OPs, each multiplied by "wt" (0 where
the OP is undefined). Neighbours come from :mod:`.neighbors`, OPs from :mod:`.order_params`,
batched over all sites of a structure that share a CN. Sites whose OP inputs sit on a step of
the reference formulas are recomputed with pymatgen's ``LocalStructOrderParams`` on the same
(bit-identical) coordinates; structures the fast path cannot reproduce raise ``Unsupported``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from xtalgen.metrics.crystalnn.neighbors import Unsupported, structure_neighbours
from xtalgen.metrics.crystalnn.order_params import (
    bcc_pair_terms,
    geometry,
    order_parameter,
    unit_bonds,
)

__all__ = ["FastStats", "Preset", "ops_preset", "site_fingerprints"]

# "bcc" is the one OP of the preset not symmetric in the neighbours (pairs j < k only): where the
# reference orders near-equal weights by float noise and swapping them changes it, take its order
ORDER_TOL = 1e-12


@dataclass(frozen=True)
class Preset:
    """Column layout of the "ops" preset: ``wt_col[cn]``, and per CN a list of (column, type,
    parameters, pymatgen OP object) for the motif OPs."""

    width: int
    max_cn: int
    wt_col: dict[int, int]
    ops: dict[int, list[tuple[int, str, dict | None, object]]]


@dataclass
class FastStats:
    """Counters over calls: sites done, (site, CN) groups whose OPs went to pymatgen's code,
    structures that went wholly to matminer (with the reasons)."""

    sites: int = 0
    reference_groups: int = 0
    fallback_structures: int = 0
    reasons: list[str] = field(default_factory=list)


@cache
def ops_preset() -> Preset:
    """The layout and OP parameters of matminer's ``CrystalNNFingerprint.from_preset("ops")``."""
    from matminer.featurizers.site import CrystalNNFingerprint

    featurizer = CrystalNNFingerprint.from_preset("ops")
    cnn = featurizer.cnn
    if (cnn.weighted_cn, cnn.cation_anion, tuple(cnn.distance_cutoffs), cnn.x_diff_weight,
            cnn.porous_adjustment, cnn.search_cutoff) != (False, False, (0.5, 1), 3.0, True, 7):
        raise RuntimeError("matminer's CrystalNN defaults changed; the fast path assumes the old ones")
    wt_col: dict[int, int] = {}
    ops: dict[int, list] = {}
    col = 0
    max_cn = max(featurizer.op_types)
    for cn in range(1, max_cn + 1):
        ops[cn] = []
        for op in featurizer.ops.get(cn, []):
            if op == "wt":
                wt_col[cn] = col
            else:
                kind = op.get_type(0)
                params = op.get_parameters(0)
                ops[cn].append((col, kind, None if params is None else dict(params), op))
            col += 1
    return Preset(col, max_cn, wt_col, ops)


class _Point:
    """Stand-in for a pymatgen site: the reference OP code only reads ``coords``."""

    __slots__ = ("coords",)

    def __init__(self, coords: np.ndarray) -> None:
        self.coords = coords


def _reference_ops(center: np.ndarray, nbrs: np.ndarray, entries: list) -> list[float]:
    points = [_Point(center)] + [_Point(c) for c in nbrs]
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _, _, _, op in entries:
            value = op.get_order_parameters(points, 0, indices_neighs=list(range(1, len(points))))[0]
            out.append(float(value or 0))
    return out


def _order_matters(entries: list, ties: np.ndarray | None, unit: np.ndarray, dist: np.ndarray) -> bool:
    """Whether an order-dependent OP changes when near-tied neighbours swap places."""
    if ties is None:
        return False
    same = (ties[:, None] == ties[None, :]) & ~np.eye(len(ties), dtype=bool)
    for _, kind, params, _ in entries:
        if kind == "bcc":
            terms = bcc_pair_terms(geometry(unit[None], dist[None]), params)[0]
            if np.any(np.abs(terms - terms.T)[same] > ORDER_TOL):
                return True
    return False


def _reference_order_ops(structure, n: int, cn: int, entries: list) -> list[float]:
    """OPs of site ``n`` with the reference's own neighbour order (pymatgen's CrystalNN)."""
    from pymatgen.analysis.local_env import CrystalNN

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = CrystalNN().get_nn_data(structure, n).cn_nninfo[cn]
    return _reference_ops(structure[n].coords, np.array([e["site"].coords for e in info]), entries)


def _site_constants(structure) -> tuple[np.ndarray, np.ndarray]:
    """Per site: Pauling electronegativity (NaN if unknown) and covalent (else atomic) radius, Å."""
    from pymatgen.core.local_env import _get_default_radius

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x = np.array([float(site.specie.X) for site in structure])
        r = np.array([float(_get_default_radius(site)) for site in structure])
    return x, r


def site_fingerprints(structure, stats: FastStats | None = None, shared: bool = True) -> np.ndarray:
    """(n_sites, 61) CrystalNN "ops" fingerprints of an ordered pymatgen ``Structure``.

    Raises ``Unsupported`` where the fast path does not reproduce the reference. ``shared``:
    one Voronoi tessellation per structure where exact (see :mod:`.neighbors`).
    """
    if not structure.is_ordered:
        raise Unsupported("disordered structure")
    preset = ops_preset()
    x, r = _site_constants(structure)
    rows = np.zeros((len(structure), preset.width))
    centers, neighbours = [], []
    groups: dict[int, list[tuple[int, float, np.ndarray, np.ndarray]]] = {}
    for n, nbrs in enumerate(structure_neighbours(structure, x, r, shared=shared)):
        centers.append(structure[n].coords)
        neighbours.append(nbrs.coords)
        unit, dist = unit_bonds(centers[n], nbrs.coords) if len(nbrs.coords) else (None, None)
        for cn, wt in nbrs.cn_weights.items():
            if not (1 <= cn <= preset.max_cn):
                continue
            rows[n, preset.wt_col[cn]] = wt
            if wt == 0 or not preset.ops[cn]:
                continue
            if _order_matters(preset.ops[cn], nbrs.tie_groups(cn), unit[:cn], dist[:cn]):
                rows[n, [e[0] for e in preset.ops[cn]]] = wt * np.asarray(
                    _reference_order_ops(structure, n, cn, preset.ops[cn]))
                if stats is not None:
                    stats.reference_groups += 1
                continue
            groups.setdefault(cn, []).append((n, wt, unit[:cn], dist[:cn]))
    for cn, members in groups.items():
        entries = preset.ops[cn]
        sites = np.array([m[0] for m in members])
        wts = np.array([m[1] for m in members])
        geo = geometry(np.stack([m[2] for m in members]), np.stack([m[3] for m in members]))
        ambiguous = np.zeros(len(members), bool)
        for col, kind, params, _ in entries:
            values, amb = order_parameter(geo, kind, params)
            rows[sites, col] = wts * np.nan_to_num(values, nan=0.0)
            ambiguous |= amb
        for b in np.flatnonzero(ambiguous).tolist():
            ref = _reference_ops(centers[sites[b]], neighbours[sites[b]][:cn], entries)
            rows[sites[b], [e[0] for e in entries]] = wts[b] * np.asarray(ref)
            if stats is not None:
                stats.reference_groups += 1
    if stats is not None:
        stats.sites += len(structure)
    return rows
