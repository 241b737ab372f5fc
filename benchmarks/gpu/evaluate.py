"""Score the samples a GPU lease brought back (``lease.py``), on the CPU.

    .venv/bin/python benchmarks/gpu/evaluate.py runs/gpu1/samples_perov5.npz p5_k20_s20 \
        --targets perov5_offline_test --k 20 --out runs/gpu1/eval/p5_k20_s20.json
    .venv/bin/python benchmarks/gpu/evaluate.py runs/gpu1/samples_mp20.npz mp20_dng_s100 \
        --dng mp20
    .venv/bin/python benchmarks/gpu/evaluate.py runs/gpu1/samples_mp20.npz mp20_tpl200_k20 \
        --targets mp20_tpl200 --k 20 --first-targets 50 --relax-steps 50   # CHGNet-relaxed

CSP keys are scored with :func:`xtalgen.metrics.csp.evaluate_csp` against the pack's target
list (the same crystals ``lease.py`` sampled for, in the same order), exactly as
``bench_csp_model.py`` scores samples it draws itself. DNG keys (``--dng DATASET``) are scored
with :func:`xtalgen.metrics.dng.evaluate_dng` against the dataset's ``offline_test`` split,
novelty against ``offline_train``, as ``bench_sampling_dng.py`` does.
"""

from __future__ import annotations

import argparse
import json
import pickle
import platform
from datetime import UTC, datetime
from pathlib import Path

import numpy as np


def load_samples(path: str | Path, key: str, targets=None) -> list:
    """The crystals of ``key`` (see ``lease.SampleStore``), tagged with their target's
    ``material_id`` and their ``sample_index`` (and ``template_noise`` if templated)."""
    from xtalgen.crystal import Crystal

    data = np.load(path)
    get = lambda name: data[f"{key}__{name}"]  # noqa: E731
    ptr = np.concatenate([[0], np.cumsum(get("num_atoms"))])
    lattices, frac, species = get("lattices"), get("frac_coords"), get("species")
    out = []
    for i, (target, index, templated) in enumerate(zip(get("target"), get("sample_index"), get("templated"))):
        props: dict = {"sample_index": int(index), "index": i}
        if target >= 0:
            props["material_id"] = targets[target].properties.get("material_id", str(target))
        if templated:
            props["template_noise"] = True
        out.append(Crystal(lattices[i].astype(np.float64), frac[ptr[i] : ptr[i + 1]].astype(np.float64),
                           species[ptr[i] : ptr[i + 1]], props))
    return out


def load_targets(pack: str | Path, name: str) -> list:
    """The CSP targets ``name`` of a pack (``pack.py``), in the order ``lease.py`` sampled them."""
    with open(Path(pack) / f"{name}.pkl", "rb") as fh:
        targets = pickle.load(fh)
    return targets["targets"] if isinstance(targets, dict) else targets  # mp20_tpl200: + templates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("samples")
    parser.add_argument("key")
    parser.add_argument("--pack", default="runs/gpu_pack")
    parser.add_argument("--targets", default=None, help="CSP: the pack's target list")
    parser.add_argument("--k", type=int, default=1)
    parser.add_argument("--dng", default=None, help="DNG: dataset (mp20 or perov5)")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--first-targets", type=int, default=0,
                        help="CSP: score only the first T targets of the list (0: all)")
    parser.add_argument("--relax-steps", type=int, default=0,
                        help="CSP: relax every sample with CHGNet (at most this many FIRE steps, "
                             "fmax 0.1 eV/A) before scoring")
    parser.add_argument("--out", default=None)
    parser.add_argument("--table", default=None, help="write the per-sample table (CSV) here")
    args = parser.parse_args()

    from xtalgen.data import load_dataset

    result: dict = {"samples": args.samples, "key": args.key}
    if args.dng:
        from xtalgen.metrics.dng import DNGConfig, evaluate_dng

        samples = load_samples(args.samples, args.key)
        test = list(load_dataset(args.dng, "offline_test"))
        train = list(load_dataset(args.dng, "offline_train"))
        eval_model = "perovskite" if args.dng == "perov5" else "mp20"
        evaluation = evaluate_dng(samples, test, train=train, config=DNGConfig(
            eval_model=eval_model, n_jobs=args.n_jobs, n_subsample=min(1000, len(samples))))
        result.update(dataset=args.dng, test="offline_test", n=len(samples))
    else:
        from xtalgen.metrics.csp import CSPConfig, evaluate_csp

        targets = load_targets(args.pack, args.targets)
        samples = load_samples(args.samples, args.key, targets)
        if args.first_targets:
            targets = targets[: args.first_targets]
            kept = {t.properties.get("material_id") for t in targets}
            samples = [c for c in samples if c.properties.get("material_id") in kept]
        if args.relax_steps:
            from xtalgen.pipelines.templated_csp import relax_samples
            from xtalgen.screen import get_executor

            executor = get_executor(n_workers=args.n_jobs)
            samples = relax_samples(samples, max_steps=args.relax_steps, progress=True,
                                    executor=executor)
            executor.close()
            result.update(relax_steps=args.relax_steps,
                          relaxed=sum(bool(c.properties.get("relaxed")) for c in samples))
        evaluation = evaluate_csp(samples, targets, config=CSPConfig(k=args.k, n_jobs=args.n_jobs))
        result.update(targets=args.targets, n_targets=len(targets), k=args.k, n=len(samples),
                      templated=int(sum("template_noise" in c.properties for c in samples)))
    result["metrics"] = {m.name: m.value for m in evaluation.metrics}
    if args.table:
        evaluation.table.to_csv(args.table, index=False)
    result["scored_on"] = f"{platform.node()} (2-core CPU dev machine)"
    result["date"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
