"""The candidate store: every screened candidate in an ASE database.

One row per candidate, keyed by ``cid``. The row's atoms are the relaxed structure when there is
one, else the submitted structure; the submitted structure is always in ``data["initial"]``.
Query with the tools users know: ``ase db candidates.db 'e_above_hull<0.1' -c cid,e_above_hull``.
SQLite by default; a ``postgresql://user:pass@host/db`` URL goes through the same interface.

Key-value pairs (units): ``stage`` (invalid / pending / duplicate / relaxed / failed),
``struct_valid``, ``comp_valid``, ``energy_per_atom`` (eV/atom), ``e_above_hull`` (eV/atom),
``formation_energy`` (eV/atom), ``rmsd`` (angstrom), ``n_steps``, ``converged``, ``error``,
``unique``, ``novel``, ``stable_mattergen`` / ``sun_mattergen`` (E_hull <= 0.1),
``stable_strict`` / ``sun_strict`` (E_hull <= 0), ``msun`` (metastable S.U.N.), ``rank``;
provenance ``generator``, ``checkpoint``, ``seed``, ``condition_<name>``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError

__all__ = ["CandidateStore"]

_PROVENANCE = ("generator", "checkpoint", "seed", "model", "method", "defect", "defect_kind")


def _scalar(value: Any) -> Any:
    """A value ASE db accepts as a key-value pair, or None (NaN and containers are dropped)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return None


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def provenance(crystal: Crystal) -> dict[str, Any]:
    """Provenance key-value pairs from a crystal's properties (generator, seed, conditions)."""
    props = crystal.properties
    out: dict[str, Any] = {}
    for key in _PROVENANCE:
        if key in props and _scalar(props[key]) is not None:
            out[key] = _scalar(props[key])
    for name in ("condition", "conditions"):
        cond = props.get(name)
        if isinstance(cond, Mapping):
            for k, v in cond.items():
                if _scalar(v) is not None and str(k).isidentifier():
                    out[f"condition_{k}"] = _scalar(v)
    return out


def _crystal_to_dict(crystal: Crystal) -> dict[str, Any]:
    return {
        "lattice": crystal.lattice.tolist(),
        "frac_coords": crystal.frac_coords.tolist(),
        "species": crystal.species.tolist(),
        "site_occupancies": _plain(crystal.site_occupancies),
        "properties": _plain(dict(crystal.properties)),
    }


def _crystal_from_dict(d: Mapping[str, Any]) -> Crystal:
    return Crystal(
        lattice=d["lattice"],
        frac_coords=d["frac_coords"],
        species=d["species"],
        properties=d.get("properties") or {},
        site_occupancies=d.get("site_occupancies"),
    )


class CandidateStore:
    """An ASE database of candidates (``path``: a .db file or a PostgreSQL URL)."""

    def __init__(self, path: str | Path) -> None:
        import ase.db

        self.path = str(path)
        if "://" not in self.path:
            parent = Path(self.path).expanduser().resolve().parent
            if not parent.is_dir():
                raise XtalgenError(f"folder of the candidate database does not exist: {parent}")
        try:
            self.db = ase.db.connect(self.path, type="db" if "://" not in self.path else None)
        except Exception as exc:
            raise XtalgenError(f"cannot open candidate database {self.path}: {exc}") from None

    # -- writing -------------------------------------------------------------------------------
    def add(self, cid: str, crystal: Crystal, index: int, **kvp: Any) -> int:
        """Insert a submitted candidate (its atoms are the submitted structure)."""
        pairs = {k: _scalar(v) for k, v in {**provenance(crystal), **kvp}.items()}
        pairs = {k: v for k, v in pairs.items() if v is not None}
        return self.db.write(
            _bare_atoms(crystal),
            key_value_pairs={"cid": cid, "index": int(index), **pairs},
            data={"initial": _crystal_to_dict(crystal)},
        )

    def update(
        self, cid: str, crystal: Crystal | None = None, data: dict | None = None, **kvp: Any
    ) -> None:
        """Set key-value pairs (NaN/None values delete the key), atoms and data of ``cid``."""
        row = self.db.get(cid=cid)
        pairs = {k: _scalar(v) for k, v in kvp.items()}
        delete = [k for k, v in pairs.items() if v is None and k in row.key_value_pairs]
        pairs = {k: v for k, v in pairs.items() if v is not None}
        merged = dict(row.data) if data else None
        if data:
            merged.update(_plain(data))
        atoms = _bare_atoms(crystal) if crystal is not None else None
        self.db.update(row.id, atoms=atoms, delete_keys=delete, data=merged, **pairs)

    def transaction(self) -> Any:
        """Context manager that commits many writes at once (``with store.transaction(): ...``)."""
        return self.db

    # -- reading -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.db.count()

    def rows(self, query: str | None = None) -> Iterator[Any]:
        """ASE rows matching an ``ase db`` query string (e.g. ``'e_above_hull<0.1'``)."""
        try:
            yield from self.db.select(query) if query else self.db.select()
        except Exception as exc:
            raise XtalgenError(f"bad candidate query {query!r}: {exc}") from None

    def stages(self) -> dict[str, str]:
        """cid -> stage of every stored candidate."""
        return {row.cid: row.stage for row in self.db.select(columns=["key_value_pairs"])}

    def table(self) -> list[dict[str, Any]]:
        """Key-value pairs (plus ``formula``) of every candidate, ordered by input index."""
        rows = [{**row.key_value_pairs, "formula": row.formula} for row in self.db.select()]
        return sorted(rows, key=lambda r: r.get("index", 0))

    def crystal(self, row: Any) -> Crystal:
        """The stored (relaxed, when there is one) crystal of a row, with its key-value pairs."""
        initial = _crystal_from_dict(row.data["initial"])
        atoms = row.toatoms()
        props = {**dict(initial.properties), **dict(row.key_value_pairs)}
        return Crystal(
            lattice=atoms.cell[:],
            frac_coords=atoms.get_scaled_positions(wrap=True),
            species=atoms.numbers,
            properties=props,
            site_occupancies=initial.site_occupancies,
        )

    def initial(self, row: Any) -> Crystal:
        """The submitted crystal of a row."""
        return _crystal_from_dict(row.data["initial"])

    def export(
        self, out: str | Path, query: str | None = None, fmt: str | None = None
    ) -> list[Path]:
        """Write the selected candidates (relaxed structures) to CIF / extxyz / a folder."""
        from xtalgen.io import write

        crystals = [self.crystal(row) for row in self.rows(query)]
        if not crystals:
            raise XtalgenError(f"no candidate matches {query!r}")
        return write(crystals, out, fmt)

    def set_metadata(self, **items: Any) -> None:
        """Merge items into the database metadata (run settings, summary metrics)."""
        meta = dict(self.db.metadata)
        meta.update(_plain(items))
        self.db.metadata = meta

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self.db.metadata)


def _bare_atoms(crystal: Crystal) -> Any:
    from ase import Atoms

    return Atoms(
        numbers=crystal.species,
        cell=crystal.lattice,
        scaled_positions=crystal.frac_coords,
        pbc=True,
    )


def select_cids(store: CandidateStore, cids: Sequence[str]) -> list[Any]:
    """Rows of the given candidate ids, in that order."""
    return [store.db.get(cid=cid) for cid in cids]
