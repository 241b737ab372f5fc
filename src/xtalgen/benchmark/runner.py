"""One protocol for every generator: the same targets, seeds and evaluation, with cost.

CSP: ``n`` test targets (seeded draw; 0 = the whole split), ``k`` predictions each, scored
by :func:`xtalgen.metrics.evaluate_csp` (match@1, match@k, RMSE; METRe and cRMSE with
``corrected``), and match@j for every j <= k from the same per-sample table. DNG: ``n``
samples scored by :func:`xtalgen.metrics.evaluate_dng` against the test split (novelty against
the training split), and S.U.N. on the first ``n_sun`` with ``stability``.

Samples are cached per generator, protocol and seed in chunks under ``out/cache/``, so a run
that stops continues where it was; the sampling seconds of each chunk are cached with it. The
evaluation of a generator whose samples all came from the cache is cached too (keyed by the
evaluation settings), so adding a generator to a finished run costs only the new one. A
generator that fails becomes a row with its error; the run goes on.
"""

from __future__ import annotations

import json
import math
import re
import time
import traceback
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xtalgen.benchmark.generators import (
    GeneratorEntry,
    build_generator,
    cost_of,
    resolve_generators,
    sample_csp,
    sample_dng,
)
from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError

__all__ = ["BenchmarkConfig", "BenchmarkResult", "run_benchmark"]

TASKS = ("csp", "dng")


@dataclass
class BenchmarkConfig:
    """Settings of one benchmark run (all recorded in ``out/benchmark.json``).

    Attributes:
        task: ``csp`` (composition given) or ``dng`` (de novo).
        dataset: ``perov5``, ``mp20``, ``carbon24`` or ``mpts52``.
        generators: ``"all"`` or names / checkpoint paths.
        n: CSP: test targets (0 = every one); DNG: samples per generator.
        k: CSP: predictions per target.
        seed: seed of the target draw and of every generator.
        split: test split (``auto``: ``test`` where bundled, else ``offline_test``).
        train_split: training split for novelty and retrieval pools (``auto``: ``train``
            where bundled, else ``offline_train``).
        n_steps: integration steps of iterative models (None: each checkpoint's default).
        corrected: CSP: also METRe and cRMSE (arXiv 2509.12178; for Carbon-24's duplicates).
        stability: DNG: S.U.N. of the first ``n_sun`` samples (CHGNet relaxation, bundled hull).
        property: DNG: the property predictor of ``wdist_prop`` (a name of
            :func:`xtalgen.properties.resolve_property_fn`, e.g. ``formation_energy``: the
            shipped MP-20 predictor, as in CDVAE's W(E_form)); None: no property distance.
        chunk: targets (CSP) or samples (DNG) per cached chunk.
        time_limit_s: a generator whose sampling passes this many seconds in one run stops at
            the next chunk boundary (checked between chunks: a smaller ``chunk`` stops sooner)
            and becomes a row with that error (its chunks stay cached).
    """

    task: str = "csp"
    dataset: str = "perov5"
    generators: str | Sequence[str] = "all"
    n: int = 100
    k: int = 20
    seed: int = 0
    out: Path = Path("benchmark")
    split: str = "auto"
    train_split: str = "auto"
    n_steps: int | None = None
    corrected: bool = False
    stability: bool = False
    n_sun: int = 200
    property: str | None = None
    chunk: int = 250
    time_limit_s: float | None = None
    n_jobs: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise XtalgenError(f"task must be csp or dng, got {self.task!r}")
        if self.n < 0 or self.k < 1 or self.chunk < 1:
            raise XtalgenError("n must be >= 0, k and chunk >= 1")
        if self.task == "dng" and self.n == 0:
            raise XtalgenError("DNG needs a number of samples (--n > 0)")
        self.out = Path(self.out)


@dataclass
class BenchmarkResult:
    """Rows (one per generator) and where the table and plots were written."""

    config: BenchmarkConfig
    rows: list[dict[str, Any]]
    files: dict[str, Path] = field(default_factory=dict)
    overhead_s: float = 0.0


def _load(dataset: str, split: str, preferred: str, fallback: str) -> tuple[list[Crystal], str]:
    from xtalgen.data import load_dataset

    if split != "auto":
        return list(load_dataset(dataset, split, progress=False)), split
    try:
        return list(load_dataset(dataset, preferred, progress=False)), preferred
    except XtalgenError:
        return list(load_dataset(dataset, fallback, progress=False)), fallback


def _targets(test: list[Crystal], n: int, seed: int) -> list[Crystal]:
    """A seeded draw of ``n`` test crystals in split order (all when n is 0 or too large)."""
    if n == 0 or n >= len(test):
        return test
    picks = np.random.default_rng(seed).choice(len(test), size=n, replace=False)
    return [test[i] for i in sorted(picks.tolist())]


def _slug(name: str) -> str:
    """A folder name for a generator name or checkpoint path (paths keep their folder)."""
    if "/" in name:
        path = Path(name)
        name = f"{path.parent.name}-{path.stem}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _cached_chunks(folder: Path, jobs: list[tuple[int, Any]], make, desc: str, progress: bool,
                   time_limit_s: float | None = None):
    """Run ``make(payload, index)`` for each chunk not cached yet; (crystals, sampling seconds
    of all chunks as measured when made, number of cached chunks, seconds spent in this call)."""
    from tqdm.auto import tqdm

    from xtalgen import io as xio

    folder.mkdir(parents=True, exist_ok=True)
    crystals: list[Crystal] = []
    seconds, cached, now = 0.0, 0, 0.0
    bar = tqdm(jobs, desc=desc, unit="chunk", disable=not progress)
    for position, (index, payload) in enumerate(bar):
        data, meta = folder / f"chunk-{index:04d}.extxyz", folder / f"chunk-{index:04d}.json"
        if meta.is_file():
            info = json.loads(meta.read_text())
            with warnings.catch_warnings():  # the samples' own warnings were shown once
                warnings.simplefilter("ignore")
                part = xio.read(data) if info["n"] else []
            cached += 1
        else:
            start = time.perf_counter()
            part = make(payload, index)
            info = {"n": len(part), "seconds": time.perf_counter() - start}
            now += info["seconds"]
            left = len(jobs) - 1 - position
            if time_limit_s is not None and now > time_limit_s and left:
                if part:
                    xio.write(part, data)
                meta.write_text(json.dumps(info))
                raise XtalgenError(
                    f"sampling time limit of {time_limit_s:g} s reached with {left} of "
                    f"{len(jobs)} chunks left (the finished ones are cached: run again to go on)"
                )
            if part:
                xio.write(part, data)
            meta.write_text(json.dumps(info))
        crystals.extend(part)
        seconds += info["seconds"]
    return crystals, seconds, cached, now


def run_benchmark(config: BenchmarkConfig) -> BenchmarkResult:
    """Run every generator of ``config`` through the protocol; write the table and plots."""
    from xtalgen.benchmark.report import write_outputs

    start = time.perf_counter()
    config.out.mkdir(parents=True, exist_ok=True)
    entries = resolve_generators(config.generators, config.task, config.dataset)
    test, test_split = _load(config.dataset, config.split, "test", "offline_test")
    train, train_split = _load(config.dataset, config.train_split, "train", "offline_train")
    targets = _targets(test, config.n, config.seed) if config.task == "csp" else test
    rows = []
    inner = 0.0
    for entry in entries:
        row, seconds = _run_one(entry, config, targets, train)
        row.update(test_split=test_split, train_split=train_split)
        rows.append(row)
        inner += seconds
        _save(config, rows, test_split, train_split)
    files = write_outputs(config, rows)
    overhead = time.perf_counter() - start - inner
    _save(config, rows, test_split, train_split, overhead)
    return BenchmarkResult(config, rows, files, overhead)


def _save(config: BenchmarkConfig, rows: list[dict], test_split: str, train_split: str,
          overhead: float | None = None) -> None:
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()}
    payload = {"config": settings, "test_split": test_split, "train_split": train_split,
               "rows": rows, "harness_overhead_s": overhead}
    (config.out / "benchmark.json").write_text(json.dumps(payload, indent=1, default=_plain))


def _plain(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return str(value)


def _run_one(entry: GeneratorEntry, config: BenchmarkConfig, targets: list[Crystal],
             train: list[Crystal]) -> tuple[dict[str, Any], float]:
    """One row; (row, seconds spent sampling and evaluating)."""
    row: dict[str, Any] = {"generator": entry.name, "kind": entry.kind, "error": None}
    spent = 0.0
    try:
        generator = build_generator(entry, train, config.n_steps)
        row.update(cost_of(entry, generator))
        steps = f"-steps{config.n_steps}" if config.n_steps else ""
        key = (f"{config.task}-{config.dataset}-n{len(targets) if config.task == 'csp' else config.n}"
               f"-k{config.k if config.task == 'csp' else 1}{steps}-seed{config.seed}")
        folder = config.out / "cache" / _slug(entry.name) / key
        if config.task == "csp":
            jobs = [(i, targets[s : s + config.chunk])
                    for i, s in enumerate(range(0, len(targets), config.chunk))]
            samples, sample_s, cached, spent_now = _cached_chunks(
                folder, jobs, lambda part, i: sample_csp(generator, part, config.k, config.seed),
                entry.name, config.progress, config.time_limit_s)
        else:
            sizes = [min(config.chunk, config.n - s) for s in range(0, config.n, config.chunk)]
            jobs = list(enumerate(sizes))
            samples, sample_s, cached, spent_now = _cached_chunks(
                folder, jobs, lambda size, i: sample_dng(generator, size, config.seed + i),
                entry.name, config.progress, config.time_limit_s)
        row["n_samples"] = len(samples)
        row["sample_s"] = round(sample_s, 2)
        row["sample_s_per_1000"] = round(1000 * sample_s / max(len(samples), 1), 2)
        row["cached_chunks"] = cached
        spent += spent_now
        if not samples:
            raise XtalgenError("no samples")
        settings = _eval_settings(config, len(samples))
        stored = _cached_eval(folder, settings) if cached == len(jobs) else None
        if stored is not None:
            row.update(stored)
            row["eval_cached"] = True
        else:
            start = time.perf_counter()
            if config.task == "csp":
                row.update(_evaluate_csp(samples, targets, config))
            else:
                row.update(_evaluate_dng(samples, targets, config, train, entry.name))
            row["eval_s"] = round(time.perf_counter() - start, 2)
            spent += row["eval_s"]
            values = {k: v for k, v in row.items() if k not in _ROW_KEYS}
            (folder / "eval.json").write_text(json.dumps({"settings": settings, "values": values},
                                                         default=_plain))
    except Exception as exc:  # a failing generator is a row, never the end of the run
        row["error"] = f"{type(exc).__name__}: {exc}"[:300]
        (config.out / "errors").mkdir(exist_ok=True)
        (config.out / "errors" / f"{_slug(entry.name)}.txt").write_text(traceback.format_exc())
    return row, spent


_ROW_KEYS = ("generator", "kind", "error", "parameters", "train_s", "n_samples", "sample_s",
             "sample_s_per_1000", "cached_chunks")
"""Row fields that belong to the generator and its sampling, not to the evaluation."""


def _eval_settings(config: BenchmarkConfig, n_samples: int) -> dict[str, Any]:
    """What an evaluation's numbers depend on besides the (cached) samples and targets."""
    keys = ("task", "dataset", "k", "split", "train_split", "corrected", "stability", "n_sun",
            "property")
    return {**{key: getattr(config, key) for key in keys}, "n_samples": n_samples}


def _cached_eval(folder: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The stored evaluation of these samples under ``settings`` (None: none, or other settings)."""
    path = folder / "eval.json"
    if not path.is_file():
        return None
    stored = json.loads(path.read_text())
    if stored.get("settings") != settings:
        return None
    values = stored["values"]
    if "match_curve" in values:  # JSON keys are strings
        values["match_curve"] = {int(j): v for j, v in values["match_curve"].items()}
    return values


def _evaluate_csp(samples: list[Crystal], targets: list[Crystal], config: BenchmarkConfig
                  ) -> dict[str, Any]:
    from xtalgen.metrics import CSPConfig, evaluate_csp

    result = evaluate_csp(samples, targets, config=CSPConfig(
        k=config.k, corrected=config.corrected, n_jobs=config.n_jobs, progress=config.progress))
    values = result.values()
    k = config.k
    out: dict[str, Any] = {
        "n_targets": len(targets),
        "match@1": values["match_rate@1"],
        f"match@{k}": values[f"match_rate@{k}"],
        "rmse@1": values["rmse@1"],
        f"rmse@{k}": values[f"rmse@{k}"],
    }
    for name in ("METRe@1", f"METRe@{k}", "cRMSE@1", f"cRMSE@{k}"):
        if name in values:
            out[name] = values[name]
    out["match_curve"] = _match_curve(result.table, len(targets), k)
    return out


def _match_curve(table, n_targets: int, k: int) -> dict[int, float]:
    """match@j for j = 1..k from the per-sample table (the @k gate: a valid, matched sample of
    rank < j; j = 1 here is the ungated-by-target variant, so the @1 column stays the suite's)."""
    matched = table[table["matched"] & table["counted"] & (table["target_index"] >= 0)]
    best = matched.groupby("target_index")["sample_rank"].min()
    return {j: float((best < j).sum() / n_targets) for j in range(1, k + 1)}


def _evaluate_dng(samples: list[Crystal], test: list[Crystal], config: BenchmarkConfig,
                  train: list[Crystal], name: str) -> dict[str, Any]:
    from xtalgen.metrics import DNGConfig, evaluate_dng
    from xtalgen.metrics.presets import EVAL_MODELS

    dng = DNGConfig(eval_model=EVAL_MODELS.get(config.dataset, "mp20"), seed=config.seed,
                    n_subsample=min(1000, len(samples)), n_jobs=config.n_jobs,
                    progress=config.progress)
    property_kw: dict[str, Any] = {}
    if config.property:
        from xtalgen.properties import property_fn_info, resolve_property_fn

        property_kw["property_name"], property_kw["property_fn"] = resolve_property_fn(
            config.property)
        property_kw["property_settings"] = property_fn_info(property_kw["property_fn"])
    result = evaluate_dng(samples, test, train=train or None, config=dng, **property_kw)
    values = result.values()
    keep = ("valid", "struct_valid", "comp_valid", "cov_recall", "cov_precision",
            "wdist_density", "wdist_num_elems", "wdist_prop", "unique", "novel", "sg_tvd")
    out: dict[str, Any] = {name: values[name] for name in keep if name in values}
    out["p1_share"] = float((result.table["space_group"] == 1).mean())
    if config.stability:
        out.update(_sun(samples[: config.n_sun], config, train, name))
    return out


def _sun(samples: list[Crystal], config: BenchmarkConfig, train: list[Crystal], name: str
         ) -> dict[str, Any]:
    """S.U.N. of ``samples`` (MatterGen's E_hull <= 0.1 eV/atom and the strict <= 0)."""
    from xtalgen.screen import ScreenConfig, screen

    folder = config.out / "sun"
    folder.mkdir(exist_ok=True)
    db = folder / f"{_slug(name)}-{len(samples)}-seed{config.seed}.db"
    summary = screen(samples, db, ScreenConfig(novelty_reference=train, n_workers=config.n_jobs,
                                               progress=config.progress))
    metrics = summary.metrics
    return {
        "sun": metrics.get("mattergen", {}).get("frac_sun", math.nan),
        "sun_strict": metrics.get("strict", {}).get("frac_sun", math.nan),
        "n_sun_screened": len(samples),
    }
