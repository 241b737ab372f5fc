"""The CIF language model (issue 14): CrystaLLM's validity checks, CSP with and without the
space group in the prompt, and DNG.

    python benchmarks/bench_cif_lm.py --model mp20-cif-lm --dataset mp20 --split pilot_test \\
        --n-targets 1000 --k 20 --dng 1000 --out benchmarks/results/cif-lm-mp20
    python benchmarks/bench_cif_lm.py --model perov5-cif-lm --dataset perov5 --split test \\
        --n-targets 500 --k 20 --dng 0 --out benchmarks/results/cif-lm-perov5

Protocol (every attempt counts; nothing is drawn again, ``max_rounds=1``):

* CSP: for each target, ``k`` texts from the prompt ``data_<cell formula>`` (the target's
  conventional cell at symprec 0.1, CrystaLLM's benchmark prompt), and ``k`` more with the
  target's space group after it. A text that does not parse is a failed attempt. match@1 is the
  first attempt only (``sample_index`` 0); match@k any of the k (evaluate_csp, the CDVAE/DiffCSP
  matcher stol 0.5, angle_tol 10, ltol 0.3, validity gate as the suite's).
* Validity: CrystaLLM's checks (:mod:`xtalgen.metrics.cif_validity`) on the first attempt of
  every prompt without the space group (unparseable texts included, as failures of all checks),
  and on the test set's own texts as the ceiling.
* DNG: ``--dng`` texts from the bare ``data_`` prompt: the checks, then the DNG suite
  (validity, COV-R/P, novelty against the training split) and the P1 share at symprec 0.1.

Samples and sampling reports are cached under ``--cache`` (rerun to resume); OUT/results.json
holds every figure. Generated cells that are not sensible (CrystaLLM's ``is_sensible``) or are
degenerate count as failed attempts (the generator's rule); run it under a memory limit
(``ulimit -v``) all the same: pymatgen's matcher can exhaust memory on extreme cells, and a
``MemoryError`` in a match counts as no match, as an exception does in the reference code.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from xtalgen import io as xio
from xtalgen.data import load_dataset
from xtalgen.metrics import CSPConfig, DNGConfig, evaluate_csp, evaluate_dng
from xtalgen.metrics.cif_validity import cif_validity
from xtalgen.metrics.presets import EVAL_MODELS
from xtalgen.metrics.symmetry import space_groups
from xtalgen.models.registry import load_generator
from xtalgen.representations.cif_text import crystal_to_cif_text


def _sampled(out: Path, name: str, make) -> tuple[list, dict]:
    """Samples and report of one run, cached under OUT/name."""
    data, meta = out / f"{name}.extxyz", out / f"{name}.json"
    if meta.is_file():
        report = json.loads(meta.read_text())
        return (xio.read(data) if report["decoded"] else []), report
    start = time.perf_counter()
    crystals, report = make()
    report["seconds"] = time.perf_counter() - start
    if crystals:
        xio.write(crystals, data)
    meta.write_text(json.dumps(report))
    return crystals, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--train-split", default=None)
    parser.add_argument("--n-targets", type=int, default=1000)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--dng", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--passes", default="csp,csp_sg,dng",
                        help="which parts to run (csp, csp_sg, dng); parts can run in separate "
                             "processes (same --cache and --out): results.json merges them")
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True, help="results.json goes here")
    parser.add_argument("--cache", type=Path, default=None,
                        help="samples and sampling reports (default: runs/cache-<out name>)")
    args = parser.parse_args()
    cache = args.cache or Path("runs") / f"cache-{args.out.name}"
    cache.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    test = list(load_dataset(args.dataset, args.split, progress=False))
    if args.n_targets and args.n_targets < len(test):
        picks = np.random.default_rng(args.seed).choice(len(test), args.n_targets, replace=False)
        test = [test[i] for i in sorted(picks.tolist())]
    train_split = args.train_split or ("offline_train" if args.dataset == "mp20" else "train")
    generator = load_generator(args.model, batch_size=args.batch_size, progress=True, max_rounds=1)
    results: dict = {"model": args.model, "dataset": args.dataset, "split": args.split,
                     "n_targets": len(test), "k": args.k, "seed": args.seed,
                     "machine": f"{platform.node()} ({torch.get_num_threads()} threads)",
                     "date": time.strftime("%Y-%m-%d"), "provenance": generator.provenance}

    passes = set(args.passes.split(","))
    for with_sg in (False, True):
        key = "csp_sg" if with_sg else "csp"
        if key not in passes:
            continue

        def make(with_sg=with_sg):
            crystals = generator.sample_csp(test, k=args.k, seed=args.seed, spacegroup=with_sg)
            report = dict(generator.last_report)
            return crystals, report

        samples, report = _sampled(cache, key, make)
        first = [s for s in samples if int(s.properties["sample_index"]) == 0]
        at1 = evaluate_csp(first, test, config=CSPConfig(k=1, progress=False)).values()
        atk = evaluate_csp(samples, test, config=CSPConfig(k=args.k, progress=False)).values()
        results[key] = {
            "match@1": at1["match_rate@1"], "rmse@1": at1["rmse@1"],
            f"match@{args.k}": atk[f"match_rate@{args.k}"], f"rmse@{args.k}": atk[f"rmse@{args.k}"],
            "attempts": report["requested"], "parsed": report["decoded"],
            "failed": report["failed_attempts"], "sampling_s": report["seconds"],
            "s_per_1000": 1000 * report["seconds"] / report["requested"],
        }
        print(key, json.dumps(results[key]), flush=True)
        if not with_sg:
            # validity of the first attempt of every prompt, the texts that did not parse included
            texts = [s.properties["cif_text"] for s in first]
            texts += [f["text"] for f in report["failed_texts"] if f["sample_index"] == 0]
            validity = cif_validity(texts)
            missing = len(test) - len(texts)
            rates = {name: rate * len(texts) / len(test) for name, rate in validity["rates"].items()}
            results["validity_csp_first"] = {"n_prompts": len(test), "texts": len(texts),
                                             "missing": missing, "rates": rates,
                                             "reasons": validity["reasons"]}
            print("validity", json.dumps(results["validity_csp_first"]), flush=True)
    if "csp" in passes:
        reference = cif_validity([crystal_to_cif_text(c) for c in test])
        results["validity_test_set"] = {"rates": reference["rates"],
                                        "reasons": reference["reasons"]}
        print("test set", json.dumps(results["validity_test_set"]), flush=True)

    if args.dng and "dng" in passes:
        def make_dng():
            crystals = generator.generate(args.dng, seed=args.seed)
            return crystals, dict(generator.last_report)

        samples, report = _sampled(cache, "dng", make_dng)
        texts = [s.properties["cif_text"] for s in samples] + [f["text"] for f in report["failed_texts"]]
        validity = cif_validity(texts)
        train = list(load_dataset(args.dataset, train_split, progress=False))
        config = DNGConfig(eval_model=EVAL_MODELS.get(args.dataset, "mp20"), progress=False)
        dng = evaluate_dng(samples, test, train=train, config=config).values()
        groups = space_groups(samples)
        results["dng"] = {
            "requested": args.dng, "parsed": report["decoded"], "failed": report["failed_attempts"],
            "cif_checks": validity["rates"], "reasons": validity["reasons"],
            "p1_share": float(np.mean(groups == 1)) if len(groups) else None,
            "sampling_s": report["seconds"],
            "s_per_1000": 1000 * report["seconds"] / args.dng,
            **{k: v for k, v in dng.items() if isinstance(v, (int, float)) or v is None},
        }
        print("dng", json.dumps(results["dng"]), flush=True)
    path = args.out / "results.json"  # parts run by separate processes are merged
    merged = json.loads(path.read_text()) if path.is_file() else {}
    merged.update(results)
    path.write_text(json.dumps(merged, indent=1, default=str))


if __name__ == "__main__":
    main()
