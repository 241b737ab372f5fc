"""``xtalgen search``: run a search generator on a composition with a budget, write the results.

``xtalgen sample random-search ...`` runs the same generators with their defaults; this command
exposes the search settings (relaxation, budget, template pool).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

METHODS = ("random-search", "substitution", "evolution")


def register(app: typer.Typer) -> None:
    app.command("search")(search)


def search(
    method: Annotated[str, typer.Argument(help="random-search, substitution or evolution.")],
    composition: Annotated[
        str | None,
        typer.Option("--composition", help="Composition to search, e.g. Li2MnO3 (omit for DNG)."),
    ] = None,
    n: Annotated[int, typer.Option("--n", help="Crystals to return (best first).")] = 5,
    spacegroup: Annotated[int | None, typer.Option("--spacegroup", help="Space group 1-230.")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    relax: Annotated[
        bool, typer.Option("--relax/--no-relax", help="Relax candidates with the potential.")
    ] = True,
    potential: Annotated[str, typer.Option("--potential", help="Registered potential.")] = "chgnet",
    max_steps: Annotated[int, typer.Option("--max-steps", help="FIRE steps per relaxation.")] = 200,
    fmax: Annotated[float, typer.Option("--fmax", help="Force criterion, eV/angstrom.")] = 0.1,
    max_calls: Annotated[
        int | None, typer.Option("--max-calls", help="Budget: potential evaluations in total.")
    ] = None,
    max_time: Annotated[
        float | None, typer.Option("--max-time", help="Budget: wall time in seconds.")
    ] = None,
    formula_units: Annotated[
        int | None,
        typer.Option("--formula-units", help="Formula units per cell (the atom count over the "
                     "reduced formula's); substitution ranks templates of that size first."),
    ] = None,
    species_map: Annotated[
        str, typer.Option("--species-map", help="Substitution: similarity or electronegativity.")
    ] = "similarity",
    ranking: Annotated[
        str, typer.Option("--ranking", help="Substitution template order: prototype, "
                          "similarity or none (pool order, the naive rule).")
    ] = "prototype",
    pool: Annotated[
        str,
        typer.Option("--pool", help="Substitution templates: dataset[:split] or a structure "
                     "file/folder."),
    ] = "mp20:offline_train",
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("search"),
) -> None:
    """Search for crystals; write OUT/cif/<index>_<formula>.cif and OUT/samples.extxyz."""
    from xtalgen import io as xio
    from xtalgen.errors import XtalgenError
    from xtalgen.models.registry import load_generator
    from xtalgen.search import SearchBudget

    if method not in METHODS:
        raise XtalgenError(f"unknown search method {method!r}; choose one of {', '.join(METHODS)}")
    if n < 1:
        raise XtalgenError(f"--n must be at least 1, got {n}")
    settings = dict(
        relax=relax, energies=relax, potential=potential, max_steps=max_steps, fmax=fmax,
        budget=SearchBudget(max_potential_calls=max_calls, max_wall_time=max_time),
    )
    if formula_units is not None:
        settings["formula_units"] = (formula_units,)
    if method == "evolution":
        settings["energies"] = True
    if method == "substitution":
        settings.update(pool=_load_pool(pool), species_map=species_map, ranking=ranking)
    generator = load_generator(method, **settings)
    crystals = generator.generate(n, composition=composition, spacegroup=spacegroup, seed=seed)
    if not crystals:
        raise XtalgenError(f"{method} found no crystals within its budget")
    out.mkdir(parents=True, exist_ok=True)
    xio.write(crystals, out / "cif", fmt="cif")
    xio.write(crystals, out / "samples.extxyz")
    for i, c in enumerate(crystals):
        p = c.properties
        energy = p.get("energy_per_atom")
        energy_text = f"{energy:.4f} eV/atom" if energy is not None else "not scored"
        typer.echo(f"{i:3d}  {c.formula:<14} {p['spacegroup_symbol']:<10} ({p['spacegroup']:3d})  "
                   f"{c.num_sites:3d} sites  {energy_text}")
    calls = crystals[0].properties.get("search_potential_calls", 0)
    typer.echo(f"{len(crystals)} crystals, {calls} potential calls -> {out / 'samples.extxyz'}")


def _load_pool(spec: str):  # -> Sequence[Crystal]
    """Templates from ``dataset[:split]`` or from a structure file or folder."""
    from xtalgen import io as xio
    from xtalgen.data import load_dataset

    path = Path(spec)
    if path.exists():
        return xio.read(path) if path.is_file() else load_dataset(path)
    name, _, split = spec.partition(":")
    return load_dataset(name, split or None, progress=False)
