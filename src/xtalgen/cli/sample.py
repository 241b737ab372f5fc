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
        int | None, typer.Option("--spacegroup", help="Space group number (1-230): native where "
                                 "the generator supports it, else by the filter (spglib, "
                                 "symprec 0.1).")
    ] = None,
    chemical_system: Annotated[
        str | None, typer.Option("--chemical-system", help="Elements of every sample, e.g. "
                                 "Li-Mn-O: a DNG flow/diffusion checkpoint decodes only these "
                                 "elements (guided too if trained with it); others: the filter.")
    ] = None,
    condition: Annotated[
        list[str] | None, typer.Option("--condition", help="Target property NAME=VALUE, "
                                       "repeatable: band_gap (eV), formation_energy (eV/atom). "
                                       "Native for a checkpoint trained with it (--guidance), "
                                       "else by the filter with the shipped predictors.")
    ] = None,
    guidance: Annotated[
        float, typer.Option("--guidance", help="Classifier-free guidance scale of a checkpoint "
                            "trained with conditions (1: plain conditional sampling; 2: "
                            "stronger; 0: unconditional).")
    ] = 1.0,
    use_filter: Annotated[
        bool | None, typer.Option("--filter/--no-filter", help="Keep only samples that satisfy "
                                  "the conditions, drawing again (rejection: spglib, the property "
                                  "predictors). Default: on, with a note, when the generator "
                                  "cannot serve a condition itself.")
    ] = None,
    tolerance: Annotated[
        list[str] | None, typer.Option("--tolerance", help="Filter: NAME=VALUE, largest |predicted"
                                       " - target| kept (default band_gap=0.5, formation_energy="
                                       "0.1).")
    ] = None,
    predictor: Annotated[
        list[str] | None, typer.Option("--predictor", help="Filter: NAME=CHECKPOINT, a property "
                                       "predictor instead of the shipped one (mp20-band-gap, "
                                       "mp20-formation-energy).")
    ] = None,
    max_rounds: Annotated[
        int, typer.Option("--max-rounds", help="Filter: rounds of drawing before giving up.")
    ] = 10,
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
    templates: Annotated[
        str | None,
        typer.Option("--templates", help="CSP checkpoints: start from prototypes retrieved from "
                     "this dataset (DiffCSP++-style), as NAME[:SPLIT] (mp20 = mp20:offline_train) "
                     "or a folder / file of CIFs."),
    ] = None,
    noise_level: Annotated[
        float, typer.Option("--noise-level", help="With --templates: noise a template starts "
                            "from (0: the templates themselves; 1: pure noise).")
    ] = 0.05,
    relax_steps: Annotated[
        int, typer.Option("--relax-steps", help="Relax every sample with CHGNet for at most this "
                          "many FIRE steps (0: no relaxation).")
    ] = 0,
    relax_workers: Annotated[
        int, typer.Option("--relax-workers", help="Worker processes for --relax-steps.")
    ] = 1,
    temperature: Annotated[
        float, typer.Option("--temperature", help="Autoregressive checkpoints (wyckoff): "
                            "sampling temperature (0: greedy).")
    ] = 1.0,
    top_k: Annotated[
        int, typer.Option("--top-k", help="Autoregressive checkpoints: sample among the k most "
                          "likely tokens (0: the model's default; all for wyckoff, 10 for cif-lm).")
    ] = 0,
    symmetric: Annotated[
        bool, typer.Option("--symmetric", help="CSP flow/diffusion checkpoints: hard space-group "
                           "conditioning (DiffCSP++-style): sample inside Wyckoff templates of "
                           "--spacegroup (from mp20-dng-wyckoff, or from --templates), moving only "
                           "their free coordinates and lattice parameters, so every sample keeps "
                           "the template's symmetry.")
    ] = False,
    min_distance: Annotated[
        float, typer.Option("--min-distance", help="Autoregressive checkpoints: draw again a "
                            "sample with atoms closer than this, angstrom (0: keep them).")
    ] = 0.5,
) -> None:
    """Generate crystals; write OUT/cif/<index>_<formula>.cif and OUT/samples.extxyz.

    With --templates (and a CSP checkpoint), samples start from known prototypes of the
    composition's formula type; with --relax-steps, every sample is relaxed with CHGNet.
    A Wyckoff-transformer checkpoint (mp20-dng-wyckoff) takes --spacegroup (every sample in
    that group) and --composition (CSP) alike, and reports samples it could not decode.
    With --symmetric, a CSP flow or diffusion checkpoint samples inside Wyckoff templates of
    --spacegroup (e.g. `xtalgen sample mp20-csp-flow --symmetric --spacegroup 225 --n 20`).

    Conditions (--chemical-system, --spacegroup, --condition): a flow or diffusion checkpoint
    trained with them samples with classifier-free guidance (--guidance), e.g.
    `xtalgen sample mp20-dng-flow-cond --chemical-system Li-Mn-O --condition band_gap=2.0
    --guidance 2.0`; any other generator is filtered (--filter: rejection sampling with spglib
    and the property predictors; it reports the acceptance rate).
    """
    import time

    import torch

    from xtalgen import io as xio
    from xtalgen.checkpoints import shipped_checkpoints
    from xtalgen.conditions import Conditions, parse_condition_args
    from xtalgen.errors import XtalgenError
    from xtalgen.models.registry import GENERATORS, load_generator

    if n < 1:
        raise XtalgenError(f"--n must be at least 1, got {n}")
    conditions = Conditions.from_mapping(parse_condition_args(condition or []),
                                         spacegroup=spacegroup, chemical_system=chemical_system)
    tolerances = _pairs(tolerance, "--tolerance", float)
    predictors = _pairs(predictor, "--predictor", str)
    if threads > 0:
        torch.set_num_threads(threads)
    kwargs = {}
    shipped = shipped_checkpoints()
    if generator in shipped and not Path(generator).exists():
        generator = str(shipped[generator])
    if generator not in GENERATORS:
        kwargs = {"n_steps": steps, "batch_size": batch_size, "device": device, "progress": True}
    if (templates or relax_steps) and not kwargs:
        raise XtalgenError("--templates and --relax-steps need a CSP checkpoint, not a search method")
    gen = load_generator(generator, **kwargs)
    if temperature != 1.0 or top_k or min_distance != 0.5:
        if not hasattr(gen, "temperature"):
            raise XtalgenError("--temperature, --top-k and --min-distance apply to autoregressive "
                               "checkpoints only")
        if temperature < 0 or min_distance < 0:
            raise XtalgenError("--temperature and --min-distance must be >= 0")
        gen.temperature = temperature
        gen.top_k = top_k or gen.top_k
        gen.min_distance = min_distance or None
    if symmetric:
        from xtalgen.pipelines.symmetric_sampling import PoolTemplates, SymmetricSampler

        if relax_steps:
            raise XtalgenError("--symmetric does not take --relax-steps; relax the samples with "
                               "xtalgen screen")
        if conditions.spacegroup is None and not templates:
            raise XtalgenError("--symmetric needs --spacegroup N (or --templates to take groups from)")
        source = PoolTemplates(_template_pool(templates)) if templates else None
        gen = SymmetricSampler(gen, templates=source)
    elif templates or relax_steps:
        from xtalgen.pipelines.templated_csp import TemplatedCSP
        from xtalgen.screen import get_executor

        pool = _template_pool(templates) if templates else []
        gen = TemplatedCSP(gen, pool=pool, noise_level=noise_level if templates else 1.0,
                           relax_steps=relax_steps, executor=get_executor(n_workers=relax_workers))
    if guidance != 1.0:
        if not hasattr(gen, "guidance"):
            raise XtalgenError("--guidance applies to flow and diffusion checkpoints trained "
                               "with conditions")
        gen.guidance = guidance
    gen = _with_filter(gen, conditions, use_filter, tolerances, predictors, max_rounds)
    start = time.perf_counter()
    condition_map = {k: v for k, v in conditions.as_dict().items() if k != "spacegroup"}
    crystals = gen.generate(n, composition=composition, spacegroup=conditions.spacegroup,
                            condition=condition_map or None, seed=seed)
    elapsed = time.perf_counter() - start
    report = getattr(gen, "last_report", None)
    if report and "acceptance_rate" in report:
        typer.echo(f"filter: {report['accepted']} kept of {report['drawn']} drawn "
                   f"(acceptance {report['acceptance_rate']:.1%}, {report['rounds']} rounds); "
                   f"rejected per condition: {report['rejected']}", err=True)
    if report and report.get("failed_attempts"):
        typer.echo(f"{report['decoded']} of {report['requested']} decoded; failed attempts (drawn "
                   f"again): {report['failed_attempts']}; given up: {report['given_up']}", err=True)
    if not crystals:
        raise XtalgenError(f"{generator} produced no crystals")
    out.mkdir(parents=True, exist_ok=True)
    xio.write(crystals, out / "cif", fmt="cif")
    xio.write(crystals, out / "samples.extxyz")
    _write_texts(crystals, report or {}, out)
    typer.echo(f"{len(crystals)} crystals in {elapsed:.1f} s -> {out / 'samples.extxyz'}, {out / 'cif'}/")


def _pairs(values: list[str] | None, option: str, kind: type) -> dict:
    """``["band_gap=0.3"]`` -> ``{"band_gap": 0.3}`` (canonical condition names)."""
    from xtalgen.conditions import condition_name
    from xtalgen.errors import XtalgenError

    out = {}
    for text in values or []:
        name, sep, value = text.partition("=")
        try:
            if not sep:
                raise ValueError
            out[condition_name(name)] = kind(value)
        except ValueError:
            raise XtalgenError(f"{option} looks like NAME=VALUE (e.g. band_gap=0.3), got {text!r}") from None
    return out


def _with_filter(gen, conditions, use_filter: bool | None, tolerances: dict, predictors: dict,
                 max_rounds: int):
    """``gen``, wrapped in the rejection filter when asked (``--filter``) or needed (a condition
    it cannot serve itself, unless ``--no-filter``)."""
    from xtalgen.errors import XtalgenError
    from xtalgen.pipelines.conditioned import RejectionGenerator

    missing = [c for c in conditions.names if c not in getattr(gen, "native_conditions", ())]
    if (tolerances or predictors) and use_filter is False:
        raise XtalgenError("--tolerance and --predictor are options of --filter")
    if not conditions:
        if use_filter or tolerances or predictors:
            raise XtalgenError("--filter needs a condition: --chemical-system, --spacegroup or "
                               "--condition NAME=VALUE")
        return gen
    if use_filter is None and missing:
        typer.echo(f"note: {getattr(gen, 'label', gen.name)} cannot condition on "
                   f"{', '.join(missing)} itself; keeping the samples that satisfy "
                   f"{conditions.describe()} (rejection filter; --no-filter to refuse)", err=True)
        use_filter = True
    if not use_filter:
        return gen
    from xtalgen.properties.trained import load_predictor

    loaded = {name: load_predictor(path) for name, path in predictors.items()}
    return RejectionGenerator(gen, predictors=loaded, tolerances=tolerances,
                              max_rounds=max_rounds)


def _write_texts(crystals: list, report: dict, out: Path) -> None:
    """A text model's generated texts as written (OUT/text/<index>.cif) and the texts that did
    not parse, with their reasons (OUT/failed_texts.jsonl)."""
    import json

    texts = [(c.properties.get("index", i), c.properties["cif_text"])
             for i, c in enumerate(crystals) if "cif_text" in c.properties]
    if texts:
        (out / "text").mkdir(exist_ok=True)
        for index, text in texts:
            (out / "text" / f"{index:05d}.cif").write_text(text)
    failed = report.get("failed_texts") or []
    if failed:
        with open(out / "failed_texts.jsonl", "w") as handle:
            for record in failed:
                handle.write(json.dumps(record) + "\n")
        typer.echo(f"{len(failed)} generated texts did not parse -> {out / 'failed_texts.jsonl'}",
                   err=True)


def _template_pool(spec: str) -> list:
    """Crystals of ``NAME[:SPLIT]`` (default split ``offline_train``) or a folder / file of CIFs."""
    from xtalgen.data import load_dataset
    from xtalgen.errors import XtalgenError

    path = Path(spec)
    if path.exists():
        pool = list(load_dataset(path))
    else:
        name, _, split = spec.partition(":")
        pool = list(load_dataset(name, split or "offline_train"))
    from xtalgen.disorder import disorder_message

    refused = [m for m in (disorder_message(c, "a template") for c in pool) if m]
    for message in refused[:10]:
        typer.echo(f"warning: {message}; not used as a template", err=True)
    if len(refused) > 10:
        typer.echo(f"warning: {len(refused) - 10} more disordered templates not used", err=True)
    pool = [c for c in pool if c.is_ordered]
    if not pool:
        raise XtalgenError(f"no ordered template crystals in {spec!r}")
    return pool
