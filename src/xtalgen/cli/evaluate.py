"""``xtalgen evaluate``: the evaluation suite on a set of generated structures."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xtalgen.errors import XtalgenError

EVAL_MODELS = ("mp20", "mpts52", "carbon24", "perov5")
"""Named reference datasets (their coverage cutoffs: ``xtalgen.metrics.presets.EVAL_MODELS``)."""

HELP = (
    "Evaluate generated crystals against a reference dataset.\n\n"
    "SAMPLES is a structure file (CIF, extxyz, POSCAR, pymatgen JSON), a folder of them, or a "
    "saved sample set (a folder holding samples.extxyz, as written by `xtalgen sample`; only "
    "that file is read). Writes OUT/metrics.json (every number with its description, "
    "settings, counts and package versions), OUT/structures.csv (one row per structure: which "
    "ones failed what), OUT/report.md and OUT/plots/.\n\n"
    "--task dng: validity, COV-R/COV-P, Wasserstein distances (density, number of elements) "
    "on a seeded 1,000-sample valid subsample, uniqueness and novelty (matcher preset "
    "--matcher, against the training split), space-group statistics. The property distance "
    "(wdist_prop) needs a property predictor: --property formation_energy (the trained "
    "predictor mp20-formation-energy, eV/atom, as in CDVAE's protocol; band_gap likewise; or "
    "a predictor checkpoint .pt; metrics.json names the predictor and its validation MAE), "
    "--property formation-energy-chgnet (CHGNet single-point formation energy, eV/atom, "
    "against the bundled MP-20 hull's elemental references; a proxy that needs no training) "
    "or --property package.module:function (list of crystals -> array); without --property "
    "it is skipped and says so.\n\n"
    "--task csp: each sample must name its target in its properties: `material_id` (of the "
    "reference structure) or `target_index` (0-based row of the reference split), plus "
    "`sample_index` (0..k-1; sample 0 is used for match_rate@1). Reports match rate and RMSE "
    "@1 and @k (StructureMatcher stol=0.5, angle_tol=10, ltol=0.3), optionally METRe and "
    "cRMSE.\n\n"
    "Offline, MP-20's full test split is not available: --split auto then uses offline_test "
    "(a uniform 1,000-structure sample of the test split) and says so in the outputs."
)


def register(app: typer.Typer) -> None:
    app.command("evaluate", help=HELP)(evaluate)


def _read_samples(path: Path):
    from xtalgen import io as xio

    if path.is_dir() and (path / "samples.extxyz").is_file():
        path = path / "samples.extxyz"
    result = xio.read_many(path, progress=True)
    for file, reason in result.errors[:10]:
        typer.echo(f"warning: skipped {file}: {reason}", err=True)
    if len(result.errors) > 10:
        typer.echo(f"warning: {len(result.errors) - 10} more files skipped", err=True)
    if not result.crystals:
        raise XtalgenError(f"{path}: no structures could be read")
    return result.crystals, str(path)


def _say_disordered(crystals) -> None:
    """One line per disordered sample (at most 10): the metrics that read it as ordered."""
    from xtalgen.disorder import disorder_message

    action = "structural validity, the symmetry metrics and the CrystalNN fingerprints"
    lines = [m for m in (disorder_message(c, action) for c in crystals) if m]
    for line in lines[:10]:
        typer.echo(f"warning: {line}; they read each such site as its majority species", err=True)
    if len(lines) > 10:
        typer.echo(f"warning: {len(lines) - 10} more disordered samples", err=True)


def _load_split(reference: str, split: str, fallback: str | None):
    from xtalgen.data import load_dataset

    try:
        return load_dataset(reference, split), split
    except XtalgenError:
        if fallback is None:
            raise
        return load_dataset(reference, fallback), fallback


def evaluate(
    samples: Annotated[Path, typer.Argument(help="File or folder of generated structures.")],
    reference: Annotated[str, typer.Option("--reference", "-r", help="Reference dataset: mp20, "
                                           "mpts52, carbon24, perov5, or a file/folder of "
                                           "structures (used as the test split).")] = "mp20",
    task: Annotated[str, typer.Option(help="dng (de novo generation) or csp.")] = "dng",
    split: Annotated[str, typer.Option(help="Reference (test) split; 'auto' = test, else "
                                       "offline_test.")] = "auto",
    train_split: Annotated[str, typer.Option(help="Split for novelty; 'auto' = train, else "
                                             "offline_train; 'none' skips novelty.")] = "auto",
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("evaluation"),
    k: Annotated[int, typer.Option(help="CSP: samples per target for the @k metrics.")] = 20,
    gate: Annotated[str, typer.Option(help="CSP validity gate: pred_and_gt, pred or none.")] = "pred_and_gt",
    corrected: Annotated[bool, typer.Option(help="CSP: also METRe and cRMSE.")] = False,
    matcher: Annotated[str, typer.Option(help="DNG: matcher preset for uniqueness/novelty.")] = "ordered",
    n_subsample: Annotated[int, typer.Option(help="DNG: valid samples for distributions.")] = 1000,
    seed: Annotated[int, typer.Option(help="DNG: seed of the subsample.")] = 0,
    jobs: Annotated[int, typer.Option(help="Worker processes (0 = all CPUs).")] = 0,
    table: Annotated[str, typer.Option(help="Per-structure table format: csv or parquet.")] = "csv",
    eval_model: Annotated[str, typer.Option(help="Coverage cutoffs: auto (from --reference; "
                                            "mp20 for a path), mp20, carbon or perovskite.")] = "auto",
    prop: Annotated[str, typer.Option("--property", help="DNG: property predictor for "
                                      "wdist_prop: formation_energy, band_gap (trained "
                                      "predictors), a predictor .pt, formation-energy-chgnet "
                                      "or package.module:function; '' skips it.")] = "",
) -> None:
    from xtalgen.metrics.report import write_report

    if task not in ("dng", "csp"):
        raise XtalgenError(f"--task must be dng or csp, got {task!r}")
    is_path = reference not in EVAL_MODELS
    if is_path and not Path(reference).exists():
        raise XtalgenError(f"--reference must be one of {', '.join(EVAL_MODELS)} or an existing "
                           f"file or folder, got {reference!r}")
    from xtalgen.metrics.presets import EVAL_MODELS as CUTOFF_MODELS

    model = CUTOFF_MODELS.get(reference, "mp20") if eval_model == "auto" else eval_model
    property_kw = {}
    if prop and task == "dng":  # resolved first: a missing predictor fails before any work
        from xtalgen.properties import property_fn_info, resolve_property_fn

        property_kw["property_name"], property_kw["property_fn"] = resolve_property_fn(prop)
        property_kw["property_settings"] = property_fn_info(property_kw["property_fn"])
    crystals, source = _read_samples(samples)
    _say_disordered(crystals)
    if is_path:
        from xtalgen.data import load_dataset

        test, test_split = load_dataset(Path(reference)), "file"
        train_split = "none" if train_split == "auto" else train_split
    else:
        test, test_split = _load_split(reference, "test" if split == "auto" else split,
                                       "offline_test" if split == "auto" else None)
    names = {"samples": f"{source} ({len(crystals)} structures)",
             "test": f"{reference} {test_split} ({len(test)} structures)"}
    if not is_path and split == "auto" and test_split != "test":
        typer.echo(f"note: {reference} test split not available offline; using {test_split}", err=True)
    n_jobs = None if jobs <= 0 else jobs
    if task == "dng":
        from xtalgen.metrics.dng import DNGConfig, evaluate_dng

        train = None
        if train_split != "none" and is_path:
            train, train_name = load_dataset(Path(train_split)), train_split
            names["train"] = f"{train_name} ({len(train)} structures)"
        elif train_split != "none":
            train, train_name = _load_split(reference, "train" if train_split == "auto" else train_split,
                                            "offline_train" if train_split == "auto" else None)
            names["train"] = f"{reference} {train_name} ({len(train)} structures)"
        config = DNGConfig(eval_model=model, n_subsample=n_subsample, seed=seed,
                           matcher=matcher, n_jobs=n_jobs)
        result = evaluate_dng(crystals, test, train=train, config=config, reference_names=names,
                              **property_kw)
    else:
        from xtalgen.metrics.csp import CSPConfig, evaluate_csp

        config = CSPConfig(k=k, gate=gate, corrected=corrected, n_jobs=n_jobs)
        result = evaluate_csp(crystals, test, config=config, reference_names=names)
    written = write_report(result, out, table_format=table,
                           title=f"xtalgen evaluation ({task.upper()}, {reference} {test_split})")
    typer.echo(result.summary())
    typer.echo(f"-> {written['metrics']}, {written['table']}, {written['report']}")
