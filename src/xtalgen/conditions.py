"""The conditions a generator can be asked for, shared by every generator and the CLI.

Four conditions (:data:`CONDITION_NAMES`):

* ``chemical_system``: a set of elements, e.g. ``"Li-Mn-O"``; a crystal satisfies it when its
  elements are exactly the system's (every element of the crystal in the system, and every
  element of the system present);
* ``spacegroup``: an international space-group number, 1-230; a crystal satisfies it when spglib
  at ``symprec=0.1`` angstrom (:data:`SYMPREC`) finds that group;
* ``band_gap`` (eV) and ``formation_energy`` (eV/atom): scalar properties, read from the
  dataset columns in :data:`PROPERTY_COLUMNS` for training and predicted by a trained property
  predictor for checking; a crystal satisfies one when ``|value - target| <= tolerance``
  (:data:`DEFAULT_TOLERANCES`).

:class:`Conditions` holds one request; :func:`Conditions.from_mapping` builds it from the
``condition`` mapping of :meth:`xtalgen.models.base.Generator.generate` (which may carry
``"chemical_system"`` and ``"spacegroup"`` besides the properties) and validates every value,
with one :class:`~xtalgen.errors.XtalgenError` line per bad input. Models that condition
natively (classifier-free guidance, :mod:`xtalgen.models.iterative.generative`) and the
rejection filter that serves any generator (:mod:`xtalgen.pipelines.conditioned`) read the same
vocabulary from here.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from xtalgen.crystal import Crystal, CrystalError, atomic_number, element_symbol
from xtalgen.errors import XtalgenError

__all__ = [
    "CONDITION_NAMES",
    "DEFAULT_TOLERANCES",
    "PROPERTY_COLUMNS",
    "PROPERTY_UNITS",
    "SYMPREC",
    "Conditions",
    "check_spacegroup",
    "condition_name",
    "crystal_property",
    "crystal_spacegroup",
    "detect_spacegroup",
    "parse_chemical_system",
    "parse_condition_args",
    "system_label",
]

CONDITION_NAMES = ("chemical_system", "spacegroup", "band_gap", "formation_energy")
"""Every condition, in a fixed order (the order of a model's condition embeddings)."""
PROPERTY_COLUMNS: dict[str, str] = {
    "band_gap": "band_gap",
    "formation_energy": "formation_energy_per_atom",
}
"""Scalar property condition -> the ``Crystal.properties`` column it is trained on (MP-20)."""
PROPERTY_UNITS: dict[str, str] = {"band_gap": "eV", "formation_energy": "eV/atom"}
DEFAULT_TOLERANCES: dict[str, float] = {"band_gap": 0.5, "formation_energy": 0.1}
"""Largest ``|predicted - target|`` that satisfies a property condition, in its units."""
SYMPREC = 0.1
"""spglib tolerance (angstrom) of the space-group condition, in training and in checking."""
SPACEGROUP_KEYS = ("spacegroup.number", "spacegroup", "space_group", "spg")
"""``Crystal.properties`` keys that may store a crystal's space group (MP-20: the first)."""

_ALIASES = {
    "chemsys": "chemical_system", "chemical-system": "chemical_system", "system": "chemical_system",
    "space_group": "spacegroup", "space-group": "spacegroup", "sg": "spacegroup",
    "band-gap": "band_gap", "gap": "band_gap",
    "formation-energy": "formation_energy", "formation_energy_per_atom": "formation_energy",
    "e_form": "formation_energy",
}


def condition_name(name: str) -> str:
    """The canonical name of a condition (aliases such as ``formation_energy_per_atom``
    accepted); one clear error for an unknown one."""
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in CONDITION_NAMES:
        known = ", ".join(f"{c} ({PROPERTY_UNITS[c]})" if c in PROPERTY_UNITS else c
                          for c in CONDITION_NAMES)
        raise XtalgenError(f"unknown condition {name!r}; known: {known}")
    return key


def parse_chemical_system(system: str | Iterable[str | int]) -> tuple[int, ...]:
    """``"Li-Mn-O"`` (or ``"Li,Mn,O"``, ``["Li", "Mn", "O"]``, atomic numbers) -> the sorted
    atomic numbers ``(3, 8, 25)``."""
    parts: list[str | int]
    if isinstance(system, str):
        parts = [p for p in system.replace(",", "-").replace(" ", "-").split("-") if p]
    else:
        parts = list(system)
    if not parts:
        raise XtalgenError(f"empty chemical system {system!r}; write it like Li-Mn-O")
    found: set[int] = set()
    for part in parts:
        try:
            if isinstance(part, str) and not part.strip().isdigit():
                found.add(atomic_number(part))
            else:
                element_symbol(int(part))  # checks the range
                found.add(int(part))
        except (CrystalError, ValueError):
            raise XtalgenError(f"unknown element {str(part)!r} in chemical system "
                               f"{_show(system)!r}") from None
    return tuple(sorted(found))


def system_label(system: Iterable[int]) -> str:
    """``(3, 8, 25)`` -> ``"Li-Mn-O"`` (symbols in alphabetical order, as Materials Project)."""
    return "-".join(sorted(element_symbol(z) for z in system))


def check_spacegroup(number: Any) -> int:
    """An international space-group number as an int; one clear error outside 1-230."""
    try:
        value = int(number)
        if value != float(number):
            raise ValueError
    except (TypeError, ValueError):
        raise XtalgenError(f"space group must be a whole number in 1-230, got {number!r}") from None
    if not 1 <= value <= 230:
        raise XtalgenError(f"space group must be in 1-230, got {value}")
    return value


def parse_condition_args(args: Sequence[str]) -> dict[str, Any]:
    """``["band_gap=2.0", "formation_energy=-1.5"]`` (the CLI's ``--condition``) -> a mapping
    of canonical names to values, checked by :meth:`Conditions.from_mapping`."""
    out: dict[str, Any] = {}
    for arg in args:
        name, sep, value = str(arg).partition("=")
        if not sep or not name.strip() or not value.strip():
            raise XtalgenError(f"a condition looks like NAME=VALUE (e.g. band_gap=2.0), got {arg!r}")
        key = condition_name(name)
        if key in out:
            raise XtalgenError(f"condition {key} given twice")
        out[key] = value.strip()
    return Conditions.from_mapping(out).as_dict()


@dataclass(frozen=True)
class Conditions:
    """One conditional request: any of a chemical system, a space group and target properties."""

    chemical_system: tuple[int, ...] | None = None
    """Sorted atomic numbers, or None."""
    spacegroup: int | None = None
    """1-230, or None."""
    properties: Mapping[str, float] = field(default_factory=dict)
    """Canonical property name (``band_gap``, ``formation_energy``) -> target, in its units."""

    @classmethod
    def from_mapping(
        cls,
        condition: Mapping[str, Any] | None = None,
        *,
        spacegroup: Any = None,
        chemical_system: Any = None,
    ) -> Conditions:
        """Validate a ``condition`` mapping (names as in :data:`CONDITION_NAMES` or aliases;
        values: a system string or list, a space-group number, property floats) plus the
        separate ``spacegroup`` / ``chemical_system`` arguments."""
        values: dict[str, Any] = {}
        for name, value in (condition or {}).items():
            values[condition_name(name)] = value
        for name, value in (("spacegroup", spacegroup), ("chemical_system", chemical_system)):
            if value is None:
                continue
            if values.get(name) is not None and values[name] != value:
                raise XtalgenError(f"{name} given twice, as {values[name]!r} and {value!r}")
            values[name] = value
        system = values.pop("chemical_system", None)
        group = values.pop("spacegroup", None)
        props: dict[str, float] = {}
        for name, value in values.items():
            if value is None:
                continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise XtalgenError(f"condition {name} needs a number ({PROPERTY_UNITS[name]}), "
                                   f"got {value!r}") from None
            if not math.isfinite(number):
                raise XtalgenError(f"condition {name} must be finite, got {value!r}")
            props[name] = number
        return cls(
            chemical_system=None if system is None else parse_chemical_system(system),
            spacegroup=None if group is None else check_spacegroup(group),
            properties=props,
        )

    @property
    def names(self) -> tuple[str, ...]:
        """The conditions this request sets, in :data:`CONDITION_NAMES` order."""
        given = {"chemical_system": self.chemical_system is not None,
                 "spacegroup": self.spacegroup is not None,
                 **{k: True for k in self.properties}}
        return tuple(c for c in CONDITION_NAMES if given.get(c))

    def __bool__(self) -> bool:
        return bool(self.names)

    def as_dict(self) -> dict[str, Any]:
        """Plain values (the system as ``"Li-Mn-O"``), e.g. for sample provenance."""
        out: dict[str, Any] = {}
        if self.chemical_system is not None:
            out["chemical_system"] = system_label(self.chemical_system)
        if self.spacegroup is not None:
            out["spacegroup"] = self.spacegroup
        out.update(self.properties)
        return out

    def describe(self) -> str:
        """``"chemical_system=Li-Mn-O, band_gap=2 eV"``."""
        return ", ".join(f"{k}={v:g} {PROPERTY_UNITS[k]}" if k in PROPERTY_UNITS else f"{k}={v}"
                         for k, v in self.as_dict().items())


def crystal_property(crystal: Crystal, name: str) -> float:
    """A crystal's stored value of a property condition (from its dataset column); NaN if it
    has none."""
    value = crystal.properties.get(PROPERTY_COLUMNS[name])
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def detect_spacegroup(crystal: Crystal) -> int:
    """spglib's space group of a crystal at :data:`SYMPREC` (0.1 angstrom) and an angle
    tolerance of 5 degrees, the convention of the benchmarks (0 when spglib finds none)."""
    from xtalgen.representations.wyckoff import detected_spacegroup

    return detected_spacegroup(crystal, SYMPREC, 5.0)


def crystal_spacegroup(crystal: Crystal) -> int:
    """A training crystal's space group: its stored column (:data:`SPACEGROUP_KEYS`; MP-20's
    ``spacegroup.number`` agrees with spglib at symprec 0.1) or else :func:`detect_spacegroup`."""
    for key in SPACEGROUP_KEYS:
        value = crystal.properties.get(key)
        if isinstance(value, numbers.Real) and 1 <= value <= 230 and value == int(value):
            return int(value)
    return detect_spacegroup(crystal)


def _show(system: Any) -> str:
    return system if isinstance(system, str) else "-".join(str(p) for p in system)
