"""CSP match rate and RMSE (k = 1 and k = K) of a trained diffusion / flow checkpoint.

    .venv/bin/python benchmarks/bench_csp_model.py CHECKPOINT --dataset perov5 --split offline_test \
        --targets 300 --k 1 --steps 1000 --seed 0

Samples ``k`` structures per target composition (a seeded subset of ``--targets`` test
structures, or all with ``--targets 0``), scores them with :func:`xtalgen.metrics.csp.evaluate_csp`
(StructureMatcher stol=0.5, angle_tol=10, ltol=0.3; spec B.7) and prints one Markdown row plus
the sampling time. Writes the full result to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import pickle
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--dataset", default="perov5")
    parser.add_argument("--split", default="offline_test")
    parser.add_argument("--targets", type=int, default=300, help="seeded subset size (0: all)")
    parser.add_argument("--k", type=int, default=1)
    parser.add_argument("--steps", type=int, default=None, help="sampler steps (default: model's)")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--anneal", type=float, default=None, help="flow: coordinate anneal")
    parser.add_argument("--step-lr", type=float, default=None, help="diffusion: corrector step")
    parser.add_argument("--templates", default=None,
                        help="start from prototypes retrieved from this split (e.g. offline_train; "
                             "several joined by commas)")
    parser.add_argument("--noise-level", type=float, default=0.5,
                        help="template corruption; 0: the templates themselves, no network")
    parser.add_argument("--template-cells", default="prefer", choices=["prefer", "any", "target"],
                        help="the target's number of sites first / any number of formula units "
                             "/ the target's sites only")
    parser.add_argument("--template-fill", default="noise", choices=["noise", "cycle"],
                        help="samples beyond the usable templates: from noise, or reuse templates")
    parser.add_argument("--reuse-noise-level", type=float, default=None,
                        help="with --template-fill cycle: noise of a template's later uses")
    parser.add_argument("--n-templated", type=int, default=None,
                        help="at most this many templated samples per target (default: k)")
    parser.add_argument("--templates-last", action="store_true",
                        help="templated samples take the last sample indices (sample 0 template-free)")
    parser.add_argument("--n-retrieve", type=int, default=None,
                        help="templates retrieved per target before the plan picks k (default k)")
    parser.add_argument("--template-cache", default=None,
                        help="pickle of the retrieved templates (read if present, else written)")
    parser.add_argument("--relax-steps", type=int, default=0,
                        help="relax every sample with CHGNet for at most this many FIRE steps "
                             "before scoring (0: none; fmax 0.1 eV/A)")
    parser.add_argument("--relax-workers", type=int, default=1,
                        help="worker processes for the relaxation")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from xtalgen.data import load_dataset
    from xtalgen.metrics.csp import CSPConfig, evaluate_csp
    from xtalgen.models import load_model

    test = list(load_dataset(args.dataset, args.split))
    n_all = len(test)
    if args.targets and args.targets < n_all:
        pick = np.sort(np.random.default_rng(args.seed).choice(n_all, args.targets, replace=False))
        test = [test[i] for i in pick]
    generator = load_model(args.checkpoint, n_steps=args.steps, batch_size=args.batch_size,
                           progress=True)
    n_retrieve = args.n_retrieve or args.k
    if args.templates and args.template_cache and Path(args.template_cache).exists():
        templates, template_time = load_cached_templates(args.template_cache, test, n_retrieve)
    elif args.templates:
        templates, template_time = retrieve_templates(test, args.dataset, args.templates, n_retrieve)
        if args.template_cache:
            Path(args.template_cache).parent.mkdir(parents=True, exist_ok=True)
            with open(args.template_cache, "wb") as fh:
                pickle.dump({"ids": material_ids(test), "templates": templates,
                             "n_retrieve": n_retrieve, "time_s": template_time}, fh)
    else:
        templates, template_time = None, 0.0
    if args.anneal is not None:
        generator.model.process.config.coord_anneal = args.anneal
    if args.step_lr is not None:
        generator.model.process.config.corrector_step_lr = args.step_lr
    options = dict(template_cells=args.template_cells, template_fill=args.template_fill,
                   n_templated=args.n_templated, templates_first=not args.templates_last)
    start = time.perf_counter()
    if templates is not None and args.noise_level == 0:
        from xtalgen.models.iterative.templates import templates_as_samples

        samples = templates_as_samples(test, templates, args.k, cells=options["template_cells"],
                                       fill=options["template_fill"],
                                       n_templated=options["n_templated"],
                                       templates_first=options["templates_first"])
    else:
        samples = generator.sample_csp(test, k=args.k, seed=args.seed, templates=templates,
                                       noise_level=args.noise_level,
                                       reuse_noise_level=args.reuse_noise_level, **options)
    sample_time = time.perf_counter() - start
    relax_time = 0.0
    if args.relax_steps > 0:
        from xtalgen.pipelines.templated_csp import relax_samples
        from xtalgen.screen import get_executor

        start = time.perf_counter()
        executor = get_executor(n_workers=args.relax_workers)
        samples = relax_samples(samples, max_steps=args.relax_steps, progress=True,
                                executor=executor)
        executor.close()
        relax_time = time.perf_counter() - start
    evaluation = evaluate_csp(samples, test, config=CSPConfig(k=args.k, n_jobs=1))
    metrics = {m.name: m.value for m in evaluation.metrics}
    steps = args.steps or "default"
    result = {
        "checkpoint": args.checkpoint, "dataset": args.dataset, "split": args.split,
        "targets": len(test), "of": n_all, "k": args.k, "steps": steps, "seed": args.seed,
        "anneal": args.anneal, "step_lr": args.step_lr, "templates": args.templates,
        "noise_level": args.noise_level if args.templates else None,
        "reuse_noise_level": args.reuse_noise_level,
        "template_options": options if args.templates else None,
        "n_retrieve": n_retrieve if args.templates else None,
        "templated_samples": sum("template_noise" in c.properties or "template_rank" in c.properties
                                 for c in samples),
        "samples": len(samples),
        "relax_steps": args.relax_steps, "relax_workers": args.relax_workers,
        "relax_time_s": round(relax_time, 1),
        "relaxed": sum(bool(c.properties.get("relaxed")) for c in samples),
        "template_time_s": round(template_time, 1), "metrics": metrics, "sampling_time_s": round(sample_time, 1),
        "samples_per_s": round(len(samples) / sample_time, 2), "threads": args.threads,
        "machine": f"{platform.node()} (2-core CPU dev machine, no GPU)",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1))


def material_ids(crystals) -> list[str]:
    return [str(c.properties.get("material_id", i)) for i, c in enumerate(crystals)]


def load_cached_templates(path: str, targets, k: int):
    """Templates pickled by an earlier run on the same targets (the first k per target)."""
    with open(path, "rb") as fh:
        cached = pickle.load(fh)
    if cached["ids"] != material_ids(targets):
        raise SystemExit(f"{path} holds templates of other targets")
    if cached.get("n_retrieve", 20) < k:
        raise SystemExit(f"{path} holds {cached.get('n_retrieve', 20)} templates per target, not {k}")
    return [t[:k] for t in cached["templates"]], float(cached["time_s"])


def retrieve_templates(targets, dataset: str, split: str, k: int):
    """Up to k prototype-substitution templates per target from ``split`` (comma-joined splits
    pool together; no relaxation), and the time it took."""
    from xtalgen.data import load_dataset
    from xtalgen.pipelines.templated_csp import retrieve_templates as retrieve

    pool = [c for name in split.split(",") for c in load_dataset(dataset, name)]
    start = time.perf_counter()
    out = retrieve(targets, k, pool=pool, progress=True)
    return out, time.perf_counter() - start


if __name__ == "__main__":
    main()
