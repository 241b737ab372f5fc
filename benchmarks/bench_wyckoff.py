"""Wyckoff-token transformer vs. the shipped flow model: DNG, S.U.N., SG-conditioning, CSP, cost.

    .venv/bin/python benchmarks/bench_wyckoff.py --part dng --n 1000
    .venv/bin/python benchmarks/bench_wyckoff.py --part sun --sun-n 200
    .venv/bin/python benchmarks/bench_wyckoff.py --part sgcond --sg-n 50 --sg-relax-n 10
    .venv/bin/python benchmarks/bench_wyckoff.py --part csp --csp-targets 1000 --perov-targets 500
    .venv/bin/python benchmarks/bench_wyckoff.py --part cost
    .venv/bin/python benchmarks/bench_wyckoff.py --part all --n 20 --sun-n 3 --sg-n 3 \
        --sg-relax-n 1 --csp-targets 5 --perov-targets 5 --cost-n 20 --out /tmp/bw   # smoke test

Generators are named like ``xtalgen.models.load_generator`` takes them: a shipped checkpoint
(``mp20-dng-wyckoff``, ``mp20-dng-flow``, ...) or a ``.pt`` path. Names containing "flow" are
loaded with ``n_steps=--flow-steps`` and ``batch_size=--batch-size``; others with no options. A
generator that cannot be loaded (e.g. not trained yet) is recorded with its error, and the run
goes on with the others. Every part writes ``OUT/<part>.json`` (command, date, machine, seeds,
sizes, per-generator figures) and prints a Markdown table.

Parts:

* ``dng``: ``--n`` samples (``--seed``) per ``--dng-generators``, scored with
  ``evaluate_dng`` against MP-20 ``pilot_test`` (novelty against ``offline_train``; eval model
  mp20, n_jobs 1, n_subsample min(1000, n)). Fractions are of the *returned* samples; a
  generator that returns fewer than requested (undecodable Wyckoff sequences) also gets
  ``valid_of_requested`` and its ``last_report``. Space-group figures (spglib, symprec 0.1):
  ``frac_p1`` (detected group 1), ``frac_spglib_failed`` (group 0), ``sg_tvd`` and a chi-square
  statistic (WyFormer's space-group chi^2), computed as follows. Samples whose group spglib
  cannot detect (0) are left out, as are such test crystals; ``m`` is the number of samples
  left. The categories are the space groups that occur in the samples or in the test set
  (K of them). The expected frequency of group g is (test count of g + 1) / (number of test
  crystals with a detected group + K),
  i.e. the test histogram smoothed with one pseudo-count per category, so that a group absent
  from the test set has a finite expectation; the expected count is m times that. The
  statistic is sum over the K groups of (observed - expected)^2 / expected (``scipy.stats.
  chisquare``; its p-value at K - 1 degrees of freedom is recorded too, as is chi^2 / m, which
  compares sample sets of different sizes). The samples are saved as extxyz under
  ``--samples-dir`` (default OUT/samples) with a small JSON beside them, and are reused by
  ``sun`` (and by ``dng`` itself unless ``--resample``) while n, seed, steps and the checkpoint
  file (size, mtime) are unchanged.
* ``sun``: a seeded subset of ``--sun-n`` of those DNG samples (the first sun-n indices of
  ``numpy.random.default_rng(seed).permutation``, in that order, so a larger --sun-n extends a
  finished run; the indices are in the JSON) screened with ``xtalgen.screen.pipeline.screen``
  (CHGNet, the pipeline's default relaxation settings, bundled MP-20 hull, novelty
  against ``mp20:offline_train``). S.U.N. at E_hull <= 0, <= 0.08 and <= 0.1 eV/atom (the 0.08
  figure with the pipeline's own rule: converged relaxations only, unique and novel flags from
  the store), and the fraction of converged relaxations whose space group (spglib 0.1) is the
  same before and after. The candidate database OUT/sun/<generator>.db makes the part
  resumable: run it again after an interruption.
* ``sgcond``: 20 space groups covering all seven crystal systems, ``--sg-n`` samples each
  (``generate(n, spacegroup=sg, seed)``): structural validity, success = detected group ==
  requested before relaxation, and after a *short* CHGNet relaxation (FIRE + Frechet cell filter,
  at most ``--sg-relax-steps`` = 100 steps, fmax 0.1) of the first ``--sg-relax-n`` samples of
  each group; an unconverged relaxation is scored on its last structure, a failed one as a
  miss. The Wyckoff generator by default rejects and redraws samples whose detected group
  differs (``enforce_spacegroup``), which makes the match rate of the *returned* samples ~100%
  by construction; so the table also gives the match rate *per draw* (matches / (returned +
  failed draws counted in ``last_report["failed_attempts"]``)) and the number of draws rejected
  for a differing group, and ``--sg-filter off`` switches the rejection off. A generator that
  raises for a group (the flow model supports no space-group condition) is recorded as "not
  supported". Results are cached per group under OUT/sgcond/.
* ``csp``: ``sample_csp(targets, k=--csp-k, seed)`` once per generator, then ``evaluate_csp``
  with k = 1 on the samples with sample_index 0 and with k = --csp-k on all of them (gate
  pred_and_gt, ``--jobs`` workers, as benchmarks/bench_csp_model.py). Targets: MP-20
  ``pilot_test`` (``--csp-targets``, 0 = all) for ``--csp-generators`` and a seeded subset of
  Perov-5 ``test`` (``--perov-targets``) for ``--perov-csp-generators``. Samples are cached
  under the samples folder.
* ``cost``: wall seconds of ``generate(--cost-n, seed)`` with ``torch.set_num_threads(
  --cost-threads)`` per DNG generator (loading excluded), parameter count, and training time,
  steps and device from the checkpoint file. Run it on an idle machine: with two other busy
  processes on the two cores, 2-thread sampling of the flow model was 27x slower than 1-thread
  (4.3 s -> 117 s for 20 crystals); the 1-minute load average is recorded and a warning
  printed above 1.5.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

MACHINE = "2-core CPU dev machine, no GPU"
PARTS = ("dng", "sun", "sgcond", "csp", "cost")
SGCOND_GROUPS = (1, 2, 12, 14, 15, 62, 63, 71, 123, 129, 139, 164, 166, 187, 191, 194,
                 216, 221, 225, 227)
"""Requested groups: 1, 2, 12, 62, 139, 166, 194, 221, 225, 227 plus ten other common MP-20
groups (each >= 90 offline_train crystals), so that every crystal system has two or more."""
SUN_THRESHOLDS = (0.0, 0.08, 0.1)
BUSY_LOAD = 1.5
"""1-minute load average above which the cost part warns that the machine is not idle."""


# -- command line --------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[1:]))
    p.add_argument("--part", default="all", choices=(*PARTS, "all"))
    p.add_argument("--out", default="runs/bench_wyckoff", help="folder of the JSON results")
    p.add_argument("--samples-dir", default=None, help="sample cache (default OUT/samples)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed and subset seed")
    p.add_argument("--threads", type=int, default=1, help="torch threads (also CHGNet's)")
    p.add_argument("--flow-steps", type=int, default=100, help="Euler steps of flow models")
    p.add_argument("--batch-size", type=int, default=250, help="batch size of flow models")
    p.add_argument("--resample", action="store_true", help="ignore cached samples")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--dng-generators", default="mp20-dng-wyckoff,mp20-dng-flow",
                   help="comma-separated; used by dng, sun, sgcond and cost")
    p.add_argument("--n", type=int, default=1000, help="DNG samples per generator")
    p.add_argument("--sun-n", type=int, default=200, help="seeded subset screened for S.U.N.")
    p.add_argument("--sun-workers", type=int, default=1, help="screening worker processes")
    p.add_argument("--sg-n", type=int, default=50, help="samples per requested space group")
    p.add_argument("--sg-relax-n", type=int, default=10, help="relaxed samples per group")
    p.add_argument("--sg-relax-steps", type=int, default=100, help="FIRE steps of that relaxation")
    p.add_argument("--sg-filter", default="model", choices=("model", "on", "off"),
                   help="the generator's own rejection of samples whose detected group differs "
                        "(enforce_spacegroup, where it has one): as loaded, or forced on/off")
    p.add_argument("--csp-generators", default="mp20-csp-wyckoff,mp20-csp-flow",
                   help="comma-separated, MP-20 CSP")
    p.add_argument("--perov-csp-generators", default="perov5-dng-wyckoff,perov5-csp-flow",
                   help="comma-separated, Perov-5 CSP")
    p.add_argument("--csp-targets", type=int, default=1000, help="MP-20 pilot_test targets (0: all)")
    p.add_argument("--perov-targets", type=int, default=500, help="Perov-5 test targets (0: all)")
    p.add_argument("--csp-k", type=int, default=20, help="samples per CSP target")
    p.add_argument("--jobs", type=int, default=1, help="worker processes of the CSP matching")
    p.add_argument("--cost-n", type=int, default=1000, help="crystals sampled for timing")
    p.add_argument("--cost-threads", type=int, default=2, help="torch threads for timing")
    return p.parse_args(argv)


def names(option: str) -> list[str]:
    return [name.strip() for name in option.split(",") if name.strip()]


# -- shared helpers --------------------------------------------------------------------------------
def header(args: argparse.Namespace, part: str) -> dict[str, Any]:
    return {
        "part": part,
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": MACHINE,
        "threads": args.threads,
        "seed": args.seed,
        "flow_steps": args.flow_steps,
        "load_avg_1min": round(os.getloadavg()[0], 2),  # other jobs slow every timing here
    }


def write_json(path: Path, payload: dict[str, Any]) -> None:
    from xtalgen.metrics.core import to_jsonable

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_jsonable(payload), indent=1) + "\n")
    print(f"wrote {path}", file=sys.stderr)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def stem(name: str) -> str:
    """File-name-safe label of a generator name or path (runs/x/best.pt -> runs_x_best)."""
    label = name[:-3] if name.endswith(".pt") else name
    return label.replace("\\", "/").strip("./").replace("/", "_")


def checkpoint_path(name: str) -> Path | None:
    from xtalgen.checkpoints import shipped_checkpoints

    path = shipped_checkpoints().get(name, Path(name))
    return path if path.is_file() else None


def checkpoint_tag(name: str) -> str | None:
    """Size and mtime of the checkpoint file: a changed model invalidates cached samples."""
    path = checkpoint_path(name)
    if path is None:
        return None
    stat = path.stat()
    return f"{stat.st_size}-{int(stat.st_mtime)}"


def load(name: str, args: argparse.Namespace) -> Any:
    """The generator; flow models get their step count and batch size."""
    from xtalgen.models import load_generator

    if "flow" in name:
        return load_generator(name, n_steps=args.flow_steps, batch_size=args.batch_size,
                              progress=not args.no_progress)
    return load_generator(name)


def try_load(name: str, args: argparse.Namespace) -> tuple[Any, str | None]:
    from xtalgen.errors import XtalgenError

    try:
        return load(name, args), None
    except (XtalgenError, ImportError, OSError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, round(time.perf_counter() - start, 2)


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, (float, np.floating)):
        return "-" if not np.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


def brief(error: Any) -> str:
    """An error message cut before its first parenthesis (the JSON keeps all of it)."""
    return str(error).split(" (")[0]


def pct(value: Any) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{100 * value:.1f}%"


def markdown(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    print(f"\n### {title}\n")
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---" for _ in headers) + "|")
    for row in rows:
        print("| " + " | ".join(str(x) for x in row) + " |")
    sys.stdout.flush()


def nested_subset(n_all: int, n: int, seed: int) -> np.ndarray:
    """The first n of a seeded permutation (a smaller n gives a prefix of a larger one)."""
    return np.random.default_rng(seed).permutation(n_all)[:n]


def seeded_subset(n_all: int, n: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded subset of size n (all when n is 0 or >= n_all)."""
    if not n or n >= n_all:
        return np.arange(n_all)
    return np.sort(np.random.default_rng(seed).choice(n_all, n, replace=False))


# -- sample cache ------------------------------------------------------------------------------------
def cached_samples(path: Path, meta: dict[str, Any], args: argparse.Namespace) -> tuple[list, dict] | None:
    """Samples stored at ``path`` when their JSON sidecar matches ``meta``."""
    from xtalgen.io import read

    stored = read_json(path.with_suffix(".json"))
    if args.resample or stored is None or not path.exists():
        return None
    if {k: stored.get(k) for k in meta} != meta:
        return None
    return read(path), stored


def store_samples(path: Path, samples: list, meta: dict[str, Any]) -> None:
    from xtalgen.io import write

    path.parent.mkdir(parents=True, exist_ok=True)
    if samples:
        write(samples, path)
    write_json(path.with_suffix(".json"), meta)


def dng_samples(name: str, args: argparse.Namespace) -> tuple[list, dict[str, Any]]:
    """``--n`` DNG samples of ``name`` (cached), and how they were made."""
    path = Path(args.samples_dir) / f"dng-{stem(name)}.extxyz"
    key = {"generator": name, "n": args.n, "seed": args.seed, "checkpoint": checkpoint_tag(name),
           "flow_steps": args.flow_steps if "flow" in name else None}
    hit = cached_samples(path, key, args)
    if hit is not None:
        return hit[0], {**hit[1], "reused": True}
    generator = load(name, args)
    samples, seconds = timed(lambda: generator.generate(args.n, seed=args.seed))
    meta = {**key, "n_returned": len(samples), "sampling_s": seconds, "threads": args.threads,
            "last_report": getattr(generator, "last_report", None), "path": str(path)}
    store_samples(path, samples, meta)
    return samples, {**meta, "reused": False}


# -- part 1: DNG -------------------------------------------------------------------------------------
def sg_chi_square(sample_sg: np.ndarray, test_sg: np.ndarray, pseudo: float = 1.0) -> dict[str, Any]:
    """Chi-square of sample space-group counts against the smoothed test histogram (see the
    module docstring); groups 0 (spglib failed) are dropped on both sides."""
    from scipy.stats import chisquare

    obs_c = Counter(int(s) for s in sample_sg if s > 0)
    ref_c = Counter(int(s) for s in test_sg if s > 0)
    groups = sorted(set(obs_c) | set(ref_c))
    m = sum(obs_c.values())
    if m == 0 or not groups:
        return {"statistic": None, "n_used": m}
    ref = np.array([ref_c[g] + pseudo for g in groups], dtype=float)
    expected = m * ref / ref.sum()
    observed = np.array([obs_c[g] for g in groups], dtype=float)
    stat, p_value = chisquare(observed, expected)
    return {"statistic": float(stat), "statistic_per_sample": float(stat) / m,
            "dof": len(groups) - 1, "p_value": float(p_value), "n_used": m,
            "n_groups": len(groups), "pseudo_count": pseudo}


def sg_figures(sample_sg: np.ndarray, test_sg: np.ndarray) -> dict[str, Any]:
    from xtalgen.metrics.symmetry import histogram_tvd

    n = len(sample_sg)
    return {
        "frac_p1": float(np.mean(sample_sg == 1)) if n else None,
        "frac_spglib_failed": float(np.mean(sample_sg == 0)) if n else None,
        "sg_tvd": histogram_tvd(sample_sg, test_sg),
        "sg_chi2": sg_chi_square(sample_sg, test_sg),
        "n_distinct_sg": len(set(sample_sg.tolist()) - {0}),
    }


def dng_one(name: str, args: argparse.Namespace, test: list, train: list,
            test_sg: np.ndarray) -> dict[str, Any]:
    from xtalgen.metrics.dng import DNGConfig, evaluate_dng

    samples, meta = dng_samples(name, args)
    out: dict[str, Any] = {"sampling": meta, "n_requested": args.n, "n_returned": len(samples),
                           "last_report": meta.get("last_report")}
    if not samples:
        return {**out, "error": "the generator returned no samples"}
    config = DNGConfig(eval_model="mp20", n_jobs=1, n_subsample=min(1000, args.n),
                       progress=not args.no_progress)
    evaluation, seconds = timed(lambda: evaluate_dng(samples, test, train=train, config=config))
    metrics = evaluation.values()
    sample_sg = evaluation.table["space_group"].to_numpy(dtype=int)
    valid = metrics.get("valid")
    out.update(metrics=metrics, symmetry=sg_figures(sample_sg, test_sg), eval_s=seconds,
               valid_of_requested=None if valid is None else valid * len(samples) / args.n,
               eval_timings_s=evaluation.info.get("timings_s"))
    return out


def run_dng(args: argparse.Namespace) -> dict[str, Any]:
    from xtalgen.data import load_dataset
    from xtalgen.metrics.symmetry import space_groups

    test = list(load_dataset("mp20", "pilot_test"))
    train = list(load_dataset("mp20", "offline_train"))
    test_sg = space_groups(test)
    result = {**header(args, "dng"), "n": args.n, "test": "mp20 pilot_test",
              "train": "mp20 offline_train", "n_test": len(test), "n_train": len(train),
              "generators": {}}
    for name in names(args.dng_generators):
        result["generators"][name] = guarded(dng_one, name, args, test, train, test_sg)
    write_json(Path(args.out) / "dng.json", result)
    dng_table(result)
    return result


def guarded(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """``fn(*args)``, or the error of a generator that cannot be loaded or sampled."""
    from xtalgen.errors import XtalgenError

    try:
        return fn(*args)
    except (XtalgenError, ImportError, OSError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def dng_table(result: dict[str, Any]) -> None:
    headers = ["generator", "n (of req.)", "struct valid", "comp valid", "COV-R", "COV-P",
               "W density", "W #elem", "unique", "novel", "P1", "spglib fail", "SG TVD",
               "SG chi2", "sampling s"]
    rows = []
    for name, r in result["generators"].items():
        if "metrics" not in r:
            rows.append([name, "-", brief(r.get("error", "?"))] + ["-"] * (len(headers) - 3))
            continue
        m, s = r["metrics"], r["symmetry"]
        rows.append([name, f"{r['n_returned']} ({r['n_requested']})", pct(m["struct_valid"]),
                     pct(m["comp_valid"]), pct(m["cov_recall"]), pct(m["cov_precision"]),
                     fmt(m["wdist_density"]), fmt(m["wdist_num_elems"]), pct(m["unique"]),
                     pct(m.get("novel")), pct(s["frac_p1"]), pct(s["frac_spglib_failed"]),
                     fmt(s["sg_tvd"]), fmt(s["sg_chi2"].get("statistic"), 1),
                     fmt(r["sampling"].get("sampling_s"), 1)])
    markdown(f"DNG, MP-20 pilot_test (n = {result['n']}, seed {result['seed']})", headers, rows)


# -- part 2: S.U.N. ----------------------------------------------------------------------------------
def fresh_store(path: Path, crystals: list) -> None:
    """Delete a candidate database that holds candidates other than ``crystals``."""
    from xtalgen.screen.pipeline import candidate_id
    from xtalgen.screen.store import CandidateStore

    if not path.exists():
        return
    wanted = {candidate_id(i, c) for i, c in enumerate(crystals)}
    if not set(CandidateStore(path).stages()) <= wanted:
        print(f"{path} holds other candidates: starting it afresh", file=sys.stderr)
        path.unlink()


def sun_at(rows: list, threshold: float) -> dict[str, Any]:
    """S.U.N. fraction at ``threshold`` with the pipeline's rule (converged relaxed or
    duplicate rows, unique and novel flags), over all submitted rows."""
    n = len(rows)
    hits = 0
    for row in rows:
        e = row.get("e_above_hull")
        ok = row.get("stage") in ("relaxed", "duplicate") and row.get("converged", False)
        if ok and e is not None and e <= threshold and row.get("unique") and row.get("novel"):
            hits += 1
    return {"threshold": threshold, "n_sun": hits, "frac_sun": hits / n if n else None}


def sg_preservation(store: Any) -> dict[str, Any]:
    """Space group of each converged relaxation, before and after (spglib 0.1)."""
    from xtalgen.metrics.symmetry import space_group

    pairs = [(space_group(store.initial(r)), space_group(store.crystal(r)))
             for r in store.rows() if r.get("stage") == "relaxed"]
    same = sum(a == b for a, b in pairs)
    return {"n_relaxed": len(pairs), "n_unchanged": same,
            "frac_unchanged": same / len(pairs) if pairs else None,
            "frac_p1_before": np.mean([a == 1 for a, _ in pairs]) if pairs else None,
            "frac_p1_after": np.mean([b == 1 for _, b in pairs]) if pairs else None}


def sun_one(name: str, args: argparse.Namespace) -> dict[str, Any]:
    from xtalgen.screen.pipeline import ScreenConfig, screen
    from xtalgen.screen.store import CandidateStore

    samples, meta = dng_samples(name, args)
    pick = nested_subset(len(samples), args.sun_n, args.seed)
    subset = [samples[i] for i in pick]
    if not subset:
        return {"error": "no DNG samples to screen"}
    db = Path(args.out) / "sun" / f"{stem(name)}.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    fresh_store(db, subset)
    config = ScreenConfig(novelty_reference="mp20:offline_train", n_workers=args.sun_workers,
                          progress=not args.no_progress)
    summary, seconds = timed(lambda: screen(subset, db, config))
    store = CandidateStore(db)
    rows = sorted(store.rows(), key=lambda r: r.get("index", 0))
    relax_s = [r.get("relax_s") for r in rows if r.get("relax_s") is not None]
    return {
        "samples": meta.get("path"), "subset_of": len(samples), "subset_indices": pick.tolist(),
        "db": str(db), "n_screened": len(subset), "stages": summary.stages,
        "sun": {f"{t:g}": sun_at(rows, t) for t in SUN_THRESHOLDS},
        "pipeline_summary": summary.metrics, "sg_after_relaxation": sg_preservation(store),
        "wall_s_this_run": seconds, "n_computed_this_run": summary.n_computed_this_run,
        "relax_s_total": round(float(sum(relax_s)), 1), "screen_settings": config.settings(),
    }


def run_sun(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.setdefault("XTALGEN_THREADS", str(args.threads))
    result = {**header(args, "sun"), "n": args.n, "sun_n": args.sun_n,
              "subset": f"first sun_n of numpy default_rng({args.seed}).permutation of the "
                        "returned DNG samples (subset_indices)", "generators": {}}
    for name in names(args.dng_generators):
        result["generators"][name] = guarded(sun_one, name, args)
    write_json(Path(args.out) / "sun.json", result)
    sun_table(result)
    return result


def sun_table(result: dict[str, Any]) -> None:
    headers = ["generator", "screened", "relaxed", "S.U.N. <=0", "S.U.N. <=0.08",
               "S.U.N. <=0.1", "SG unchanged", "relax s"]
    rows = []
    for name, r in result["generators"].items():
        if "sun" not in r:
            rows.append([name, brief(r.get("error", "?"))] + ["-"] * (len(headers) - 2))
            continue
        sg = r["sg_after_relaxation"]
        rows.append([name, r["n_screened"], r["stages"].get("relaxed", 0),
                     *(pct(r["sun"][f"{t:g}"]["frac_sun"]) for t in SUN_THRESHOLDS),
                     f"{pct(sg['frac_unchanged'])} of {sg['n_relaxed']}", r["relax_s_total"]])
    markdown(f"S.U.N. (CHGNet, MP-20 hull; {result['sun_n']} of {result['n']} DNG samples)",
             headers, rows)


# -- part 3: space-group-conditioned DNG ---------------------------------------------------------------
def relax_short(crystals: list, args: argparse.Namespace) -> list:
    from xtalgen.relax import RelaxConfig, get_potential, relax

    potential = get_potential("chgnet", threads=args.threads)
    config = RelaxConfig(fmax=0.1, max_steps=args.sg_relax_steps)
    return relax(crystals, potential=potential, config=config, progress=False)


def failed_draws(report: Any) -> dict[str, int]:
    """Failed draws by reason from a ``last_report`` (``failed_attempts`` or ``failed``)."""
    if not isinstance(report, dict):
        return {}
    failed = report.get("failed_attempts", report.get("failed")) or {}
    return {str(k): int(v) for k, v in failed.items() if isinstance(v, (int, np.integer))}


def sgcond_group(generator: Any, sg: int, args: argparse.Namespace) -> dict[str, Any]:
    from xtalgen.metrics.symmetry import space_group
    from xtalgen.metrics.validity import structure_validity

    crystals, seconds = timed(lambda: generator.generate(args.sg_n, spacegroup=sg, seed=args.seed))
    report = getattr(generator, "last_report", None)
    failed = failed_draws(report)
    detected = [space_group(c) for c in crystals]
    results = relax_short(crystals[: args.sg_relax_n], args) if crystals else []
    after = [space_group(r.crystal) if r.crystal is not None else -1 for r in results]
    return {
        "n_requested": args.sg_n, "n_returned": len(crystals), "sampling_s": seconds,
        "last_report": report, "n_draws": len(crystals) + sum(failed.values()),
        "n_rejected_sg": failed.get("detected space group differs", 0),
        "n_struct_valid": sum(structure_validity(c) for c in crystals),
        "n_match": sum(d == sg for d in detected), "detected": detected,
        "n_relaxed": len(results), "n_converged": sum(r.converged for r in results),
        "n_match_relaxed": sum(a == sg for a in after), "detected_relaxed": after,
        "relax_s": round(sum(r.wall_s for r in results), 1),
    }


def sgcond_cached(name: str, generator: Any, sg: int, args: argparse.Namespace) -> dict[str, Any]:
    from xtalgen.errors import XtalgenError

    path = Path(args.out) / "sgcond" / stem(name) / f"sg{sg:03d}.json"
    key = {"sg_n": args.sg_n, "seed": args.seed, "sg_relax_n": args.sg_relax_n,
           "sg_relax_steps": args.sg_relax_steps, "checkpoint": checkpoint_tag(name),
           "enforce_spacegroup": getattr(generator, "enforce_spacegroup", None)}
    stored = read_json(path)
    if stored is not None and not args.resample and stored.get("key") == key:
        return stored["result"]
    try:
        result = sgcond_group(generator, sg, args)
    except XtalgenError as exc:
        return {"error": str(exc), "n_requested": args.sg_n}  # not cached
    write_json(path, {"key": key, "result": result})
    return result


COUNTS = ("n_returned", "n_struct_valid", "n_match", "n_draws", "n_rejected_sg", "n_relaxed",
          "n_converged", "n_match_relaxed")


def sgcond_summary(groups: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Counts pooled over the groups that sampled, and the fractions of the table."""
    ok = [g for g in groups.values() if "error" not in g]
    out: dict[str, Any] = {k: sum(g[k] for g in ok) for k in COUNTS}
    out.update(supported=bool(ok), n_groups=len(ok), n_groups_failed=len(groups) - len(ok),
               n_requested=sum(g["n_requested"] for g in groups.values()))
    return {**out, **sgcond_fractions(out)}


def sgcond_fractions(c: dict[str, Any]) -> dict[str, float | None]:
    def ratio(a: str, b: str) -> float | None:
        return c[a] / c[b] if c[b] else None

    return {"struct_valid": ratio("n_struct_valid", "n_returned"),
            "success": ratio("n_match", "n_returned"),
            "success_of_requested": ratio("n_match", "n_requested"),
            "success_per_draw": ratio("n_match", "n_draws"),
            "success_relaxed": ratio("n_match_relaxed", "n_relaxed")}


def sgcond_one(name: str, args: argparse.Namespace) -> dict[str, Any]:
    generator = load(name, args)
    if args.sg_filter != "model" and hasattr(generator, "enforce_spacegroup"):
        generator.enforce_spacegroup = args.sg_filter == "on"
    groups = {sg: sgcond_cached(name, generator, sg, args) for sg in SGCOND_GROUPS}
    out = {"groups": groups, "overall": sgcond_summary(groups),
           "enforce_spacegroup": getattr(generator, "enforce_spacegroup", None)}
    if not out["overall"]["supported"]:
        errors = {g["error"] for g in groups.values()}
        out["not_supported"] = errors.pop() if len(errors) == 1 else sorted(errors)
    return out


def run_sgcond(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.setdefault("XTALGEN_THREADS", str(args.threads))
    result = {**header(args, "sgcond"), "sg_n": args.sg_n, "sg_relax_n": args.sg_relax_n,
              "relaxation": f"CHGNet, FIRE + Frechet cell filter, fmax 0.1 eV/A, at most "
                            f"{args.sg_relax_steps} steps, first {args.sg_relax_n} samples per "
                            "group; unconverged ones scored on their last structure",
              "symprec": 0.1, "space_groups": list(SGCOND_GROUPS), "generators": {}}
    for name in names(args.dng_generators):
        result["generators"][name] = guarded(sgcond_one, name, args)
    write_json(Path(args.out) / "sgcond.json", result)
    sgcond_tables(result)
    return result


def sgcond_row(label: Any, system: str, c: dict[str, Any]) -> list[Any]:
    f = sgcond_fractions(c)
    return [label, system, f"{c['n_returned']}/{c['n_requested']}", pct(f["struct_valid"]),
            pct(f["success"]), f"{pct(f['success_per_draw'])} of {c['n_draws']}",
            c["n_rejected_sg"], f"{pct(f['success_relaxed'])} of {c['n_relaxed']}"]


def sgcond_tables(result: dict[str, Any]) -> None:
    from xtalgen.representations.wyckoff import crystal_system

    headers = ["SG", "system", "returned/req.", "struct valid", "SG match (returned)",
               "SG match (per draw)", "rejected: SG differs", "SG match relaxed"]
    for name, r in result["generators"].items():
        if "groups" not in r:
            print(f"\n### SG-conditioned DNG, {name}: not available ({brief(r.get('error'))})")
            continue
        if not r["overall"]["supported"]:
            print(f"\n### SG-conditioned DNG, {name}: not supported ({r['not_supported']})")
            continue
        rows = [[sg, crystal_system(int(sg)), brief(g["error"])] + ["-"] * 5 if "error" in g
                else sgcond_row(sg, crystal_system(int(sg)), g) for sg, g in r["groups"].items()]
        rows.append(sgcond_row("**all**", "", r["overall"]))
        markdown(f"SG-conditioned DNG, {name} ({result['sg_n']} per group, enforce_spacegroup "
                 f"{r.get('enforce_spacegroup')})", headers, rows)


# -- part 4: CSP -----------------------------------------------------------------------------------------
def csp_samples(name: str, dataset: str, targets: list, args: argparse.Namespace) -> tuple[list, dict]:
    """``k`` samples per target (cached)."""
    ids = [str(t.properties.get("material_id", i)) for i, t in enumerate(targets)]
    path = Path(args.samples_dir) / f"csp-{dataset}-{stem(name)}-k{args.csp_k}.extxyz"
    key = {"generator": name, "k": args.csp_k, "seed": args.seed, "target_ids": ids,
           "checkpoint": checkpoint_tag(name),
           "flow_steps": args.flow_steps if "flow" in name else None}
    hit = cached_samples(path, key, args)
    if hit is not None:
        return hit[0], {**hit[1], "reused": True}
    generator = load(name, args)
    samples, seconds = timed(lambda: generator.sample_csp(targets, k=args.csp_k, seed=args.seed))
    meta = {**key, "n_returned": len(samples), "sampling_s": seconds, "threads": args.threads,
            "last_report": getattr(generator, "last_report", None), "path": str(path)}
    store_samples(path, samples, meta)
    return samples, {**meta, "reused": False}


def csp_one(name: str, dataset: str, targets: list, args: argparse.Namespace) -> dict[str, Any]:
    from xtalgen.metrics.csp import CSPConfig, evaluate_csp

    samples, meta = csp_samples(name, dataset, targets, args)
    first = [c for c in samples if int(c.properties.get("sample_index", -1)) == 0]
    progress = not args.no_progress
    at1 = evaluate_csp(first, targets, config=CSPConfig(k=1, n_jobs=args.jobs, progress=progress))
    atk, seconds = timed(lambda: evaluate_csp(
        samples, targets, config=CSPConfig(k=args.csp_k, n_jobs=args.jobs, progress=progress)))
    meta = {k: v for k, v in meta.items() if k != "target_ids"}
    return {"sampling": meta, "n_samples": len(samples), "n_first_samples": len(first),
            "last_report": meta.get("last_report"), "metrics_k1": at1.values(),
            f"metrics_k{args.csp_k}": atk.values(), "eval_k_s": seconds}


def csp_dataset(dataset: str, split: str, n_targets: int, generators: str,
                args: argparse.Namespace) -> dict[str, Any]:
    from xtalgen.data import load_dataset

    reference = list(load_dataset(dataset, split))
    pick = seeded_subset(len(reference), n_targets, args.seed)
    targets = [reference[i] for i in pick]
    out = {"split": f"{dataset} {split}", "n_targets": len(targets), "of": len(reference),
           "target_ids": [str(t.properties.get("material_id", "")) for t in targets],
           "generators": {}}
    for name in names(generators):
        out["generators"][name] = guarded(csp_one, name, dataset, targets, args)
    return out


def run_csp(args: argparse.Namespace) -> dict[str, Any]:
    result = {**header(args, "csp"), "k": args.csp_k, "gate": "pred_and_gt", "jobs": args.jobs,
              "targets": "seeded subset (numpy default_rng(seed).choice, sorted); all when the "
                         "size is 0 or at least the split",
              "datasets": {
                  "mp20": csp_dataset("mp20", "pilot_test", args.csp_targets,
                                      args.csp_generators, args),
                  "perov5": csp_dataset("perov5", "test", args.perov_targets,
                                        args.perov_csp_generators, args)}}
    write_json(Path(args.out) / "csp.json", result)
    csp_table(result, args.csp_k)
    return result


def csp_table(result: dict[str, Any], k: int) -> None:
    headers = ["dataset", "generator", "targets", "match@1", "RMSE@1", f"match@{k}",
               f"RMSE@{k}", "samples", "sampling s"]
    rows = []
    for dataset, d in result["datasets"].items():
        for name, r in d["generators"].items():
            if "metrics_k1" not in r:
                rows.append([dataset, name, d["n_targets"], brief(r.get("error", "?"))]
                            + ["-"] * (len(headers) - 4))
                continue
            m1, mk = r["metrics_k1"], r[f"metrics_k{k}"]
            rows.append([dataset, name, d["n_targets"], pct(m1["match_rate@1"]),
                         fmt(m1["rmse@1"], 4), pct(mk[f"match_rate@{k}"]), fmt(mk[f"rmse@{k}"], 4),
                         r["n_samples"], fmt(r["sampling"].get("sampling_s"), 1)])
    markdown(f"CSP (k = 1 and {k}, seed {result['seed']})", headers, rows)


# -- part 5: cost -------------------------------------------------------------------------------------
def training_info(name: str, generator: Any) -> dict[str, Any]:
    from xtalgen.models.checkpoint import read_checkpoint

    path = checkpoint_path(name) or (Path(generator.checkpoint)
                                     if getattr(generator, "checkpoint", None) else None)
    if path is None:
        return {"checkpoint": None}
    payload = read_checkpoint(path)
    train = payload.get("train_config") or {}
    prov = payload.get("provenance") or {}
    return {"checkpoint": str(path), "wall_time_s": payload.get("wall_time_s"),
            "step": payload.get("step"), "device": train.get("device"),
            "machine": prov.get("machine"), "train_split": prov.get("split")}


def cost_one(name: str, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    generator = load(name, args)
    params = sum(p.numel() for p in generator.model.parameters())
    before, load_avg = torch.get_num_threads(), round(os.getloadavg()[0], 2)
    if load_avg > BUSY_LOAD:
        print(f"warning: load average {load_avg} before timing {name}: the machine is busy, "
              "so this timing is unreliable (2 threads next to two busy processes: 27x slower)",
              file=sys.stderr)
    torch.set_num_threads(args.cost_threads)
    try:
        samples, seconds = timed(lambda: generator.generate(args.cost_n, seed=args.seed))
    finally:
        torch.set_num_threads(before)
    return {"n_requested": args.cost_n, "n_returned": len(samples), "sampling_s": seconds,
            "crystals_per_s": len(samples) / seconds if seconds else None,
            "load_avg_1min_before": load_avg, "machine_busy": load_avg > BUSY_LOAD,
            "last_report": getattr(generator, "last_report", None), "parameters": params,
            "training": training_info(name, generator)}


def run_cost(args: argparse.Namespace) -> dict[str, Any]:
    result = {**header(args, "cost"), "cost_n": args.cost_n, "cost_threads": args.cost_threads,
              "generators": {}}
    for name in names(args.dng_generators):
        result["generators"][name] = guarded(cost_one, name, args)
    write_json(Path(args.out) / "cost.json", result)
    cost_table(result)
    return result


def cost_table(result: dict[str, Any]) -> None:
    headers = ["generator", "parameters", "training s", "trained on", "sampled",
               f"sampling s ({result['cost_threads']} threads)", "crystals/s"]
    rows = []
    for name, r in result["generators"].items():
        if "parameters" not in r:
            rows.append([name, brief(r.get("error", "?"))] + ["-"] * (len(headers) - 2))
            continue
        t = r["training"]
        rows.append([name, f"{r['parameters']:,}", fmt(t.get("wall_time_s"), 0), t.get("device"),
                     f"{r['n_returned']}/{r['n_requested']}", fmt(r["sampling_s"], 1),
                     fmt(r["crystals_per_s"], 1)])
    markdown("Cost (MP-20 DNG sampling on the CPU)", headers, rows)


# -- main ----------------------------------------------------------------------------------------------
RUNNERS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "dng": run_dng, "sun": run_sun, "sgcond": run_sgcond, "csp": run_csp, "cost": run_cost,
}


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    args.samples_dir = args.samples_dir or str(Path(args.out) / "samples")
    os.environ.setdefault("XTALGEN_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    for part in PARTS if args.part == "all" else (args.part,):
        start = time.perf_counter()
        RUNNERS[part](args)
        print(f"\npart {part}: {time.perf_counter() - start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
