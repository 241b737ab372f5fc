"""How far can templates go? The prototype ceiling of CSP on a test split, under the gate.

    .venv/bin/python benchmarks/bench_template_ceiling.py --dataset mp20 --split offline_test \
        --pool offline_train --n-jobs 2 --out runs/ceiling.json \
        --table runs/gpu1/eval/mp20_k20_s20.csv   # optional: samples that go beyond templates

For every test structure (target), with the CSP matcher (``StructureMatcher(stol=0.5,
angle_tol=10, ltol=0.3)``, spec B.7):

* **ceiling**: does *any* pool crystal of the target's anonymous formula match the target
  under some assignment of species (``fit_anonymous``)? Tried in order: the same prototype
  (space group and Wyckoff letters, symprec 0.1), the same space group, the rest; at most
  ``--max-tries`` per target. A target no pool crystal matches this way cannot be matched by
  any species substitution of the pool, however it is ranked or decorated (a learned
  refinement or relaxation could still move a template onto it).
* **retrieval**: the ``--n-retrieve`` templates that the CSP benchmarks start from
  (:func:`xtalgen.pipelines.templated_csp.retrieve_templates`, unrelaxed, as
  ``bench_csp_model.py --templates``), in retrieval order: the first that matches the target
  (``fit``, real species), giving match@k of the templates alone for every k up to
  ``--n-retrieve``.

"Gated" figures count a target only when the target itself is valid (structure and SMACT),
since a prediction of its composition can never pass the gate otherwise (spec B.7: @20 gates
on ``pred.valid``, and the composition is the target's).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

_POOL: list = []
_INDEX = None


def _init(pool) -> None:
    global _POOL, _INDEX
    from xtalgen.search.prototypes import PrototypeIndex

    _POOL = pool
    _INDEX = PrototypeIndex(pool)


def _one_target(task: tuple) -> dict:
    """Ceiling and retrieval rank of one target (worker side)."""
    from xtalgen.matching import csp_matcher
    from xtalgen.search.prototypes import prototype_key, reduced_counts

    target, templates, max_tries = task
    warnings.simplefilter("ignore")
    matcher = csp_matcher()
    structure = target.to_pymatgen()
    candidates = _INDEX.candidates(reduced_counts(np.asarray(target.species)))
    key = prototype_key(target)
    same_proto = [i for i in candidates if _INDEX.prototype(i)[1:] == key[1:]]
    same_sg = [i for i in candidates if _INDEX.prototype(i)[1] == key[1] and i not in same_proto]
    rest = [i for i in candidates if _INDEX.prototype(i)[1] != key[1]]
    hit = None
    for tries, i in enumerate((same_proto + same_sg + rest)[:max_tries]):
        try:
            if matcher.fit_anonymous(structure, _POOL[i].to_pymatgen()):
                hit = tries
                break
        except Exception:  # pymatgen fails on some pairs: no match
            pass
    first_fit = None
    for rank, template in enumerate(templates):
        try:
            if matcher.fit(structure, template.to_pymatgen()):
                first_fit = rank
                break
        except Exception:  # as above
            pass
    kind = ("no template of the formula type" if not candidates else
            "same prototype in the pool" if same_proto else
            "same space group in the pool" if same_sg else "formula type only")
    return {"material_id": target.properties.get("material_id"), "n_candidates": len(candidates),
            "ceiling_hit": hit is not None, "first_fit": first_fit, "kind": kind}


def _beyond(tables: list[str], rows: list[dict], hit: np.ndarray, valid: np.ndarray) -> dict:
    """Per table: targets its (gated) samples match, and those of them outside the ceiling."""
    import pandas as pd

    out = {}
    for path in tables:
        table = pd.read_csv(path)
        matched = set(table.loc[table.matched.astype(bool), "target_material_id"].astype(str))
        ids = [str(r["material_id"]) for r in rows]
        by_samples = np.array([i in matched for i in ids])
        out[path] = {
            "matched": round(float(by_samples.mean()), 4),
            "matched_outside_ceiling": int((by_samples & ~hit).sum()),
            "ceiling_gated_or_matched": round(float(((hit & valid) | by_samples).mean()), 4),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mp20")
    parser.add_argument("--split", default="offline_test")
    parser.add_argument("--pool", default="offline_train", help="template splits, comma-joined")
    parser.add_argument("--n-retrieve", type=int, default=100)
    parser.add_argument("--max-tries", type=int, default=300)
    parser.add_argument("--targets", type=int, default=0, help="seeded subset (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--table", action="append", default=[],
                        help="per-sample CSV of a CSP evaluation (evaluate.py --table): also "
                             "report the targets its samples match that no template can")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    from multiprocessing import get_context

    from tqdm.auto import tqdm

    from xtalgen.data import load_dataset
    from xtalgen.metrics.validity import smact_validity, structure_validity
    from xtalgen.pipelines.templated_csp import retrieve_templates

    test = list(load_dataset(args.dataset, args.split))
    if args.targets and args.targets < len(test):
        pick = np.sort(np.random.default_rng(args.seed).choice(len(test), args.targets, replace=False))
        test = [test[i] for i in pick]
    pool = [c for name in args.pool.split(",") for c in load_dataset(args.dataset, name)]
    start = time.perf_counter()
    templates = retrieve_templates(test, args.n_retrieve, pool=pool, progress=True)
    tasks = [(t, tpl, args.max_tries) for t, tpl in zip(test, templates)]
    with get_context("fork").Pool(args.n_jobs, initializer=_init, initargs=(pool,)) as workers:
        rows = list(tqdm(workers.imap(_one_target, tasks, chunksize=4), total=len(tasks),
                         desc="match"))
    valid = np.array([structure_validity(t) and smact_validity(t) for t in test])
    hit = np.array([r["ceiling_hit"] for r in rows])
    first = [r["first_fit"] for r in rows]
    ks = sorted({1, 5, 10, 20, 50, args.n_retrieve})
    fit_at = {k: np.array([f is not None and f < k for f in first]) for k in ks}
    kinds: dict[str, dict[str, int]] = {}
    for r, ok in zip(rows, valid):
        if not r["ceiling_hit"]:
            entry = kinds.setdefault(r["kind"], {"targets": 0, "valid_targets": 0})
            entry["targets"] += 1
            entry["valid_targets"] += int(ok)
    result = {
        "dataset": args.dataset, "split": args.split, "targets": len(test), "pool": args.pool,
        "pool_size": len(pool), "n_retrieve": args.n_retrieve, "max_tries": args.max_tries,
        "valid_targets": round(float(valid.mean()), 4),
        "ceiling_ungated": round(float(hit.mean()), 4),
        "ceiling_gated": round(float((hit & valid).mean()), 4),
        "templates_alone_match_at_k_ungated": {k: round(float(v.mean()), 4) for k, v in fit_at.items()},
        "templates_alone_match_at_k_gated": {k: round(float((v & valid).mean()), 4)
                                             for k, v in fit_at.items()},
        "misses_by_kind": kinds,
        "beyond_the_ceiling": _beyond(args.table, rows, hit, valid),
        "time_s": round(time.perf_counter() - start, 1), "n_jobs": args.n_jobs,
        "machine": f"{platform.node()} (2-core CPU dev machine)",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    result["per_target"] = rows
    print(json.dumps({k: v for k, v in result.items() if k != "per_target"}, indent=1))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
