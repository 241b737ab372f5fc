"""The reference entries of the convex hull: formation energies plus elemental energies.

The bundled reference (``files/``, built by :func:`build_mp20_reference`) holds the DFT
formation energies (eV/atom) of the ~36,700 MP-20 entries kept in LeMat-GenBench's hull files
(union over its four potentials' files) and the MP2020-corrected energies (eV/atom) of the
lowest-energy Materials Project entry of 89 elements (2023-02-07 release). See files/README.md.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from xtalgen.errors import XtalgenError

if TYPE_CHECKING:
    import pandas as pd
    from pymatgen.entries.computed_entries import ComputedEntry

__all__ = [
    "ELEMENTAL_FILE",
    "REFERENCE_FILE",
    "HullReference",
    "build_mp20_reference",
    "load_reference",
]

REFERENCE_FILE = "mp20_formation_energies.csv.gz"
ELEMENTAL_FILE = "mp_elemental_references_2023-02-07.json"


@dataclass(frozen=True)
class HullReference:
    """Reference compounds in formation-energy space and the elemental chemical potentials.

    ``formulas``: reduced formulas; ``formation_energy_per_atom``: eV/atom against the elements;
    ``ids``: material ids; ``elemental_energy_per_atom``: element symbol -> energy (eV/atom) of
    the elemental reference in the same correction scheme as the energies placed on the hull.
    """

    name: str
    formulas: tuple[str, ...]
    formation_energy_per_atom: np.ndarray
    ids: tuple[str, ...]
    elemental_energy_per_atom: dict[str, float]
    correction: str = "MP2020"

    def __len__(self) -> int:
        return len(self.formulas)

    @classmethod
    def from_entries(
        cls,
        entries: Iterable[ComputedEntry],
        elemental: Iterable[ComputedEntry] | None = None,
        *,
        name: str = "user",
        correction: str = "MP2020",
    ) -> HullReference:
        """A reference from a user's total-energy entries (pymatgen ComputedEntry, eV).

        Energies must already be corrected in the scheme named by ``correction``. Elemental
        chemical potentials are the lowest energy per atom of each element among
        ``elemental`` (default: the unary entries of ``entries``).
        """
        entries = list(entries)
        pool = list(elemental) if elemental is not None else entries
        mu: dict[str, float] = {}
        for entry in pool:
            if len(entry.composition.elements) == 1:
                el = entry.composition.elements[0].symbol
                mu[el] = min(mu.get(el, np.inf), entry.energy_per_atom)
        formulas, energies, ids = [], [], []
        for i, entry in enumerate(entries):
            comp = entry.composition
            missing = [el.symbol for el in comp.elements if el.symbol not in mu]
            if missing:
                raise XtalgenError(
                    f"reference entry {comp.reduced_formula}: no elemental "
                    f"reference for {', '.join(missing)}"
                )
            e_form = entry.energy_per_atom - sum(
                comp.get_atomic_fraction(el) * mu[el.symbol] for el in comp.elements
            )
            formulas.append(comp.reduced_formula)
            energies.append(e_form)
            ids.append(str(entry.entry_id or f"entry-{i}"))
        return cls(name, tuple(formulas), np.asarray(energies, float), tuple(ids), mu, correction)

    def save(self, folder: str | Path) -> Path:
        """Write the two reference files to ``folder`` (readable by :func:`load_reference`)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.to_frame().to_csv(folder / REFERENCE_FILE, index=False, float_format="%.6f")
        elements = {
            k: {"energy_per_atom": round(float(v), 8)}
            for k, v in sorted(self.elemental_energy_per_atom.items())
        }
        payload = {"name": self.name, "correction": self.correction, "elements": elements}
        (folder / ELEMENTAL_FILE).write_text(json.dumps(payload, indent=1) + "\n")
        return folder

    def to_frame(self) -> pd.DataFrame:
        """The compounds as a DataFrame (formula, formation_energy_per_atom, material_id)."""
        import pandas as pd

        return pd.DataFrame(
            {
                "formula": self.formulas,
                "formation_energy_per_atom": self.formation_energy_per_atom,
                "material_id": self.ids,
            }
        )


def _files() -> Path:
    return Path(str(resources.files("xtalgen.relax") / "files"))


def load_reference(folder: str | Path | None = None) -> HullReference:
    """The bundled MP-20 reference (or one written by :func:`build_mp20_reference` to ``folder``)."""
    import pandas as pd

    folder = Path(folder) if folder is not None else _files()
    table_path, elemental_path = folder / REFERENCE_FILE, folder / ELEMENTAL_FILE
    for path in (table_path, elemental_path):
        if not path.is_file():
            raise XtalgenError(f"hull reference file not found: {path}")
    table = pd.read_csv(table_path)
    elemental = json.loads(elemental_path.read_text())
    return HullReference(
        name=elemental.get("name", "mp20"),
        formulas=tuple(table["formula"]),
        formation_energy_per_atom=table["formation_energy_per_atom"].to_numpy(float),
        ids=tuple(table["material_id"]),
        elemental_energy_per_atom={
            k: float(v["energy_per_atom"]) for k, v in elemental["elements"].items()
        },
        correction=elemental.get("correction", "MP2020"),
    )


def build_mp20_reference(
    parquet_paths: Sequence[str | Path], elemental_json_gz: str | Path, out: str | Path
) -> Path:
    """Write the compact reference from LeMat-GenBench's MP-20 hull parquets and MP elements.

    Keeps material_id, reduced formula and the MP-20 DFT formation energy (eV/atom, 6 decimals)
    of the union of the parquets' entries, plus the energy per atom of each elemental entry.
    """
    import pandas as pd
    from pymatgen.entries.computed_entries import ComputedEntry

    frames = [
        pd.read_parquet(p, columns=["material_id", "pretty_formula", "formation_energy_per_atom"])
        for p in parquet_paths
    ]
    table = pd.concat(frames).drop_duplicates("material_id").sort_values("material_id")
    table = table.rename(columns={"pretty_formula": "formula"})
    table = table[["formula", "formation_energy_per_atom", "material_id"]]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / REFERENCE_FILE, index=False, float_format="%.6f")
    with gzip.open(elemental_json_gz, "rt") as handle:
        raw = json.load(handle)
    elements = {}
    for symbol, data in sorted(raw.items()):
        entry = ComputedEntry.from_dict(data)
        elements[symbol] = {
            "energy_per_atom": round(entry.energy_per_atom, 8),
            "entry_id": entry.entry_id,
        }
    payload = {
        "name": "mp20-lematbench+mp-elements-2023-02-07",
        "correction": "MP2020",
        "elements": elements,
    }
    (out / ELEMENTAL_FILE).write_text(json.dumps(payload, indent=1) + "\n")
    return out
