"""Neutral point-defect formation energies with an interatomic potential.

    E_f = E_defect - E_host_supercell - sum_i n_i mu_i        (eV)

``n_i`` is +1 for each atom of element i added and -1 for each removed. An approximation, and
stated as one: neutral defects only (no charge states, no Fermi level), no finite-size
(image-interaction) correction, no vibrational entropy; energies from the potential.

Chemical potentials ``mu_i = E_ref_i + dmu_i + s``: ``E_ref_i`` the bundled hull's elemental
energy per atom (MP2020 scale, that of CHGNet), ``dmu_i`` (<= 0) one corner of the host's
stability region on the bundled hull (``PhaseDiagram.get_all_chempots``; the host enters the
diagram with the potential's own formation energy, so a host the reference lacks still has a
region), and ``s`` (host elements only, eV/atom) the shift that makes ``sum_i x_i mu_i`` equal
the potential's energy per atom of the host. For an elemental host (Si, Cu) this gives
``mu = E_host`` per atom: exact and consistent with the potential whatever its energy scale.
A dopant's corner value is the richest it can be without precipitating a phase of the hull.
Positions of the defect supercell relax at the fixed cell of the relaxed host.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from xtalgen.crystal import Crystal
from xtalgen.defects.generate import Defect, place_on_host
from xtalgen.errors import XtalgenError
from xtalgen.relax.correction import corrected_energy
from xtalgen.relax.potential import Potential, get_potential
from xtalgen.relax.relaxer import RelaxConfig, RelaxResult, relax_one

if TYPE_CHECKING:
    from xtalgen.relax.hull import ConvexHull

__all__ = [
    "APPROXIMATION",
    "ChemicalPotentials",
    "DefectResult",
    "chemical_potentials",
    "default_corner",
    "defect_formation_energies",
    "relax_host",
]

APPROXIMATION = (
    "neutral defects only (no charge states), no finite-size correction, potential energies; "
    "chemical potentials from the bundled MP-20 hull"
)
"""One line stating what the formation energies leave out; printed with every table."""


@dataclass(frozen=True)
class ChemicalPotentials:
    """Chemical potentials at the corners of the host's stability region.

    ``mu``: corner -> element -> mu (eV/atom); a corner is named by the phases that coexist
    with the host there (``"Na"``: Na-rich NaCl, ``"Cl2"``: Cl-rich; ``"KCl+Na"`` ...).
    ``delta``: the same with ``dmu`` against the elemental references (eV/atom, <= 0).
    ``shift``: corner -> the host-consistency shift ``s`` (eV/atom). ``host_e_above_hull``: the
    host's energy above the reference hull with the potential's energy (eV/atom; > 0 means
    the host is unstable there and the corners are those of the facet it decomposes into).
    """

    mu: dict[str, dict[str, float]]
    delta: dict[str, dict[str, float]]
    shift: dict[str, float]
    host_e_above_hull: float


@dataclass
class DefectResult:
    """Formation energy of one neutral defect. Energies in eV, times in seconds.

    ``formation_energy``: corner -> E_f (eV); ``default`` the corner reported first: the one
    richest in the element the defect removes (vacancy, substitution) or adds (interstitial).
    ``energy_defect``: relaxed defect supercell (eV); ``energy_host``: host supercell of the same
    cell (eV). ``chemical_potentials``: those of the corners. ``wall_s``:
    seconds of the defect's relaxation. ``error``: None or why E_f is missing or doubtful (a
    relaxation that did not converge keeps its E_f and says so).
    """

    defect: Defect
    formation_energy: dict[str, float] = field(default_factory=dict)
    default: str = ""
    energy_defect: float = math.nan
    energy_host: float = math.nan
    n_steps: int = 0
    converged: bool = False
    wall_s: float = 0.0
    crystal: Crystal | None = None
    error: str | None = None
    chemical_potentials: ChemicalPotentials | None = None

    @property
    def name(self) -> str:
        return self.defect.name

    @property
    def mu(self) -> dict[str, dict[str, float]]:
        """Corner -> element -> chemical potential used (eV/atom)."""
        return self.chemical_potentials.mu if self.chemical_potentials else {}

    @property
    def formation_energy_default(self) -> float:
        """E_f (eV) at the default corner."""
        return self.formation_energy.get(self.default, math.nan)

    @property
    def formation_energy_range(self) -> tuple[float, float]:
        """(lowest, highest) E_f over the corners, eV."""
        values = [v for v in self.formation_energy.values() if math.isfinite(v)]
        return (min(values), max(values)) if values else (math.nan, math.nan)


def relax_host(
    host: Crystal, potential: Potential | None = None, fmax: float = 0.02, max_steps: int = 500
) -> RelaxResult:
    """Relax cell and positions of the host; raises XtalgenError when that fails outright."""
    potential = potential or get_potential("chgnet")
    result = relax_one(host, potential, RelaxConfig(fmax=fmax, max_steps=max_steps))
    if result.crystal is None:
        raise XtalgenError(f"host {host.properties.get('source', host.formula)}: {result.error}")
    return result


def chemical_potentials(
    host: Crystal,
    host_energy_per_atom: float,
    dopants: Sequence[str] = (),
    hull: ConvexHull | None = None,
) -> ChemicalPotentials:
    """Chemical potentials (eV/atom) at each corner of the host's stability region.

    ``host_energy_per_atom``: the potential's energy of the relaxed host on the hull's scale
    (eV/atom, corrected when the potential needs it). ``dopants``: foreign elements of
    substitutions and interstitials; they join the phase diagram, so each corner also fixes
    them at the richest value that precipitates no compound of theirs.
    """
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram

    from xtalgen.relax.hull import ConvexHull

    hull = hull or ConvexHull()
    composition = host.composition
    host_elements = sorted(el.symbol for el in composition.elements)
    elements = sorted(set(host_elements) | set(dopants))
    ref = hull.reference.elemental_energy_per_atom
    missing = [el for el in elements if el not in ref]
    if missing:
        raise XtalgenError(f"the hull reference has no elemental energy for {', '.join(missing)}")
    e_form = host_energy_per_atom - sum(
        composition.get_atomic_fraction(el) * ref[el] for el in host_elements
    )
    host_entry = PDEntry(
        composition, e_form * composition.num_atoms, name=composition.reduced_formula
    )
    base = hull.phase_diagram(frozenset(elements))
    diagram = PhaseDiagram([*base.all_entries, host_entry])
    e_above = float(diagram.get_e_above_hull(host_entry, allow_negative=True) or 0.0)
    mu: dict[str, dict[str, float]] = {}
    delta: dict[str, dict[str, float]] = {}
    shift: dict[str, float] = {}
    for facet, values in diagram.get_all_chempots(composition).items():
        others = [p for p in facet.split("-") if p != composition.reduced_formula]
        corner = "+".join(others) or composition.reduced_formula
        dmu = {el.symbol: float(v) for el, v in values.items()}
        s = host_energy_per_atom - sum(
            composition.get_atomic_fraction(el) * (ref[el] + dmu[el]) for el in host_elements
        )
        delta[corner] = {el: dmu[el] for el in elements}
        shift[corner] = s
        mu[corner] = {
            el: ref[el] + dmu[el] + (s if el in host_elements else 0.0) for el in elements
        }
    return ChemicalPotentials(mu=mu, delta=delta, shift=shift, host_e_above_hull=e_above)


def default_corner(defect: Defect, potentials: ChemicalPotentials) -> str:
    """The corner richest in the element the defect removes (or adds, for an interstitial)."""
    element = defect.added if defect.kind == "interstitial" else defect.removed
    corners = list(potentials.mu)
    if element is None:
        return corners[0]
    return max(corners, key=lambda c: potentials.mu[c][element])


def defect_formation_energies(
    host: Crystal,
    defects: Sequence[Defect],
    *,
    potential: Potential | str | None = None,
    fmax: float = 0.05,
    max_steps: int = 300,
    relax_host_first: bool = True,
    hull: ConvexHull | None = None,
    progress: bool = True,
) -> list[DefectResult]:
    """Neutral formation energies (eV) of ``defects`` of ``host`` at every corner.

    The host is relaxed first (cell and positions; skip with ``relax_host_first=False`` when it
    already is); each defect supercell is put on the supercell of that host and relaxed at
    fixed cell (positions only, ``fmax`` eV/A, ``max_steps``). A failed relaxation gives NaN
    energies and an ``error``; the run goes on. See the module docstring for the approximation.
    """
    from tqdm.auto import tqdm

    if isinstance(potential, str) or potential is None:
        potential = get_potential(potential or "chgnet")
    if relax_host_first:
        host_result = relax_host(
            host, potential, fmax=min(fmax, 0.02), max_steps=max(max_steps, 500)
        )
        relaxed: Crystal = host_result.crystal  # type: ignore[assignment]  # never None here
        host_energy = host_result.energy_per_atom
    else:
        relaxed, host_energy = host, potential.energy_per_atom(host)
    n_host = relaxed.num_sites
    host_energy = corrected_energy(relaxed, host_energy * n_host, potential.correction) / n_host
    if not math.isfinite(host_energy):
        raise XtalgenError(
            f"host {relaxed.formula}: {potential.correction} correction does not apply"
        )
    dopants = sorted({d.added for d in defects if d.added} - set(relaxed.symbols))
    potentials = chemical_potentials(relaxed, host_energy, dopants, hull)
    config = RelaxConfig(fmax=fmax, max_steps=max_steps, relax_cell=False, compute_rmsd=False)
    results: list[DefectResult] = []
    for defect in tqdm(defects, desc="defects", unit="defect", disable=not progress):
        results.append(_one(defect, relaxed, host_energy, potentials, potential, config))
    return results


def _one(
    defect: Defect,
    host: Crystal,
    host_energy_per_atom: float,
    potentials: ChemicalPotentials,
    potential: Potential,
    config: RelaxConfig,
) -> DefectResult:
    start = time.perf_counter()
    crystal = place_on_host(defect, host)
    n_host = host.num_sites * round(abs(float(np.linalg.det(np.asarray(defect.supercell)))))
    result = DefectResult(
        defect=defect, default=default_corner(defect, potentials), chemical_potentials=potentials
    )
    result.energy_host = host_energy_per_atom * n_host
    relaxed = relax_one(crystal, potential, config)
    result.n_steps, result.converged, result.error = (
        relaxed.n_steps,
        relaxed.converged,
        relaxed.error,
    )
    result.crystal = relaxed.crystal
    if relaxed.crystal is not None:
        energy = corrected_energy(relaxed.crystal, relaxed.energy, potential.correction)
        result.energy_defect = energy
        if not math.isfinite(energy):
            result.error = f"{potential.correction} correction does not apply to the defect cell"
        changes = defect.element_changes
        for corner, mu in potentials.mu.items():
            result.formation_energy[corner] = (
                energy - result.energy_host - sum(n * mu[el] for el, n in changes.items())
            )
    result.wall_s = time.perf_counter() - start
    return result
