"""CrystaLLM's validity checks of a generated CIF text (Antunes et al., Nat. Commun. 2024).

Each check follows the definition of CrystaLLM's evaluation code (``crystallm/_metrics.py``):

* ``formula``: the ``data_`` formula, ``_chemical_formula_sum`` and
  ``_chemical_formula_structural`` have the same reduced formula;
* ``multiplicity``: per element, the site multiplicities add up to ``_chemical_formula_sum``;
* ``bond_length``: the bond-length reasonableness score is 1.0 (CrystaLLM's cutoff): for every
  CrystalNN neighbour pair (pymatgen ``CrystalNN()`` defaults), the distance divided by the
  expected length lies strictly within 1 +- 0.32. The expected length is the sum of the
  average cationic and anionic radii when the Pauling electronegativities differ by 1.7 or more
  (an ionic bond, the more electronegative atom the anion), else the sum of the atomic radii;
  a bond to hydrogen only needs a ratio below 2.5. No bonds scores 0. Two non-hydrogen atoms
  closer than 0.5 angstrom fail at once (:data:`OVERLAP`: the same verdict, without CrystalNN);
* ``spacegroup``: the declared H-M symbol equals the one spglib finds (pymatgen
  ``SpacegroupAnalyzer``, symprec 0.1) in the structure built from the text;
* ``sensible``: cell lengths in [0.5, 1000] angstrom and angles in [10, 170] degrees.

``valid`` is all five together (CrystaLLM's ``is_valid`` is the first four; its generation
script discards texts that are not ``is_sensible``). A text that does not parse fails every
check, with the parse error as its ``reason``.

The structure is built from the text by :func:`xtalgen.representations.cif_text.record_to_crystal`
(the symmetry operators restored from the space group, as CrystaLLM restores them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from xtalgen.parallel import parallel_map
from xtalgen.representations import cif_text as T

__all__ = ["CHECKS", "CifChecks", "bond_length_score", "check_cif_text", "cif_validity"]

CHECKS = ("formula", "multiplicity", "bond_length", "spacegroup", "sensible")
BOND_TOLERANCE = 0.32
HYDROGEN_FACTOR = 2.5
BOND_CUTOFF = 1.0
OVERLAP = 0.5
"""Two non-hydrogen atoms closer than this (angstrom) fail the bond-length check at once: the
sum of two atomic or ionic radii is at least 0.74 angstrom, so such a pair is a CrystalNN bond
with a ratio below 1 - 0.32 and the score is below 1. CrystalNN itself can take many minutes on
such cells (a 3.3 x 212 x 1.2 angstrom cell of 36 atoms stalled it)."""


@dataclass
class CifChecks:
    """The checks of one text; ``reason``: the parse error, or the first failed check."""

    parseable: bool = False
    formula: bool = False
    multiplicity: bool = False
    bond_length: bool = False
    spacegroup: bool = False
    sensible: bool = False
    bond_length_score: float = 0.0
    detected_spacegroup: str = ""
    reason: str = ""

    @property
    def valid(self) -> bool:
        return all(getattr(self, c) for c in CHECKS)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "valid": self.valid}


def bond_length_score(structure, tolerance: float = BOND_TOLERANCE,
                      h_factor: float = HYDROGEN_FACTOR) -> float:
    """Fraction of CrystalNN bonds of a pymatgen ``Structure`` whose length is reasonable
    (see the module docstring); 0.0 when there are none."""
    from pymatgen.analysis.local_env import CrystalNN

    nn = CrystalNN()
    good = total = 0
    for i, site in enumerate(structure):
        for info in nn.get_nn_info(structure, i):
            j = info["site_index"]
            if i == j:
                continue
            other = info["site"]
            length = site.distance(other)
            a, b = site.specie, other.specie
            if abs(a.X - b.X) >= 1.7:
                cation, anion = (a, b) if a.X < b.X else (b, a)
                expected = cation.average_cationic_radius + anion.average_anionic_radius
            else:
                expected = a.atomic_radius + b.atomic_radius
            ratio = length / float(expected)
            if "H" in (a.symbol, b.symbol):
                good += ratio < h_factor
            else:
                good += (1 - tolerance) < ratio < (1 + tolerance)
            total += 1
    return good / total if total else 0.0


def _overlapping_heavy_atoms(crystal) -> bool:
    """Two atoms, neither hydrogen, closer than :data:`OVERLAP` angstrom (periodic images too)."""
    from xtalgen.io.base import close_pairs

    i, j, _ = close_pairs(crystal, OVERLAP)
    species = np.asarray(crystal.species)
    return bool(np.any((species[i] != 1) & (species[j] != 1)))


def check_cif_text(text: str, symprec: float = T.SYMPREC) -> CifChecks:
    """Every check of one generated text (never raises on a bad text)."""
    from pymatgen.core import Composition
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    out = CifChecks()
    try:
        record = T.parse_cif_text(text)
        crystal = T.record_to_crystal(record)
        structure = crystal.to_pymatgen()
    except T.CifTextError as exc:
        out.reason = f"not parseable: {exc.reason}"
        return out
    out.parseable = True
    values = record.values
    try:
        formulas = [Composition(f).reduced_formula for f in
                    (record.data_formula, values["_chemical_formula_sum"].strip("'"),
                     values["_chemical_formula_structural"])]
        out.formula = len(set(formulas)) == 1
        declared = Composition(values["_chemical_formula_sum"].strip("'"))
        counts: Counter[str] = Counter()
        for site in record.sites:
            counts[site.symbol] += site.multiplicity
        out.multiplicity = {str(e): float(n) for e, n in declared.items()} == \
            {e: float(n) for e, n in counts.items()}
    except (ValueError, KeyError, TypeError):
        pass  # an unreadable formula fails both
    out.sensible = T.is_sensible(record)
    try:
        out.detected_spacegroup = SpacegroupAnalyzer(structure, symprec=symprec).get_space_group_symbol()
        out.spacegroup = out.detected_spacegroup == record.spacegroup_symbol
    except Exception:  # spglib fails on degenerate cells
        out.detected_spacegroup = "?"
    if _overlapping_heavy_atoms(crystal):
        out.bond_length_score = 0.0  # see OVERLAP: CrystalNN would score it < 1, slowly
    else:
        try:
            out.bond_length_score = float(bond_length_score(structure))
        except Exception:  # CrystalNN raises on overlapping atoms and odd cells: no good bonds
            out.bond_length_score = 0.0
    out.bond_length = out.bond_length_score >= BOND_CUTOFF
    failed = [c for c in CHECKS if not getattr(out, c)]
    out.reason = failed[0] if failed else ""
    return out


def cif_validity(texts: Sequence[str], *, n_jobs: int | None = None,
                 progress: bool = True) -> dict[str, Any]:
    """Rates of every check and of all of them together over ``texts`` (unparseable texts
    included: they fail everything), the per-text checks and the failure reasons."""
    checks = parallel_map(check_cif_text, list(texts), n_jobs=n_jobs, desc="CIF checks",
                          progress=progress, min_items=32)
    n = len(checks)
    rates = {name: float(np.mean([getattr(c, name) for c in checks])) if n else 0.0
             for name in ("parseable", *CHECKS)}
    rates["valid"] = float(np.mean([c.valid for c in checks])) if n else 0.0
    return {"n": n, "rates": rates,
            "reasons": dict(Counter(c.reason for c in checks if c.reason)),
            "checks": [c.to_dict() for c in checks]}
