"""``xtalgen xrd-match``: which generated structure fits a measured powder pattern?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("xrd-match")(xrd_match)


def xrd_match(
    pattern: Annotated[Path, typer.Argument(
        help="Two-column text file: 2-theta (degrees) and intensity; whitespace or commas, "
        "'#' comments and one header line allowed.")],
    composition: Annotated[str, typer.Option(
        help="Composition of the sample, e.g. NaCl or Na4Cl4 (one cell for the learned "
        "generators; more than the reduced formula also fixes the formula units).")],
    generator: Annotated[list[str] | None, typer.Option(
        help="Candidate generator, repeatable: substitution, random-search, evolution, "
        "templated (MP-20 templates refined by mp20-csp-flow; templated:CHECKPOINT for "
        "another), or a checkpoint name/file (mp20-csp-flow, mp20-csp-wyckoff, ...). "
        "Default: substitution and templated.")] = None,
    n: Annotated[int, typer.Option(help="Candidates per generator.")] = 20,
    wavelength: Annotated[str, typer.Option(
        help="X-ray wavelength: a tube line (CuKa, CuKa1, MoKa, ...) or angstrom.")] = "CuKa",
    relax: Annotated[bool, typer.Option(
        help="Relax the candidates before scoring (CHGNet unless --potential).")] = True,
    relax_steps: Annotated[int, typer.Option(help="FIRE step cap per relaxation.")] = 100,
    potential: Annotated[str, typer.Option(
        help="Potential for the relaxation: chgnet, emt, or package.module:factory.")] = "chgnet",
    top: Annotated[int, typer.Option(
        help="Distinct best candidates written as CIF + PNG.")] = 5,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("xrd_match"),
    fwhm: Annotated[float, typer.Option(
        help="Peak width (FWHM, degrees 2-theta) of the simulated patterns.")] = 0.1,
    width: Annotated[float, typer.Option(
        help="Half-width (degrees) of the similarity's shift tolerance (WCC triangle).")] = 1.0,
    max_strain: Annotated[float, typer.Option(
        help="Largest isotropic cell rescaling tried per candidate (fraction).")] = 0.05,
    flow_steps: Annotated[int | None, typer.Option(
        help="Integration steps of flow/diffusion generators (default: the checkpoint's).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of every generator.")] = 0,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Rank generated crystal structures by how well their powder patterns fit PATTERN.

    Candidates of --composition come from each --generator (a generator that fails is
    reported and skipped), are relaxed (--no-relax skips it), and their simulated patterns
    (pymatgen, pseudo-Voigt peaks of --fwhm) are compared with the measured one by a weighted
    cross-correlation that tolerates small peak shifts and missing peaks, after fitting a zero
    shift and the cell size. The best --top distinct candidates go to --out as CIFs with a PNG
    each (measured vs simulated), and the whole ranking as ranking.csv and ranking.json.
    """
    from rich.console import Console
    from rich.table import Table

    from xtalgen.diffraction import MatchSettings, read_pattern
    from xtalgen.errors import XtalgenError
    from xtalgen.pipelines.xrd_match import DEFAULT_GENERATORS, XRDMatchConfig, write_results
    from xtalgen.pipelines.xrd_match import xrd_match as run_match

    for name, value in (("--n", n), ("--top", top)):
        if value < 1:
            raise XtalgenError(f"{name} must be at least 1, got {value}")
    if not fwhm > 0 or not width > 0 or not 0 <= max_strain < 0.5:
        raise XtalgenError("--fwhm and --width must be positive, --max-strain in [0, 0.5)")
    measured = read_pattern(pattern, wavelength)
    settings = MatchSettings(fwhm=fwhm, width=width, max_strain=max_strain)
    config = XRDMatchConfig(
        generators=tuple(generator) if generator else DEFAULT_GENERATORS, n=n, relax=relax,
        relax_steps=relax_steps, potential=potential, top=top, seed=seed,
        flow_steps=flow_steps, match=settings, progress=progress,
    )
    result = run_match(measured, composition, config)
    for failure in result.failures:
        typer.echo(f"warning: generator {failure}; skipped", err=True)
    written = write_results(result, measured, out, settings)
    console = Console()
    made = ", ".join(f"{name} {count}" for name, count in result.n_generated.items())
    console.print(f"{len(result.ranked)} candidates ({made}) scored against {pattern} "
                  f"({measured.range[0]:g}-{measured.range[1]:g} degrees, "
                  f"{measured.wavelength:g} A)")
    table = Table(title="best matches (weighted cross-correlation, 1 = identical)")
    for col in ("rank", "score", "formula", "space group", "generator", "cell scale", "file"):
        table.add_column(col)
    for position, (candidate, path) in enumerate(zip(result.top, written["cif"]), start=1):
        table.add_row(str(position), f"{candidate.score:.3f}", candidate.formula,
                      candidate.spacegroup, candidate.generator, f"{candidate.scale:.3f}",
                      path.name)
    console.print(table)
    console.print(f"CIFs, plots and ranking.csv in {out}")
