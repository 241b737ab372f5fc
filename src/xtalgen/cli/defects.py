"""``xtalgen defects``: neutral point defects of one host and their formation energies."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Annotated

import typer

from xtalgen.cli.options import parse_supercell


def register(app: typer.Typer) -> None:
    app.command("defects")(defects)


def _parse_substitutions(text: str | None) -> dict[str, list[str]]:
    """``"Li:Na,O:F,Li:K"`` -> {"Li": ["Na", "K"], "O": ["F"]} (host element : dopant)."""
    from xtalgen.crystal import atomic_number, element_symbol
    from xtalgen.errors import XtalgenError

    out: dict[str, list[str]] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        parts = [p.strip() for p in item.split(":")]
        if len(parts) != 2 or not all(parts):
            raise XtalgenError(
                f"--substitutions looks like Li:Na,O:F (host element:dopant), got {item.strip()!r}"
            )
        symbols = []
        for p in parts:
            try:
                symbols.append(element_symbol(atomic_number(p)))
            except XtalgenError:
                raise XtalgenError(
                    f"unknown element {p!r} in --substitutions {item.strip()}"
                ) from None
        out.setdefault(symbols[0], []).append(symbols[1])
    return out


def _parse_elements(text: str | None) -> list[str]:
    from xtalgen.crystal import atomic_number, element_symbol
    from xtalgen.errors import XtalgenError

    out = []
    for item in (text or "").split(","):
        if item.strip():
            try:
                out.append(element_symbol(atomic_number(item)))
            except XtalgenError:
                raise XtalgenError(f"unknown element {item.strip()!r} in --interstitials") from None
    return out


def _read_host(path: Path):
    from xtalgen import io as xio
    from xtalgen.disorder import disorder_message
    from xtalgen.errors import XtalgenError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        crystals = xio.read(path)
    if len(crystals) != 1:
        raise XtalgenError(f"{path}: holds {len(crystals)} structures; defects takes one host")
    host = crystals[0]
    refusal = disorder_message(host, "defect generation", str(path))
    if refusal:
        raise XtalgenError(refusal + " (order it first: xtalgen screen --order N)")
    return host


def _fmt(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.3f}"


def defects(
    file: Annotated[Path, typer.Argument(help="Host structure file (one ordered crystal).")],
    vacancies: Annotated[bool, typer.Option(help="One vacancy per symmetry-distinct site.")] = True,
    substitutions: Annotated[
        str | None,
        typer.Option(
            help="HOST:DOPANT,... e.g. Li:Na,O:F: put the dopant on each distinct site of the "
            "host element (Li:Na = Na on Li sites). Repeat a host element for several dopants."
        ),
    ] = None,
    interstitials: Annotated[
        str | None,
        typer.Option(
            help="Elements to insert, e.g. Li,H: one interstitial per element on each "
            "symmetry-distinct Voronoi node of the host. Omitted: no interstitials."
        ),
    ] = None,
    supercell: Annotated[
        str,
        typer.Option(
            help="Supercell of the host cell, e.g. 2x2x2; auto: smallest diagonal one with "
            "every lattice vector >= 10 A."
        ),
    ] = "auto",
    potential: Annotated[
        str, typer.Option(help="chgnet, emt, or package.module:factory.")
    ] = "chgnet",
    fmax: Annotated[
        float, typer.Option(help="Force criterion of the defect relaxations, eV/A.")
    ] = 0.05,
    max_steps: Annotated[int, typer.Option(help="Step cap per defect relaxation.")] = 300,
    db: Annotated[
        str | None,
        typer.Option(
            help="Candidate database (.db or postgresql:// URL) for the host and defects."
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the table as CSV.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Symmetry-distinct point defects of a host and their neutral formation
    energies (eV).

    The host is relaxed (cell and positions) with the potential; each defect
    supercell is relaxed at that fixed cell. E_f = E_def - E_host - sum n_i mu_i
    is reported at every corner of the host's stability region on the bundled
    MP-20 hull: mu = elemental reference + the corner's delta mu, shifted so
    that the host's own energy is matched (elemental host: mu = E per atom).
    A corner is named by the phases coexisting with the host there (for NaCl:
    Na = Na-rich, Cl2 = Cl-rich). The default corner is the one richest in the
    element the defect removes (vacancy, substitution) or adds (interstitial).

    An approximation: neutral defects only (no charge states), no finite-size
    correction. Host, defects and E_f per corner go to --db with provenance.
    """
    from rich.console import Console
    from rich.table import Table

    from xtalgen.defects import (
        APPROXIMATION,
        defect_formation_energies,
        generate_defects,
        relax_host,
    )
    from xtalgen.errors import XtalgenError
    from xtalgen.relax import get_potential

    cell = parse_supercell(supercell)
    subs = _parse_substitutions(substitutions)
    inserts = _parse_elements(interstitials)
    if not (vacancies or subs or inserts):
        raise XtalgenError(
            "no defect kind chosen: use --vacancies, --substitutions HOST:DOPANT or "
            "--interstitials ELEMENTS"
        )
    if not file.exists():
        raise XtalgenError(f"{file}: no such file")
    host = _read_host(file)
    if not fmax > 0:
        raise XtalgenError(f"--fmax must be positive, got {fmax}")
    missing = sorted(set(subs) - set(host.symbols))
    if missing:
        raise XtalgenError(
            f"--substitutions: {', '.join(missing)} not in the host {host.formula} ({file})"
        )
    pot = get_potential(potential)
    console = Console()
    host_result = relax_host(host, pot)
    if host_result.error:
        typer.echo(f"warning: host relaxation: {host_result.error}", err=True)
    relaxed = host_result.crystal
    found = generate_defects(
        relaxed, vacancies=vacancies, substitutions=subs, interstitials=inserts, supercell=cell
    )
    if not found:
        raise XtalgenError(f"{file}: no defect of the kinds asked for was generated")
    foreign = {el for d in found for el in (d.added,) if el} - set(relaxed.symbols)
    if pot.settings.get("toy") and (len(set(relaxed.symbols)) > 1 or foreign):
        typer.echo(
            f"warning: {pot.name} energies are not on the MP scale of the hull's chemical "
            "potentials; only an elemental host's own vacancies and interstitials are meaningful",
            err=True,
        )
    results = defect_formation_energies(
        relaxed,
        found,
        potential=pot,
        fmax=fmax,
        max_steps=max_steps,
        relax_host_first=False,
        progress=progress,
    )
    if db:
        _store(db, file, relaxed, host_result, results, pot)
    mu = results[0].chemical_potentials if results else None
    if mu is not None and len(set(relaxed.symbols)) > 1 and mu.host_e_above_hull > 0.1:
        typer.echo(
            f"warning: with {pot.name}'s energy the host is {mu.host_e_above_hull:.2f} eV/atom "
            "above the reference hull; the chemical potentials are those of the phases it "
            "decomposes into",
            err=True,
        )

    table = Table(
        title=f"neutral point defects of {relaxed.formula} ({pot.name}, "
        f"{found[0].supercell_label} supercell)"
    )
    for col in (
        "defect",
        "kind",
        "mult.",
        "E_f eV (corner)",
        "E_f range eV",
        "steps",
        "seconds",
    ):
        table.add_column(col)
    for r in results:
        low, high = r.formation_energy_range
        table.add_row(
            r.name,
            r.defect.kind,
            str(r.defect.multiplicity),
            f"{_fmt(r.formation_energy_default)} ({r.default})",
            f"{_fmt(low)} to {_fmt(high)}",
            str(r.n_steps),
            f"{r.wall_s:.1f}",
        )
    console.print(table)
    if mu is not None:
        console.print(f"corners (phases coexisting with the host): {', '.join(mu.mu)}")
    console.print(f"approximation: {APPROXIMATION}")
    for r in results:
        if r.error:
            typer.echo(f"warning: {r.name}: {r.error}", err=True)
    if out is not None:
        _write_csv(out, results)
        console.print(f"table written to {out}")
    if db:
        console.print(f"host and {len(results)} defect(s) stored in {db}")


def _write_csv(path: Path, results: list) -> None:
    import pandas as pd

    corners = sorted({c for r in results for c in r.formation_energy})
    rows = []
    for r in results:
        low, high = r.formation_energy_range
        row = {
            "defect": r.name,
            "kind": r.defect.kind,
            "site": " ".join(f"{x:.4f}" for x in r.defect.site),
            "multiplicity": r.defect.multiplicity,
            "supercell": r.defect.supercell_label,
            "default_corner": r.default,
            "formation_energy_default_eV": r.formation_energy_default,
            "formation_energy_min_eV": low,
            "formation_energy_max_eV": high,
        }
        row.update({f"E_f[{c}]_eV": r.formation_energy.get(c, math.nan) for c in corners})
        row.update(
            {
                "n_steps": r.n_steps,
                "converged": r.converged,
                "seconds": r.wall_s,
                "error": r.error or "",
            }
        )
        rows.append(row)
    pd.DataFrame(rows).to_csv(path, index=False, float_format="%.4f")


def _store(db: str, file: Path, host, host_result, results: list, pot) -> None:
    """Host and defects into the candidate store: one row each, provenance in the pairs."""
    from xtalgen.defects import APPROXIMATION
    from xtalgen.screen.store import CandidateStore

    store = CandidateStore(db)
    parent = file.name
    existing = set(store.stages())

    def put(cid: str, initial, relaxed, index: int, data: dict, **kvp) -> None:
        if cid not in existing:
            store.add(cid, initial, index, parent=parent, potential=pot.name, **kvp)
        store.update(cid, crystal=relaxed, data=data, **kvp)

    put(
        f"{parent}#host",
        host,
        host_result.crystal,
        0,
        {"approximation": APPROXIMATION, "chemical_potentials": results[0].mu if results else {}},
        stage="relaxed" if host_result.ok else "failed",
        defect_kind="host",
        energy_per_atom=host_result.energy_per_atom,
    )
    for i, r in enumerate(results, start=1):
        d = r.defect
        low, high = r.formation_energy_range
        put(
            f"{parent}#{d.name}@{d.supercell_label}",
            d.crystal,
            r.crystal,
            i,
            {"formation_energy_by_corner": r.formation_energy, "site": list(d.site)},
            stage="relaxed" if r.crystal is not None else "failed",
            defect=d.name,
            defect_kind=d.kind,
            defect_removed=d.removed or "",
            defect_added=d.added or "",
            defect_multiplicity=d.multiplicity,
            supercell=d.supercell_label,
            defect_corner=r.default,
            defect_formation_energy=r.formation_energy_default,
            defect_formation_energy_min=low,
            defect_formation_energy_max=high,
            n_steps=r.n_steps,
            converged=r.converged,
            error=r.error,
            seconds=r.wall_s,
        )
