"""``xtalgen sample``: crystals from a checkpoint or a registered generator, written to files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("sample")(sample)


def sample(
    generator: Annotated[
        str,
        typer.Argument(help="Checkpoint file (.pt), shipped checkpoint name (perov5-csp-flow) or "
                       "registered generator name (random-search)."),
    ],
    n: Annotated[int, typer.Option("--n", help="Number of crystals.")] = 1000,
    composition: Annotated[
        str | None, typer.Option("--composition", help="Fixed composition (CSP), e.g. Li2MnO3.")
    ] = None,
    spacegroup: Annotated[
        int | None, typer.Option("--spacegroup", help="Space group number, where supported.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("samples"),
    steps: Annotated[
        int | None, typer.Option("--steps", help="Sampler steps (checkpoints only; default: the model's).")
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Crystals per batch (checkpoints).")] = 256,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda (checkpoints).")] = "cpu",
    threads: Annotated[
        int, typer.Option("--threads", help="torch CPU threads (0: torch default). The shipped "
                          "models are small: one thread is fastest on a busy machine.")
    ] = 1,
) -> None:
    """Generate crystals; write OUT/cif/<index>_<formula>.cif and OUT/samples.extxyz."""
    import time

    import torch

    from xtalgen import io as xio
    from xtalgen.checkpoints import shipped_checkpoints
    from xtalgen.errors import XtalgenError
    from xtalgen.models.base import GENERATORS, load_generator

    if n < 1:
        raise XtalgenError(f"--n must be at least 1, got {n}")
    if threads > 0:
        torch.set_num_threads(threads)
    kwargs = {}
    shipped = shipped_checkpoints()
    if generator in shipped and not Path(generator).exists():
        generator = str(shipped[generator])
    if generator not in GENERATORS:
        kwargs = {"n_steps": steps, "batch_size": batch_size, "device": device, "progress": True}
    gen = load_generator(generator, **kwargs)
    start = time.perf_counter()
    crystals = gen.generate(n, composition=composition, spacegroup=spacegroup, seed=seed)
    elapsed = time.perf_counter() - start
    if not crystals:
        raise XtalgenError(f"{generator} produced no crystals")
    out.mkdir(parents=True, exist_ok=True)
    xio.write(crystals, out / "cif", fmt="cif")
    xio.write(crystals, out / "samples.extxyz")
    typer.echo(f"{len(crystals)} crystals in {elapsed:.1f} s -> {out / 'samples.extxyz'}, {out / 'cif'}/")
