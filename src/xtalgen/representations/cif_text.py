"""Crystal <-> symmetrised CIF text, and its tokenizer: the text form of the CIF language model.

The text is what pymatgen's ``CifWriter(structure, symprec=0.1)`` writes (refined conventional
cell, only the symmetry-inequivalent sites, each with its multiplicity), in CrystaLLM's
compact form:

* the ``data_`` line is the cell formula (``data_Na4Cl4``: the conventional cell's atoms);
* the space group comes right after it, so that ``data_<formula>\\n_symmetry_space_group_name_H-M
  <symbol>\\n`` is a prompt prefix;
* every number is rounded to :data:`DECIMALS` (4) decimals;
* the symmetry-operator loop (and pymatgen's oxidation-number loop) is dropped; decoding restores
  the operators from the space group (spglib's database, the standard setting that spglib's
  refinement writes, as CrystaLLM restores them from the symbol).

:func:`to_cif_text` writes it, :func:`parse_cif_text` reads it back into a :class:`CifRecord`
(the declared values, exactly as written) and :func:`record_to_crystal` expands the sites by the
operators into a :class:`~xtalgen.crystal.Crystal`. A text that does not parse raises
:class:`CifTextError` with the reason.

:class:`CifTokenizer` splits the text the way CrystaLLM does: CIF keywords, element symbols,
space-group symbols and special tokens are single tokens; numbers are split into digits and
punctuation. About 390 tokens in all.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from xtalgen.crystal import Crystal, element_symbol
from xtalgen.errors import XtalgenError

__all__ = [
    "DECIMALS",
    "KEYWORDS",
    "CifRecord",
    "CifTextError",
    "CifTokenizer",
    "cell_formula",
    "crystal_to_cif_text",
    "is_sensible",
    "parse_cif_text",
    "prompt",
    "record_to_crystal",
    "spacegroup_symbol",
    "to_cif_text",
]

SYMPREC = 0.1
"""Symmetry tolerance (angstrom) of the text form, CrystaLLM's."""
DECIMALS = 4
MERGE_TOLERANCE = 0.1
"""Images of a site closer than this (angstrom) are one atom when the operators are applied."""

SG_KEY = "_symmetry_space_group_name_H-M"
HEADER_KEYS = (
    "_cell_length_a", "_cell_length_b", "_cell_length_c",
    "_cell_angle_alpha", "_cell_angle_beta", "_cell_angle_gamma",
    "_symmetry_Int_Tables_number", "_chemical_formula_structural", "_chemical_formula_sum",
    "_cell_volume", "_cell_formula_units_Z",
)
SITE_KEYS = (
    "_atom_site_type_symbol", "_atom_site_label", "_atom_site_symmetry_multiplicity",
    "_atom_site_fract_x", "_atom_site_fract_y", "_atom_site_fract_z", "_atom_site_occupancy",
)
KEYWORDS = ("data_", "loop_", SG_KEY, *HEADER_KEYS, *SITE_KEYS)
SPECIAL_TOKENS = ("<pad>", "<eos>", "<unk>")
PUNCTUATION = (*"0123456789", ".", "-", "+", "'", "(", ")", "/", ",", "_", " ", "\n")


SENSIBLE_LENGTHS = (0.5, 1000.0)
"""Cell lengths (angstrom) CrystaLLM's ``is_sensible`` accepts."""
SENSIBLE_ANGLES = (10.0, 170.0)
"""Cell angles (degrees) CrystaLLM's ``is_sensible`` accepts."""


class CifTextError(XtalgenError):
    """A text that is not a parseable CIF of this form; ``reason`` says why in a few words."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


# -- space groups ---------------------------------------------------------------------------------
@functools.cache
def _spacegroup_tables() -> tuple[dict[int, int], dict[str, int], dict[int, str]]:
    """(number -> spglib's default Hall number, short symbol -> number, number -> symbol of
    the default setting), from spglib's database."""
    import spglib

    default_hall: dict[int, int] = {}
    by_symbol: dict[str, int] = {}
    symbol: dict[int, str] = {}
    for hall in range(1, 531):
        sg = spglib.get_spacegroup_type(hall)
        number = sg.number
        if number not in default_hall:
            default_hall[number] = hall
            symbol[number] = sg.international_short
        by_symbol.setdefault(sg.international_short, number)
    return default_hall, by_symbol, symbol


def spacegroup_symbol(number: int) -> str:
    """Hermann-Mauguin short symbol of a space group (1-230) as spglib and pymatgen write it."""
    if not 1 <= int(number) <= 230:
        raise XtalgenError(f"space group must be in 1-230, got {number}")
    return _spacegroup_tables()[2][int(number)]


@functools.cache
def _operations(number: int) -> tuple[np.ndarray, np.ndarray]:
    """(rotations (n, 3, 3), translations (n, 3)) of a space group in its standard setting,
    centring translations included."""
    import spglib

    ops = spglib.get_symmetry_from_database(_spacegroup_tables()[0][number])
    return np.asarray(ops["rotations"], dtype=float), np.asarray(ops["translations"], dtype=float)


# -- writing --------------------------------------------------------------------------------------
def cell_formula(composition: dict[str, float] | str) -> str:
    """Cell formula without spaces, in pymatgen's element order (``Na4Cl4``): the ``data_`` name."""
    from pymatgen.core import Composition

    try:
        comp = Composition(composition)
    except Exception as exc:
        raise XtalgenError(f"cannot parse composition {composition!r}: {exc}") from None
    return comp.formula.replace(" ", "")


def _number(value: float) -> str:
    text = f"{value:.{DECIMALS}f}"
    return "0.0000" if text == "-0.0000" else text


def _coordinate(value: float) -> str:
    """A fractional coordinate in [0, 1), rounded (1.0000 wraps to 0.0000)."""
    text = _number(value % 1.0)
    return "0.0000" if text == "1.0000" else text


def to_cif_text(structure, symprec: float = SYMPREC) -> str:  # structure: pymatgen Structure
    """The symmetrised CIF text of an ordered pymatgen ``Structure`` (see the module docstring)."""
    from pymatgen.io.cif import CifWriter

    writer = CifWriter(structure, symprec=symprec)
    block = next(iter(writer.cif_file.data.values())).data
    species = [str(s) for s in block["_atom_site_type_symbol"]]
    formula = str(block["_chemical_formula_sum"])
    lines = [f"data_{formula.replace(' ', '')}", f"{SG_KEY} {block[SG_KEY]}"]
    for key in HEADER_KEYS:
        value = block[key]
        if key.startswith(("_cell_length", "_cell_angle", "_cell_volume")):
            value = _number(float(value))
        elif key == "_chemical_formula_sum":
            value = f"'{formula}'"
        lines.append(f"{key} {value}")
    lines += ["loop_", *SITE_KEYS]
    for i, symbol in enumerate(species):
        xyz = " ".join(_coordinate(float(block[k][i]))
                       for k in ("_atom_site_fract_x", "_atom_site_fract_y", "_atom_site_fract_z"))
        lines.append(f"{symbol} {block['_atom_site_label'][i]} "
                     f"{block['_atom_site_symmetry_multiplicity'][i]} {xyz} "
                     f"{block['_atom_site_occupancy'][i]}")
    return "\n".join(lines) + "\n"


def crystal_to_cif_text(crystal: Crystal, symprec: float = SYMPREC) -> str:
    """:func:`to_cif_text` of an ordered :class:`Crystal`."""
    if not crystal.is_ordered:
        raise XtalgenError("the CIF text form holds ordered crystals only")
    return to_cif_text(crystal.to_pymatgen(), symprec)


def prompt(formula: str | None = None, spacegroup: int | str | None = None) -> str:
    """The prompt text: ``data_`` (DNG), ``data_<cell formula>\\n`` (CSP), and the space-group
    line after it when ``spacegroup`` (a number or a symbol) is given."""
    if formula is None:
        if spacegroup is not None:
            raise XtalgenError("a space-group prompt needs a formula (data_<formula>)")
        return "data_"
    text = f"data_{cell_formula(formula)}\n"
    if spacegroup is not None:
        symbol = spacegroup_symbol(int(spacegroup)) if str(spacegroup).isdigit() else str(spacegroup)
        if symbol not in _spacegroup_tables()[1]:
            raise XtalgenError(f"unknown space-group symbol {symbol!r}")
        text += f"{SG_KEY} {symbol}\n"
    return text


# -- reading --------------------------------------------------------------------------------------
@dataclass
class CifSite:
    symbol: str
    label: str
    multiplicity: int
    frac_coords: tuple[float, float, float]
    occupancy: float


@dataclass
class CifRecord:
    """The declared values of one CIF text, exactly as written."""

    data_formula: str
    spacegroup_symbol: str
    values: dict[str, str]
    sites: list[CifSite] = field(default_factory=list)

    @property
    def spacegroup_number(self) -> int | None:
        """The number the symbol names (None: not a known symbol)."""
        return _spacegroup_tables()[1].get(self.spacegroup_symbol)

    @property
    def lattice_parameters(self) -> tuple[float, ...]:
        keys = ("_cell_length_a", "_cell_length_b", "_cell_length_c",
                "_cell_angle_alpha", "_cell_angle_beta", "_cell_angle_gamma")
        return tuple(float(self.values[k]) for k in keys)


def is_sensible(record: CifRecord) -> bool:
    """CrystaLLM's ``is_sensible``: every cell length within :data:`SENSIBLE_LENGTHS` and every
    angle within :data:`SENSIBLE_ANGLES` (bounds included)."""
    a, b, c, alpha, beta, gamma = record.lattice_parameters
    low, high = SENSIBLE_LENGTHS
    lo_angle, hi_angle = SENSIBLE_ANGLES
    return (all(low <= x <= high for x in (a, b, c))
            and all(lo_angle <= x <= hi_angle for x in (alpha, beta, gamma)))


def _float(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CifTextError("malformed number", f"{what} = {text!r}") from None
    if not np.isfinite(value):
        raise CifTextError("malformed number", f"{what} = {text!r}")
    return value


def parse_cif_text(text: str) -> CifRecord:
    """Read a text of this form; :class:`CifTextError` (with ``reason``) when it does not parse."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines or not lines[0].startswith("data_"):
        raise CifTextError("no data_ line")
    values: dict[str, str] = {}
    sg = None
    site_rows: list[list[str]] = []
    in_loop = False
    loop_keys: list[str] = []
    for line in lines[1:]:
        if line == "loop_":
            in_loop, loop_keys = True, []
            continue
        if in_loop and line.startswith("_"):
            loop_keys.append(line)
            continue
        if in_loop:
            if loop_keys != list(SITE_KEYS):
                raise CifTextError("unexpected loop", ",".join(loop_keys)[:60])
            site_rows.append(line.split())
            continue
        key, _, value = line.partition(" ")
        if key == SG_KEY:
            sg = value.strip()
        elif key in HEADER_KEYS:
            values[key] = value.strip()
        else:
            raise CifTextError("unknown line", line[:60])
    if sg is None:
        raise CifTextError("no space group")
    missing = [k for k in HEADER_KEYS if k not in values]
    if missing:
        raise CifTextError("missing field", missing[0])
    if not site_rows:
        raise CifTextError("no atom sites")
    sites = []
    for row in site_rows:
        if len(row) != len(SITE_KEYS):
            raise CifTextError("malformed atom site row", " ".join(row)[:60])
        symbol, label, mult = row[0], row[1], row[2]
        if not mult.isdigit() or int(mult) < 1:
            raise CifTextError("malformed multiplicity", mult)
        xyz = tuple(_float(v, "fractional coordinate") for v in row[3:6])
        sites.append(CifSite(symbol, label, int(mult), xyz, _float(row[6], "occupancy")))  # type: ignore[arg-type]
    record = CifRecord(lines[0][len("data_"):].strip(), sg, values, sites)
    for key in (*HEADER_KEYS[:6], "_cell_volume"):
        _float(values[key], key)
    return record


def record_to_crystal(record: CifRecord, properties: dict | None = None) -> Crystal:
    """The full conventional cell: every site expanded by the operators of the declared space
    group (standard setting), images closer than :data:`MERGE_TOLERANCE` merged."""
    from pymatgen.core import Element, Lattice

    number = record.spacegroup_number
    if number is None:
        raise CifTextError("unknown space group", record.spacegroup_symbol)
    a, b, c, alpha, beta, gamma = record.lattice_parameters
    if min(a, b, c) <= 0 or not all(0 < x < 180 for x in (alpha, beta, gamma)):
        raise CifTextError("impossible cell", f"{a} {b} {c} {alpha} {beta} {gamma}")
    try:
        lattice = Lattice.from_parameters(a, b, c, alpha, beta, gamma)
    except Exception as exc:
        raise CifTextError("impossible cell", str(exc)) from None
    if not np.isfinite(lattice.volume) or lattice.volume <= 1e-3:
        raise CifTextError("impossible cell", f"volume {lattice.volume:g}")
    matrix = lattice.matrix
    rotations, translations = _operations(number)
    species: list[int] = []
    coords: list[np.ndarray] = []
    for site in record.sites:
        try:
            z = Element(site.symbol).Z
        except ValueError:
            raise CifTextError("unknown element", site.symbol) from None
        images = (rotations @ np.asarray(site.frac_coords) + translations) % 1.0
        kept: list[np.ndarray] = []
        for image in images:
            if all(_periodic_distance(image, k, matrix) > MERGE_TOLERANCE for k in kept):
                kept.append(image)
        species += [z] * len(kept)
        coords += kept
    if len(species) > 1000:
        raise CifTextError("too many atoms", str(len(species)))
    return Crystal(lattice=matrix, frac_coords=np.array(coords), species=np.array(species),
                   properties=dict(properties or {}))


def _periodic_distance(u: np.ndarray, v: np.ndarray, matrix: np.ndarray) -> float:
    d = u - v
    d -= np.round(d)
    return float(np.linalg.norm(d @ matrix))


# -- tokenizer ------------------------------------------------------------------------------------
class CifTokenizer:
    """CrystaLLM-style tokens: special tokens, CIF keywords, element symbols, space-group symbols,
    digits and punctuation. ``encode`` raises :class:`CifTextError` on a character it cannot
    represent; ``decode`` joins the token strings."""

    def __init__(self) -> None:
        from xtalgen.crystal import MAX_Z

        elements = [element_symbol(z) for z in range(1, MAX_Z + 1)]
        symbols = sorted(_spacegroup_tables()[1])
        self.vocab: list[str] = [*SPECIAL_TOKENS, *KEYWORDS, *PUNCTUATION, *elements]
        self.num_plain = len(self.vocab)
        self.vocab += [f"SG:{s}" for s in symbols]
        self.token_to_id = {t: i for i, t in enumerate(self.vocab)}
        self.pad, self.eos, self.unk = (self.token_to_id[t] for t in SPECIAL_TOKENS)
        self.data = self.token_to_id["data_"]
        # longest element symbols first, so that "Cl" is not read as "C" "l"
        words = sorted([*KEYWORDS, *elements], key=len, reverse=True)
        alternatives = "|".join(re.escape(w) for w in words)
        puncts = "".join(re.escape(p) for p in PUNCTUATION)
        self._pattern = re.compile(f"({alternatives})|([{puncts}])")

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def _plain(self, text: str) -> list[int]:
        ids: list[int] = []
        pos = 0
        while pos < len(text):
            match = self._pattern.match(text, pos)
            if match is None:
                raise CifTextError("character outside the vocabulary", repr(text[pos]))
            ids.append(self.token_to_id[match.group(0)])
            pos = match.end()
        return ids

    def encode(self, text: str, eos: bool = True) -> list[int]:
        """Token ids of a text (the space-group symbol after its keyword is one token)."""
        ids: list[int] = []
        for line in text.splitlines(keepends=True):
            if line.startswith(SG_KEY + " "):
                symbol = line[len(SG_KEY) + 1:].strip()
                token = self.token_to_id.get(f"SG:{symbol}")
                if token is None:
                    raise CifTextError("unknown space group", symbol)
                ids += [self.token_to_id[SG_KEY], self.token_to_id[" "], token]
                if line.endswith("\n"):
                    ids.append(self.token_to_id["\n"])
            else:
                ids += self._plain(line)
        if eos:
            ids.append(self.eos)
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """The text of token ids; stops at ``<eos>``, skips ``<pad>``."""
        parts = []
        for i in ids:
            i = int(i)
            if i == self.eos:
                break
            if i == self.pad:
                continue
            token = self.vocab[i]
            parts.append(token[3:] if token.startswith("SG:") else token)
        return "".join(parts)
