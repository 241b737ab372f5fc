"""CIF: one structure per data block, read with pymatgen's CifParser and checked first.

pymatgen turns an unknown element into a dummy species or drops its site with only a warning,
and fails on NaN or degenerate cells with messages about linear algebra; the checks here give
one clear reason instead. Blocks without ``_atom_site_fract_x`` (publication headers) are
skipped. Sites come back in pymatgen's order (sorted by electronegativity), not the file's.
Properties are kept in a JSON text field, :data:`PROPERTIES_TAG`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from xtalgen.crystal import MIN_VOLUME, Crystal
from xtalgen.io.base import FormatError, from_structure

PROPERTIES_TAG = "_xtalgen_properties_json"
"""CIF item holding a crystal's ``properties`` as one line of JSON (other readers ignore it)."""

_CELL_TAGS = tuple(
    f"_cell_{name}"
    for name in ("length_a", "length_b", "length_c", "angle_alpha", "angle_beta", "angle_gamma")
)


def read_cif(text: str) -> list[Crystal]:
    """Crystals of every structure block of a CIF text (cell as given, ``primitive=False``)."""
    from pymatgen.io.cif import CifFile, CifParser

    cif = CifFile.from_str(text)
    if not cif.data:
        raise FormatError("not a CIF file: no 'data_' block found")
    blocks = [(name, b) for name, b in cif.data.items() if cif_value(b, "_atom_site_fract_x")]
    if not blocks:
        raise FormatError("no CIF data block with atom sites (_atom_site_fract_x)")
    crystals = []
    for number, (name, block) in enumerate(blocks, start=1):
        where = f"CIF block {number} (data_{name})" if len(blocks) > 1 else f"data_{name}"
        _check_numbers(block, where)
        _check_symbols(block, where)
        properties = _pop_properties(block, where)
        parser = CifParser.from_str(str(block))
        try:
            structures = parser.parse_structures(primitive=False, on_error="raise")
        except ValueError as exc:
            cause = exc.__cause__ or exc
            raise FormatError(f"{where}: {type(cause).__name__}: {cause}") from None
        crystals.extend(from_structure(s).with_properties(**properties) for s in structures)
    return crystals


def write_cif(crystals: Sequence[Crystal]) -> str:
    """CIF text in P1 (pymatgen CifWriter, 8 significant figures), one block per crystal.

    Partial occupancies are kept; ``properties`` go to a JSON text field, :data:`PROPERTIES_TAG`.
    """
    from pymatgen.io.cif import CifWriter

    blocks = []
    for i, crystal in enumerate(crystals):
        text = str(CifWriter(crystal.to_pymatgen())).rstrip("\n") + "\n"
        name = crystal.formula if len(crystals) == 1 else f"{i}_{crystal.formula}"
        # block names must be unique within a file (a reader keys blocks by name)
        text = re.sub(r"^data_.*$", f"data_{name}", text, count=1, flags=re.MULTILINE)
        if crystal.properties:  # one line of JSON: newlines inside strings are escaped
            text += f"{PROPERTIES_TAG}\n;\n{json.dumps(dict(crystal.properties))}\n;\n"
        blocks.append(text)
    return "\n".join(blocks)


def _pop_properties(block: Any, where: str) -> dict[str, Any]:
    """Remove and decode the properties field of a block (empty when there is none)."""
    for key in list(block.data):
        if key.lower() == PROPERTIES_TAG:
            raw = block.data.pop(key)
            try:
                properties = json.loads(raw if isinstance(raw, str) else " ".join(raw))
            except json.JSONDecodeError as exc:
                raise FormatError(f"{where}: {PROPERTIES_TAG} is not valid JSON ({exc})") from None
            if not isinstance(properties, dict):
                raise FormatError(f"{where}: {PROPERTIES_TAG} is not a JSON object")
            return properties
    return {}


def cif_value(block: Any, tag: str) -> Any:
    """A CIF item looked up case-insensitively (CIF tags are case-insensitive)."""
    data = block.data
    if tag in data:
        return data[tag]
    for key, value in data.items():
        if key.lower() == tag:
            return value
    return None


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _check_numbers(block: Any, where: str) -> None:
    """Refuse a missing, NaN or zero-volume cell and NaN coordinates with a clear reason."""
    from pymatgen.core import Lattice
    from pymatgen.io.cif import str2float

    cell = []
    for tag in _CELL_TAGS:
        raw = cif_value(block, tag)
        if raw is None:
            raise FormatError(f"{where}: missing {tag}")
        try:
            cell.append(str2float(raw))
        except ValueError:
            raise FormatError(f"{where}: {tag} is not a number ({raw!r})") from None
    if not np.all(np.isfinite(cell)):
        raise FormatError(f"{where}: lattice contains NaN or infinite values")
    volume = Lattice.from_parameters(*cell).volume
    if not volume > MIN_VOLUME:  # also catches NaN volumes from impossible angles
        raise FormatError(f"{where}: lattice has zero volume (a, b, c, angles = {cell})")
    for axis in "xyz":
        for raw in _as_list(cif_value(block, f"_atom_site_fract_{axis}")):
            try:
                ok = bool(np.isfinite(str2float(raw)))
            except ValueError:
                ok = False
            if not ok:
                reason = f"bad fractional coordinate {raw!r} (NaN or not a number)"
                raise FormatError(f"{where}: {reason}")


def _check_symbols(block: Any, where: str) -> None:
    """Refuse unknown element symbols, which pymatgen would turn into dummies or drop."""
    from pymatgen.core import Element

    symbols = cif_value(block, "_atom_site_type_symbol")
    from_labels = symbols is None
    if from_labels:
        symbols = cif_value(block, "_atom_site_label")
    for raw in _as_list(symbols):
        letters = re.match(r"[A-Za-z]*", raw.strip()).group()
        candidates = [letters.capitalize()]
        if from_labels:  # labels such as 'Fe1a': pymatgen tries two letters, then one
            candidates = [letters[:2].capitalize(), letters[:1].upper()]
        if not any(c and Element.is_valid_symbol(c) for c in candidates):
            kind = "atom site label" if from_labels else "element symbol"
            raise FormatError(f"{where}: unknown {kind} {raw.strip()!r}")
