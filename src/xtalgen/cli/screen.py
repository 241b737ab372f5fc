"""``xtalgen screen``, ``xtalgen relax`` and ``xtalgen candidates``: stability screening."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer

from xtalgen.cli.options import parse_supercell


def register(app: typer.Typer) -> None:
    app.command("screen")(screen)
    app.command("relax")(relax)
    app.command("candidates")(candidates)


def _read(path: Path) -> list:
    from xtalgen import io as xio

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = xio.read_many(path, progress=path.is_dir())
    for bad, reason in result.errors:
        typer.echo(f"warning: skipped {bad}: {reason}", err=True)
    if not result.crystals:
        raise xio.StructureFileError(path, "no readable structures")
    return result.crystals


def _parse_reject(text: str) -> tuple[tuple[int, float], ...]:
    from xtalgen.errors import XtalgenError

    if text.strip().lower() in ("", "none"):
        return ()
    try:
        pairs = [item.split(":") for item in text.split(",")]
        return tuple((int(step), float(limit)) for step, limit in pairs)
    except ValueError:
        raise XtalgenError(
            f"--reject-ehull must look like 50:2.0,100:1.2,200:0.5, got {text!r}"
        ) from None


def screen(
    samples: Annotated[Path, typer.Argument(help="Structure file or folder (CIF, extxyz, ...).")],
    db: Annotated[
        str, typer.Option(help="Candidate database: .db file or postgresql:// URL.")
    ] = "candidates.db",
    potential: Annotated[
        str, typer.Option(help="chgnet, emt, or package.module:factory.")
    ] = "chgnet",
    fmax: Annotated[float, typer.Option(help="Force criterion, eV/A.")] = 0.1,
    max_steps: Annotated[int, typer.Option(help="Step cap per relaxation.")] = 300,
    workers: Annotated[
        int | None, typer.Option(help="Local worker processes (default: cores).")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(help="Relax this many per task in lockstep (batched potential calls).")
    ] = 1,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address (tcp://...).")
    ] = None,
    novelty_reference: Annotated[
        str, typer.Option(help="NAME:SPLIT or path of known structures; 'none' skips novelty.")
    ] = "mp20:offline_train",
    hull_reference: Annotated[
        Path | None, typer.Option(help="Folder of a hull reference (default: bundled MP-20).")
    ] = None,
    reject_ehull: Annotated[
        str,
        typer.Option(
            help="Early rejection STEP:EHULL,... (eV/atom): stop a relaxation still "
            "above EHULL at STEP; 'none' disables."
        ),
    ] = "50:2.0,100:1.2,200:0.5",
    plots: Annotated[
        bool, typer.Option(help="Write E_hull histogram and S.U.N. funnel PNGs.")
    ] = True,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    order: Annotated[
        int,
        typer.Option(
            help="Disordered inputs (partial occupancies): also screen up to N orderings of "
            "each, and report the lowest E_hull per parent. 0: disordered inputs are listed "
            "and skipped, never relaxed as their majority species."
        ),
    ] = 0,
    order_method: Annotated[
        str,
        typer.Option(
            help="ewald: symmetry-distinct orderings of lowest Ewald energy (pymatgen; enumlib "
            "where installed); sqs: special quasirandom structures (icet), one per seed."
        ),
    ] = "ewald",
    order_supercell: Annotated[
        str | None,
        typer.Option(help="Supercell of the orderings, e.g. 2x2x1 (default: the smallest in "
                     "which every occupancy gives whole atoms)."),
    ] = None,
    synthesizability: Annotated[
        str | None,
        typer.Option(help="Score each ranked candidate's relaxed structure with a "
                     "synthesisability predictor (shipped name such as mpts52-synthesizability, "
                     "'default' for it, or a checkpoint .pt) into the key 'synthesizability'."),
    ] = None,
    rank_by: Annotated[
        str,
        typer.Option(help="Ranking keys, best first: e_above_hull (ascending), "
                     "formation_energy (ascending), synthesizability (descending). Lexicographic; "
                     "every key but the last is rounded to its resolution (E_hull: nearest "
                     "multiple of 0.025 eV/atom; KEY:RES overrides, 0 = exact), so "
                     "e_above_hull,synthesizability puts the more synthesisable first among "
                     "candidates in the same 0.025 eV/atom step."),
    ] = "e_above_hull",
) -> None:
    """Validity, deduplication, relaxation, E_hull, S.U.N., ranking; everything into --db.

    Resumable: run the same command again after an interruption and it continues.
    A disordered input is never relaxed as if it were ordered: it is named (file and site)
    and skipped, or, with --order N, its orderings are screened with provenance to it.
    """
    from rich.console import Console
    from rich.table import Table

    from xtalgen.screen import ScreenConfig
    from xtalgen.screen import screen as run_screen
    from xtalgen.screen.report import plot_ehull_histogram, plot_sun_funnel, summary_rows
    from xtalgen.screen.store import CandidateStore

    crystals = _read(samples)
    config = ScreenConfig(
        potential=potential,
        fmax=fmax,
        max_steps=max_steps,
        n_workers=workers,
        scheduler=scheduler,
        batch_size=batch_size,
        novelty_reference=None if novelty_reference.lower() == "none" else novelty_reference,
        hull_reference=str(hull_reference) if hull_reference else None,
        reject_ehull=_parse_reject(reject_ehull),
        progress=progress,
        order=order,
        order_method=order_method,
        order_supercell=parse_supercell(order_supercell, "--order-supercell"),
        synthesizability=synthesizability,
        rank_by=tuple(k.strip() for k in rank_by.split(",") if k.strip()),
    )
    if order_method not in ("ewald", "sqs"):
        from xtalgen.errors import XtalgenError

        raise XtalgenError(f"--order-method must be ewald or sqs, got {order_method!r}")
    store = CandidateStore(db)
    summary = run_screen(crystals, store, config)
    console = Console()
    for message in summary.disordered:
        action = f"screened through its orderings (--order {order})" if order else (
            "skipped (use --order N to screen its orderings)")
        typer.echo(f"warning: {message}; {action}", err=True)
    stages = ", ".join(f"{k} {v}" for k, v in sorted(summary.stages.items()))
    console.print(
        f"{summary.n_submitted} candidates in {db} ({stages}); computed "
        f"{summary.n_computed_this_run} this run in {summary.wall_s:.1f} s"
    )
    if summary.metrics:
        table = Table(title="stability (fractions of all submitted)")
        for col in ("metric", "mattergen (<= 0.1)", "strict (<= 0)"):
            table.add_column(col)
        for row in summary_rows(summary.metrics):
            table.add_row(*row)
        console.print(table)
    if summary.top:
        scored = any("synthesizability" in r for r in summary.top)
        top = Table(title=f"best ranked (unique; by {rank_by})")
        for col in ("rank", "cid", "formula", "E_hull eV/atom", "S.U.N.",
                    *(("synthesizability",) if scored else ())):
            top.add_column(col)
        for r in summary.top:
            cells = [
                str(r["rank"]),
                r["cid"],
                r.get("formula", ""),
                f"{r['e_above_hull']:.3f}",
                "yes" if r.get("sun_mattergen") else "",
            ]
            if scored:
                score = r.get("synthesizability")
                cells.append("-" if score is None else f"{score:.3f}")
            top.add_row(*cells)
        console.print(top)
    if summary.parents and order:
        parents = Table(title="disordered inputs: lowest E_hull over their orderings")
        for col in ("parent", "formula", "orderings", "best ordering", "E_hull eV/atom"):
            parents.add_column(col)
        for p in summary.parents:
            e = p.get("best_e_above_hull")
            parents.add_row(
                str(p.get("source") or p.get("cid")),
                str(p.get("composition") or ""),
                str(p.get("n_orderings") or 0),
                str(p.get("best_ordering") or "-"),
                "-" if e is None else f"{e:.3f}",
            )
        console.print(parents)
    if plots and "://" not in db:
        stem = Path(db).with_suffix("")
        a = plot_ehull_histogram(store, f"{stem}_ehull_hist.png")
        b = plot_sun_funnel(store, f"{stem}_sun_funnel.png")
        console.print(f"plots: {a}, {b}")


def relax(
    file: Annotated[Path, typer.Argument(help="Structure file or folder.")],
    out: Annotated[Path, typer.Option(help="Output file (.cif, .extxyz, ...) or folder.")],
    potential: Annotated[
        str, typer.Option(help="chgnet, emt, or package.module:factory.")
    ] = "chgnet",
    fmax: Annotated[float, typer.Option(help="Force criterion, eV/A.")] = 0.1,
    max_steps: Annotated[int, typer.Option(help="Step cap.")] = 500,
) -> None:
    """Relax structures (positions and cell); energies and RMSD go to the output's properties."""
    from xtalgen import io as xio
    from xtalgen.disorder import require_ordered
    from xtalgen.relax import get_potential
    from xtalgen.relax import relax as run_relax

    crystals = _read(file)
    require_ordered(crystals, "relax", hint="order it first: xtalgen screen --order N")
    results = run_relax(
        crystals, potential=get_potential(potential), fmax=fmax, max_steps=max_steps
    )
    done = []
    for i, res in enumerate(results):
        if res.crystal is None:
            typer.echo(f"failed: structure {i} ({res.initial.formula}): {res.error}", err=True)
            continue
        if res.error:
            typer.echo(f"warning: structure {i}: {res.error}", err=True)
        done.append(
            res.crystal.with_properties(
                energy_per_atom=res.energy_per_atom,
                n_steps=res.n_steps,
                converged=res.converged,
                rmsd=res.rmsd,
            )
        )
    if done:
        xio.write(done, out)
    typer.echo(f"relaxed {len(done)} of {len(results)} structure(s) into {out}")
    if len(done) < len(results):
        raise SystemExit(1)


def candidates(
    db: Annotated[str, typer.Argument(help="Candidate database (.db or postgresql:// URL).")],
    query: Annotated[str, typer.Argument(help="ase db query, e.g. 'sun_mattergen=1'.")] = "",
    out: Annotated[Path | None, typer.Option(help="Export to .cif / .extxyz / a folder.")] = None,
) -> None:
    """List (or export with --out) the candidates matching an ``ase db`` query."""
    from xtalgen.screen.store import CandidateStore

    store = CandidateStore(db)
    if out is not None:
        paths = store.export(out, query or None)
        typer.echo(f"exported to {paths[0] if len(paths) == 1 else f'{len(paths)} files'}")
        return
    for row in store.rows(query or None):
        e = row.get("e_above_hull")
        score = row.get("synthesizability")
        typer.echo(
            f"{row.get('cid')}  {row.formula:<14} {row.get('stage'):<9} "
            f"E_hull={'nan' if e is None else f'{e:.3f}'}"
            + ("" if score is None else f"  synthesizability={score:.3f}")
        )
