"""Disordered crystals: name their partially occupied sites, refuse them where an ordered
structure is needed, and turn them into ordered ones on request.

A :class:`~xtalgen.crystal.Crystal` keeps partial occupancies (``site_occupancies``); its
``species`` then hold each site's majority species. Everything that needs one atom per site (a
relaxation, the potential, spglib symmetry, CrystalNN fingerprints) would silently see that
majority structure, so those paths call :func:`disorder_message` / :func:`require_ordered`
and say so, naming the file and the site.

Two ways to an ordered structure:

* :func:`enumerate_orderings`: the symmetry-distinct orderings of a supercell whose site
  counts the occupancies make whole, from pymatgen's ``OrderDisorderedStructureTransformation``
  ranked by Ewald energy (oxidation states guessed by pymatgen; a structure without guessable
  oxidation states, such as a metallic alloy, is enumerated unranked), or from enumlib's
  ``EnumerateStructureTransformation`` where ``enum.x`` is installed;
* :func:`special_quasirandom`: one special quasirandom structure (Zunger et al., PRL 65, 353
  (1990)) from icet's Monte Carlo search, whose pair correlations match the random alloy's.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from xtalgen.crystal import Crystal, element_symbol
from xtalgen.errors import XtalgenError

__all__ = [
    "DisorderedCrystalError",
    "OrderingSettings",
    "disorder_message",
    "disordered_sites",
    "enumerate_orderings",
    "min_supercell",
    "require_ordered",
    "site_label",
    "special_quasirandom",
]

VACANCY = 0
"""Pseudo atomic number of a vacancy in a site's occupancy (the part below 1)."""


class DisorderedCrystalError(XtalgenError):
    """A disordered crystal reached a step that needs one atom per site."""


def disordered_sites(crystal: Crystal) -> list[int]:
    """Indices of the sites with partial occupancy (mixed species or vacancies)."""
    if crystal.site_occupancies is None:
        return []
    return [i for i, occ in enumerate(crystal.site_occupancies) if occ is not None]


def site_label(crystal: Crystal, index: int) -> str:
    """``'site 0 (K:0.5 Na:0.5)'``: the site and its occupancies (``vac`` for vacancies)."""
    occ = crystal.site_occupancies[index] if crystal.site_occupancies is not None else None
    if occ is None:
        return f"site {index} ({element_symbol(int(crystal.species[index]))})"
    parts = [f"{element_symbol(z)}:{o:.3g}" for z, o in occ]
    vacancy = 1.0 - sum(o for _, o in occ)
    if vacancy > 1e-6:
        parts.append(f"vac:{vacancy:.3g}")
    return f"site {index} ({' '.join(parts)})"


def disorder_message(crystal: Crystal, action: str, source: str | None = None) -> str | None:
    """One line saying that ``action`` cannot use this crystal's partial occupancies, naming
    the file (``source`` or the crystal's ``source`` property) and the first disordered site;
    None for an ordered crystal."""
    sites = disordered_sites(crystal)
    if not sites:
        return None
    where = source or crystal.properties.get("source") or "structure"
    more = f" and {len(sites) - 1} more site(s) are" if len(sites) > 1 else " is"
    return (
        f"{where}: {site_label(crystal, sites[0])}{more} partially occupied; "
        f"{action} cannot use partial occupancies"
    )


def require_ordered(crystals: Iterable[Crystal], action: str, hint: str = "") -> None:
    """Raise :class:`DisorderedCrystalError` (one line) at the first disordered crystal."""
    for crystal in crystals:
        message = disorder_message(crystal, action)
        if message:
            raise DisorderedCrystalError(message + (f" ({hint})" if hint else ""))


# -- orderings -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class OrderingSettings:
    """How :func:`enumerate_orderings` works.

    Attributes:
        n: at most this many symmetry-distinct orderings per parent, lowest Ewald energy first.
        supercell: diagonal supercell (a, b, c); None starts from the smallest cell in which
            every occupancy gives a whole number of atoms (:func:`min_supercell`) and doubles
            its shortest axis until it holds ``n`` distinct orderings or would exceed
            ``grow_sites`` sites.
        max_sites: refuse a supercell larger than this (enumeration grows combinatorially).
        grow_sites: an automatic supercell stops growing at this many sites.
        candidates: orderings kept from the transformation before symmetry deduplication.
        backend: ``"auto"`` (enumlib where ``enum.x`` is installed, else pymatgen),
            ``"pymatgen"`` or ``"enumlib"``.
    """

    n: int = 10
    supercell: tuple[int, int, int] | None = None
    max_sites: int = 64
    grow_sites: int = 32
    candidates: int = 200
    backend: str = "auto"


def _occupancy_groups(crystal: Crystal) -> dict[tuple, int]:
    """Occupancy (with vacancy share) -> number of sites that carry it."""
    groups: dict[tuple, int] = {}
    for i in disordered_sites(crystal):
        occ = crystal.site_occupancies[i]
        key = (*sorted(occ), (VACANCY, round(1.0 - sum(o for _, o in occ), 6)))
        groups[key] = groups.get(key, 0) + 1
    return groups


def min_supercell(crystal: Crystal, max_sites: int = 64) -> tuple[int, int, int]:
    """Smallest diagonal supercell in which each occupancy times its site count is whole.

    The multiple m is the least integer with m * k * x integral (within 1e-3) for every
    species share x on every group of k equally occupied sites; it is split over the three axes
    so that the supercell is as close to equiaxed as possible.
    """
    groups = _occupancy_groups(crystal)
    limit = max(1, max_sites // crystal.num_sites)
    for m in range(1, limit + 1):
        if all(
            abs(m * k * x - round(m * k * x)) < 1e-3 for key, k in groups.items() for _, x in key
        ):
            return _factor_cell(crystal, m)
    shares = sorted({(z, x) for key in groups for z, x in key if x > 0})
    named = ", ".join(f"{element_symbol(z) if z else 'vac'}:{x:g}" for z, x in shares)
    raise XtalgenError(
        f"{crystal.properties.get('source', 'structure')}: occupancies {named} need a "
        f"supercell of more than {max_sites} sites; give an explicit supercell or raise the limit"
    )


def _factor_cell(crystal: Crystal, m: int) -> tuple[int, int, int]:
    lengths = np.array(crystal.lattice_parameters[:3])
    best, best_score = (m, 1, 1), math.inf
    for a in range(1, m + 1):
        for b in range(1, m // a + 1):
            if m % (a * b):
                continue
            c = m // (a * b)
            scaled = lengths * (a, b, c)
            score = float(scaled.max() / scaled.min())
            if score < best_score - 1e-9:
                best, best_score = (a, b, c), score
    return best


def _ordering_structure(crystal: Crystal, supercell: tuple[int, int, int]):
    """pymatgen supercell with guessed oxidation states; (structure, charged)."""
    structure = crystal.to_pymatgen()
    structure.make_supercell(np.diag(supercell))
    try:
        guessed = structure.copy()
        guessed.add_oxidation_state_by_guess()
        charged = any(getattr(sp, "oxi_state", 0) for site in guessed for sp in site.species)
    except Exception:
        charged = False
    return (guessed if charged else structure), charged


def enumerate_orderings(
    crystal: Crystal, settings: OrderingSettings | None = None
) -> list[Crystal]:
    """Symmetry-distinct orderings of a disordered ``crystal`` (an ordered one returns itself).

    Each ordering carries in ``properties``: ``parent`` (the parent's ``source`` or formula),
    ``ordering`` (0 = lowest Ewald energy), ``ewald_energy`` (eV per supercell, NaN when the
    structure has no guessable oxidation states: then the order is the enumeration's),
    ``supercell`` ("2x2x1") and ``ordering_method``.
    """
    settings = settings or OrderingSettings()
    if crystal.is_ordered:
        return [crystal]
    backend = settings.backend
    if backend == "auto":
        backend = "enumlib" if shutil.which("enum.x") else "pymatgen"
    supercell = settings.supercell or min_supercell(crystal, settings.max_sites)
    while True:
        n_sites = crystal.num_sites * int(np.prod(supercell))
        if n_sites > settings.max_sites:
            raise XtalgenError(
                f"{crystal.properties.get('source', 'structure')}: a {_cell(supercell)} "
                f"supercell has {n_sites} sites, over the limit of {settings.max_sites}"
            )
        structure, charged = _ordering_structure(crystal, supercell)
        ranked = _run_transformation(structure, charged, backend, settings.candidates)
        distinct = _distinct([item["structure"] for item in ranked], settings.n)
        bigger = _grown(crystal, supercell)
        if (
            settings.supercell is not None
            or len(distinct) >= settings.n
            or crystal.num_sites * int(np.prod(bigger)) > min(settings.grow_sites, settings.max_sites)
        ):
            break
        supercell = bigger
    parent = str(crystal.properties.get("source") or crystal.formula)
    out: list[Crystal] = []
    for rank, index in enumerate(distinct[: settings.n]):
        energy = float(ranked[index].get("energy", math.nan)) if charged else math.nan
        ordered = Crystal.from_pymatgen(ranked[index]["structure"])
        props = {
            k: v for k, v in crystal.properties.items() if k not in ("source", "material_id")
        }
        out.append(
            ordered.replace(
                properties={
                    **props,
                    "parent": parent,
                    "ordering": rank,
                    "ewald_energy": energy,
                    "supercell": _cell(supercell),
                    "ordering_method": backend if charged else f"{backend} (unranked)",
                    "source": f"{parent}#ordering{rank}",
                }
            )
        )
    if not out:
        raise XtalgenError(f"{parent}: no ordering found in a {_cell(supercell)} supercell")
    return out


def _run_transformation(structure, charged: bool, backend: str, candidates: int) -> list[dict]:
    from pymatgen.transformations.standard_transformations import (
        OrderDisorderedStructureTransformation,
    )

    if backend == "enumlib":
        from pymatgen.transformations.advanced_transformations import (
            EnumerateStructureTransformation,
        )

        transformation = EnumerateStructureTransformation(min_cell_size=1, max_cell_size=1)
        ranked = transformation.apply_transformation(structure, return_ranked_list=candidates)
    elif backend == "pymatgen":
        transformation = OrderDisorderedStructureTransformation(no_oxi_states=not charged)
        ranked = transformation.apply_transformation(structure, return_ranked_list=candidates)
    else:
        raise XtalgenError(f"ordering backend must be auto, pymatgen or enumlib, got {backend!r}")
    if isinstance(ranked, list):
        return ranked
    return [{"structure": ranked, "energy": math.nan}]


def _distinct(structures: Sequence, n: int) -> list[int]:
    """Indices of the first structure of each symmetry-equivalence class, in input order, up to
    ``n`` classes. Only structures of one space group (spglib, cheap) go to the matcher."""
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    matcher = StructureMatcher(scale=False)  # one crystal, whatever supercell it is drawn in
    kept: dict[int, list[int]] = {}
    order: list[int] = []
    for i, structure in enumerate(structures):
        try:
            key = SpacegroupAnalyzer(structure, symprec=0.01).get_space_group_number()
        except Exception:
            key = 0
        same = kept.setdefault(key, [])
        if not any(matcher.fit(structures[j], structure) for j in same):
            same.append(i)
            order.append(i)
            if len(order) >= n:
                break
    return order


def _grown(crystal: Crystal, supercell: tuple[int, int, int]) -> tuple[int, int, int]:
    """``supercell`` doubled along its shortest axis."""
    lengths = np.array(crystal.lattice_parameters[:3]) * supercell
    axis = int(np.argmin(lengths))
    return tuple(2 * s if i == axis else s for i, s in enumerate(supercell))  # type: ignore[return-value]


def _cell(supercell: Sequence[int]) -> str:
    return "x".join(str(int(s)) for s in supercell)


# -- special quasirandom structures -------------------------------------------------------------
def special_quasirandom(
    crystal: Crystal,
    supercell: tuple[int, int, int] | None = None,
    cutoffs: Sequence[float] = (6.0, 4.5),
    n_steps: int = 3000,
    seed: int = 0,
    max_sites: int = 64,
) -> Crystal:
    """One special quasirandom structure of a disordered ``crystal`` (icet).

    ``cutoffs``: pair, triplet, ... cluster radii in angstrom; ``n_steps``: Monte Carlo steps of
    icet's simulated annealing. The supercell defaults to the smallest whole-count one scaled
    up to at least 16 sites (an SQS needs room for the correlations it matches).
    """
    try:
        from icet import ClusterSpace
        from icet.tools.structure_generation import generate_sqs_from_supercells
    except ImportError:
        raise XtalgenError("special quasirandom structures need icet (pip install icet)") from None
    if crystal.is_ordered:
        return crystal
    if supercell is None:
        supercell = min_supercell(crystal, max_sites)
        while crystal.num_sites * int(np.prod(supercell)) < 16:
            supercell = _factor_cell(crystal, 2 * int(np.prod(supercell)))
    primitive = crystal.replace(site_occupancies=None).to_ase()
    symbols: list[list[str]] = []
    for i in range(crystal.num_sites):
        occ = crystal.site_occupancies[i]
        if occ is None:
            symbols.append([element_symbol(int(crystal.species[i]))])
            continue
        names = [element_symbol(z) for z, _ in occ]
        if 1.0 - sum(o for _, o in occ) > 1e-6:
            names.append("X")
        symbols.append(names)
    space = ClusterSpace(primitive, list(cutoffs), symbols)
    concentrations = _sublattice_concentrations(crystal, space)
    cell = primitive.repeat(supercell)
    sqs = generate_sqs_from_supercells(
        space, [cell], concentrations, n_steps=n_steps, random_seed=seed
    )
    sqs = sqs[[atom.symbol != "X" for atom in sqs]]
    out = Crystal.from_ase(sqs)
    parent = str(crystal.properties.get("source") or crystal.formula)
    return out.replace(
        properties={
            "parent": parent,
            "ordering": 0,
            "supercell": _cell(supercell),
            "ordering_method": "sqs (icet)",
            "source": f"{parent}#sqs",
        }
    )


def _sublattice_concentrations(crystal: Crystal, space) -> dict[str, dict[str, float]]:
    """icet target concentrations: sublattice letter -> {symbol: fraction}."""
    sublattices = space.get_sublattices(space.primitive_structure)
    out: dict[str, dict[str, float]] = {}
    for sub in sublattices.active_sublattices:
        site = sub.indices[0]
        occ = crystal.site_occupancies[site]
        fractions = {element_symbol(z): o for z, o in occ}
        vacancy = 1.0 - sum(occ_o for _, occ_o in occ)
        if vacancy > 1e-6:
            fractions["X"] = vacancy
        out[sub.symbol] = fractions
    return out
