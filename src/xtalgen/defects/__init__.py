"""Point defects: symmetry-distinct vacancies, substitutions and interstitials of a host, and
their neutral formation energies with an interatomic potential.

In a notebook::

    from xtalgen.defects import generate_defects, defect_formation_energies, relax_host

    host = relax_host(crystal, potential).crystal          # cell and positions
    defects = generate_defects(host, substitutions={"Li": "Na"}, supercell=(2, 2, 2))
    results = defect_formation_energies(host, defects, potential=potential, relax_host_first=False)
    for r in results:
        print(r.name, r.default, r.formation_energy_default, r.formation_energy_range)

``{"Li": "Na"}`` puts Na on the Li sites (host element : dopant). Energies in eV. The formation
energies are an approximation: neutral defects, no finite-size correction (see ``formation``).
"""

from __future__ import annotations

from xtalgen.defects.formation import (
    APPROXIMATION,
    ChemicalPotentials,
    DefectResult,
    chemical_potentials,
    default_corner,
    defect_formation_energies,
    relax_host,
)
from xtalgen.defects.generate import (
    KINDS,
    Defect,
    auto_supercell,
    format_supercell,
    generate_defects,
    place_on_host,
)

__all__ = [
    "APPROXIMATION",
    "KINDS",
    "ChemicalPotentials",
    "Defect",
    "DefectResult",
    "auto_supercell",
    "chemical_potentials",
    "default_corner",
    "defect_formation_energies",
    "format_supercell",
    "generate_defects",
    "place_on_host",
    "relax_host",
]
