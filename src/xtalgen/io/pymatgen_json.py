"""pymatgen JSON: a ``Structure.as_dict()`` or a list of them (properties and occupancies kept)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from xtalgen.crystal import Crystal
from xtalgen.io.base import FormatError, from_structure


def read_json(text: str) -> list[Crystal]:
    """Crystals of a JSON text holding one Structure dict or a list of them."""
    from pymatgen.core import Structure

    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        reason = f"invalid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        raise FormatError(reason) from None
    items = data if isinstance(data, list) else [data]
    crystals = []
    for i, item in enumerate(items):
        where = f"item {i}" if isinstance(data, list) else "content"
        if not isinstance(item, dict) or "lattice" not in item or "sites" not in item:
            raise FormatError(f"{where} is not a pymatgen Structure dict (needs lattice, sites)")
        try:
            structure = Structure.from_dict(item)
        except Exception as exc:  # pymatgen raises KeyError, TypeError, ValueError, ...
            reason = f"{where}: bad Structure dict ({type(exc).__name__}: {exc})"
            raise FormatError(reason) from None
        crystals.append(from_structure(structure))
    return crystals


def write_json(crystals: Sequence[Crystal]) -> str:
    """JSON text: one Structure dict for one crystal, otherwise a list of them."""
    dicts = [crystal.to_pymatgen().as_dict() for crystal in crystals]
    return json.dumps(dicts[0] if len(dicts) == 1 else dicts)
