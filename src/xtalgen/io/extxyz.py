"""Extended XYZ (ASE): one crystal per frame; properties travel in the comment line.

extxyz stores numbers, booleans and plain strings exactly, but reads ``"123"`` back as an int,
``None`` as ``True`` and lists as arrays. Properties it cannot store exactly (and the site
occupancies of disordered crystals) are written as one JSON string under :data:`JSON_KEY`
(base64-encoded under :data:`B64_KEY` when ASE's quoting would mangle it).
Scalar calculator results in a file (``energy=...``) become properties; per-atom arrays
(``forces``) are not kept. Positions are Cartesian with 8 decimals (1e-8 angstrom).
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from xtalgen.crystal import Crystal
from xtalgen.io.base import FormatError, plain

if TYPE_CHECKING:
    from ase import Atoms

JSON_KEY = "xtalgen_json"
"""``info`` key holding, as JSON, the properties that extxyz cannot store exactly."""
B64_KEY = "xtalgen_json_b64"
"""The same JSON, base64-encoded, when ASE's quoting would not give it back exactly."""


def read_extxyz(text: str) -> list[Crystal]:
    """Crystals of every frame of an extxyz text; each frame needs a 3D ``Lattice``."""
    from ase.io import read as ase_read

    frames = ase_read(io.StringIO(text), index=":", format="extxyz")
    crystals = []
    for i, atoms in enumerate(frames):
        if not np.all(atoms.pbc) or atoms.cell.rank < 3:
            where = f"frame {i}: " if len(frames) > 1 else ""
            raise FormatError(f'{where}no 3D periodic cell (extxyz needs Lattice="...")')
        crystals.append(Crystal.from_ase(_decode_info(atoms)))
    return crystals


def write_extxyz(crystals: Sequence[Crystal]) -> str:
    """extxyz text, one frame per crystal, properties in each frame's comment line."""
    from ase.io import write as ase_write

    frames = [_encode_info(crystal.to_ase()) for crystal in crystals]
    buffer = io.StringIO()
    ase_write(buffer, frames, format="extxyz")
    return buffer.getvalue()


def _decode_info(atoms: Atoms) -> Atoms:
    """Plain-Python ``info`` plus scalar calculator results, with the JSON key unpacked."""
    info = {key: plain(value) for key, value in atoms.info.items()}
    if atoms.calc is not None:
        for key, value in atoms.calc.results.items():
            value = plain(value)
            if not isinstance(value, list) or len(value) != len(atoms):  # skip per-atom arrays
                info.setdefault(key, value)
    packed = info.pop(JSON_KEY, None)
    if isinstance(packed, str):
        info.update(json.loads(packed))
    packed = info.pop(B64_KEY, None)
    if isinstance(packed, str):
        info.update(json.loads(base64.b64decode(packed)))
    atoms.info = info
    return atoms


def _encode_info(atoms: Atoms) -> Atoms:
    """Keep in ``info`` what extxyz stores exactly; pack the rest as JSON under one key."""
    from ase.io.extxyz import key_val_dict_to_str, key_val_str_to_dict

    def survives(key: str, value: object) -> bool:
        if isinstance(value, str) and not value.isprintable():  # a newline ends the header
            return False
        try:
            back = plain(key_val_str_to_dict(key_val_dict_to_str({key: value})).get(key))
        except Exception:  # anything ASE cannot format goes to JSON
            return False
        return type(back) is type(value) and back == value

    native, packed = {}, {}
    for key, value in atoms.info.items():
        simple = key != "site_occupancies" and isinstance(value, (bool, int, float, str))
        (native if simple and survives(key, value) else packed)[key] = value
    if packed:
        text = json.dumps(packed)
        if survives(JSON_KEY, text):
            native[JSON_KEY] = text
        else:  # ASE's quoting mangles some backslash sequences: fall back to base64
            native[B64_KEY] = base64.b64encode(text.encode()).decode("ascii")
    atoms.info = native
    return atoms
