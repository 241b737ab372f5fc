"""Symmetry-distinct point defects of a host crystal, each placed in a supercell.

Vacancies, substitutions and interstitials come from pymatgen-analysis-defects' generators
(``VacancyGenerator``, ``SubstitutionGenerator``, ``VoronoiInterstitialGenerator``): one defect
per symmetry-distinct site of the host. Substitutions are written ``{host element: dopant}``:
``{"Li": "Na"}`` puts Na on every distinct Li site. Interstitials are placed on the distinct
Voronoi nodes of the host. Charge states are not generated: every defect is neutral.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xtalgen.crystal import Crystal, atomic_number, element_symbol
from xtalgen.disorder import disorder_message
from xtalgen.errors import XtalgenError

__all__ = [
    "KINDS",
    "Defect",
    "auto_supercell",
    "format_supercell",
    "generate_defects",
    "place_on_host",
]

KINDS = ("vacancy", "substitution", "interstitial")
"""Defect kinds, in the order they are generated."""

Supercell = tuple[int, int, int] | Sequence[Sequence[int]] | np.ndarray


@dataclass(frozen=True)
class Defect:
    """One symmetry-distinct point defect of a host, in a supercell.

    ``name``: pymatgen-analysis-defects' name (``v_Na``, ``K_Na``, ``Li_i``), with ``_2``, ``_3``
    ... when several distinct sites share it. ``site``: fractional coordinates in the host cell.
    ``removed`` / ``added``: element taken out / put in (None when none). ``multiplicity``:
    equivalent sites per host cell. ``supercell``: integer (3, 3) matrix, rows in host lattice
    vectors. ``crystal``: the defect supercell (properties name the defect and its parent).
    """

    name: str
    kind: str
    site: tuple[float, float, float]
    removed: str | None
    added: str | None
    multiplicity: int
    supercell: tuple[tuple[int, int, int], ...]
    crystal: Crystal
    parent: str

    @property
    def element_changes(self) -> dict[str, int]:
        """Element -> atoms added (+1) or removed (-1) relative to the host supercell."""
        changes: dict[str, int] = {}
        if self.removed:
            changes[self.removed] = changes.get(self.removed, 0) - 1
        if self.added:
            changes[self.added] = changes.get(self.added, 0) + 1
        return changes

    @property
    def supercell_label(self) -> str:
        """``2x2x2`` for a diagonal supercell, the matrix rows otherwise."""
        return format_supercell(self.supercell)


def format_supercell(matrix: Supercell) -> str:
    """``"2x2x2"`` for a diagonal matrix, ``"[[..],[..],[..]]"`` otherwise."""
    m = np.asarray(matrix, dtype=int).reshape(3, 3)
    if np.count_nonzero(m - np.diag(np.diag(m))) == 0:
        return "x".join(str(int(v)) for v in np.diag(m))
    return "[" + ",".join("[" + ",".join(str(int(v)) for v in row) + "]" for row in m) + "]"


def _supercell_matrix(supercell: Supercell) -> np.ndarray:
    m = np.asarray(supercell, dtype=float)
    if m.shape == (3,):
        m = np.diag(m)
    if m.shape != (3, 3) or not np.allclose(m, np.round(m)):
        raise XtalgenError(
            f"a supercell is three integers or an integer 3x3 matrix, got {supercell}"
        )
    m = np.round(m).astype(int)
    if round(abs(np.linalg.det(m))) < 1:
        raise XtalgenError(f"supercell matrix {m.tolist()} is singular")
    return m


def auto_supercell(host: Crystal, min_length: float = 10.0) -> tuple[int, int, int]:
    """Smallest diagonal supercell whose three lattice vectors are all >= ``min_length`` (A)."""
    lengths = np.linalg.norm(host.lattice, axis=1)
    return tuple(max(1, math.ceil(min_length / float(length) - 1e-9)) for length in lengths)


def _check_element(symbol: str, what: str) -> str:
    try:
        return element_symbol(atomic_number(symbol))
    except XtalgenError:
        raise XtalgenError(f"unknown element {symbol!r} in {what}") from None


def generate_defects(
    host: Crystal,
    *,
    vacancies: bool = True,
    substitutions: Mapping[str, str | Sequence[str]] | None = None,
    interstitials: Sequence[str] = (),
    supercell: Supercell | None = None,
    min_length: float = 10.0,
    symprec: float = 0.01,
) -> list[Defect]:
    """The symmetry-distinct neutral point defects of ``host``, each in a supercell.

    ``vacancies``: one vacancy per distinct site. ``substitutions``: host element -> dopant(s)
    (``{"Li": "Na"}``: Na on each distinct Li site). ``interstitials``: elements to insert on
    each distinct Voronoi node. ``supercell``: ``(2, 2, 2)`` or an integer 3x3 matrix in host
    lattice vectors (default: :func:`auto_supercell` with ``min_length`` in angstrom). Raises
    :class:`XtalgenError` for a disordered host, an unknown element or no defect asked for.
    """
    from pymatgen.analysis.defects.generators import (
        SubstitutionGenerator,
        VacancyGenerator,
        VoronoiInterstitialGenerator,
    )

    parent = str(host.properties.get("source") or host.formula)
    refusal = disorder_message(host, "defect generation", parent)
    if refusal:
        raise XtalgenError(refusal)
    substitutions = dict(substitutions or {})
    if not (vacancies or substitutions or interstitials):
        raise XtalgenError(
            "no defect kind chosen: ask for vacancies, substitutions or interstitials"
        )
    host_elements = set(host.symbols)
    subs: dict[str, list[str]] = {}
    for old, new in substitutions.items():
        old = _check_element(old, "substitutions")
        if old not in host_elements:
            raise XtalgenError(f"substitution {old}:{new}: {old} is not in the host {host.formula}")
        targets = [new] if isinstance(new, str) else list(new)
        subs[old] = [_check_element(t, "substitutions") for t in targets]
        if old in subs[old]:
            raise XtalgenError(f"substitution {old}:{old} replaces an element by itself")
    inserts = [_check_element(el, "interstitials") for el in interstitials]
    matrix = _supercell_matrix(
        supercell if supercell is not None else auto_supercell(host, min_length)
    )

    structure = host.to_pymatgen()
    structure.properties = {}
    found: list[tuple[str, Any]] = []  # oxi_state=0: neutral defects, skips oxidation guessing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if vacancies:
            gen = VacancyGenerator(symprec=symprec)
            found += [("vacancy", d) for d in gen.generate(structure, oxi_state=0)]
        for old, news in subs.items():
            gen = SubstitutionGenerator(symprec=symprec)
            found += [
                ("substitution", d) for d in gen.generate(structure, {old: news}, oxi_state=0)
            ]
        if inserts:
            gen = VoronoiInterstitialGenerator()
            found += [("interstitial", d) for d in gen.generate(structure, inserts, oxi_state=0)]
        return _to_defects(found, matrix, parent)


def _to_defects(found: list[tuple[str, Any]], matrix: np.ndarray, parent: str) -> list[Defect]:
    counts = Counter(d.name for _, d in found)
    seen: Counter[str] = Counter()
    label = format_supercell(matrix)
    out: list[Defect] = []
    for kind, d in found:
        seen[d.name] += 1
        name = d.name if counts[d.name] == 1 else f"{d.name}_{seen[d.name]}"
        changes = {el.symbol: int(n) for el, n in d.element_changes.items()}
        removed = next((el for el, n in changes.items() if n < 0), None)
        added = next((el for el, n in changes.items() if n > 0), None)
        site = tuple(round(float(x), 6) for x in d.site.frac_coords)
        structure = d.get_supercell_structure(sc_mat=matrix)
        structure.remove_oxidation_states()
        crystal = Crystal.from_pymatgen(structure)
        properties = {
            "source": f"{parent}#{name}",
            "parent": parent,
            "defect": name,
            "defect_kind": kind,
            "defect_site": list(site),
            "defect_removed": removed or "",
            "defect_added": added or "",
            "defect_multiplicity": int(d.multiplicity),
            "supercell": label,
        }
        out.append(
            Defect(
                name=name,
                kind=kind,
                site=site,  # type: ignore[arg-type]
                removed=removed,
                added=added,
                multiplicity=int(d.multiplicity),
                supercell=tuple(tuple(int(v) for v in row) for row in matrix),  # type: ignore[misc]
                crystal=crystal.replace(properties=properties),
                parent=parent,
            )
        )
    return out


def place_on_host(defect: Defect, host: Crystal) -> Crystal:
    """The defect supercell strained onto the supercell of ``host`` (e.g. the relaxed host).

    Fractional coordinates are kept; the lattice becomes ``supercell @ host.lattice``.
    """
    lattice = np.asarray(defect.supercell, dtype=float) @ host.lattice
    return defect.crystal.replace(lattice=lattice)
