"""``xtalgen symmetry FILE``: space group, crystal system and Wyckoff sites of each structure."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from xtalgen.crystal import Crystal


def register(app: typer.Typer) -> None:
    app.command("symmetry")(symmetry)


def symmetry(
    path: Annotated[Path, typer.Argument(help="Structure file: CIF, POSCAR, extxyz or JSON.")],
    symprec: Annotated[
        float, typer.Option("--symprec", help="Distance tolerance in angstrom.", min=1e-6)
    ] = 0.1,
    angle_tolerance: Annotated[
        float, typer.Option("--angle-tolerance", help="Angle tolerance in degrees.", min=0.0)
    ] = 5.0,
) -> None:
    """Space group, crystal system and Wyckoff sites of each structure in a file.

    Symmetry comes from spglib (through pyxtal) at --symprec angstrom.
    The Wyckoff table lists the symmetry-distinct sites of the conventional
    cell: element, Wyckoff position, site symmetry and the fractional
    coordinates of the representative position.
    """
    from xtalgen import io as xio

    crystals = xio.read(path)
    for index, crystal in enumerate(crystals):
        if index:
            typer.echo("")
        _report(crystal, symprec, angle_tolerance)


def _report(crystal: Crystal, symprec: float, angle_tolerance: float) -> None:
    from rich.console import Console
    from rich.padding import Padding
    from rich.table import Table

    from xtalgen.errors import XtalgenError
    from xtalgen.representations import wyckoff as W

    console = Console(highlight=False, soft_wrap=True)
    source = crystal.properties.get("source", "structure")
    console.print(
        f"[bold]{source}[/bold]: {crystal.formula} ({crystal.num_sites} sites in the cell)"
    )
    if not crystal.is_ordered:
        number, symbol = _spacegroup_of(crystal, symprec, angle_tolerance)
        console.print(f"  space group      {symbol} ({number}), {W.crystal_system(number)}")
        from xtalgen.disorder import disordered_sites, site_label

        first = site_label(crystal, disordered_sites(crystal)[0])
        console.print(f"  Wyckoff sites    not available: {first} is partially occupied (the "
                      "space group above treats each mixed occupancy as one species)")
        return
    try:
        rep = W.encode(crystal, symprec, angle_tolerance, fallback_symprecs=())
    except XtalgenError as exc:
        raise XtalgenError(f"{source}: {exc}") from None
    a, b, c, alpha, beta, gamma = rep.lattice_params
    console.print(
        f"  space group      {_symbol(rep.spacegroup)} ({rep.spacegroup}), {rep.crystal_system}"
    )
    console.print(
        f"  conventional     a={a:.4f} b={b:.4f} c={c:.4f} A, alpha={alpha:.2f} beta={beta:.2f} "
        f"gamma={gamma:.2f} deg, {rep.num_sites} sites"
    )
    console.print(f"  Wyckoff          {rep.compact}")
    table = Table(box=None, padding=(0, 2), pad_edge=False)
    for column in ("element", "wyckoff", "site symmetry", "x", "y", "z"):
        table.add_column(column, justify="right" if column in "xyz" else "left")
    for site in rep.sites:
        x, y, z = W.site_orbit(rep.spacegroup, site)[0]
        table.add_row(
            site.element, site.label, _site_symmetry(rep.spacegroup, site.letter),
            f"{x:.5f}", f"{y:.5f}", f"{z:.5f}",
        )  # fmt: skip
    console.print(Padding(table, (0, 0, 0, 2), expand=False))


def _symbol(spacegroup: int) -> str:
    from pyxtal.symmetry import Group

    return str(Group(spacegroup).symbol)


def _site_symmetry(spacegroup: int, letter: str) -> str:
    from pyxtal.symmetry import Wyckoff_position

    wp = Wyckoff_position.from_group_and_letter(spacegroup, letter)
    wp.get_site_symmetry()  # sets wp.site_symm, e.g. '4/mm.m'
    return str(wp.site_symm or "")


def _spacegroup_of(crystal: Crystal, symprec: float, angle_tolerance: float) -> tuple[int, str]:
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    sga = SpacegroupAnalyzer(
        crystal.to_pymatgen(), symprec=symprec, angle_tolerance=angle_tolerance
    )
    return int(sga.get_space_group_number()), str(sga.get_space_group_symbol())
