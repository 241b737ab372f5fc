"""One GPU lease: train the shipped generators side by side, then sample and time them.

Run on the lent GPU machine (torch and numpy only; no pymatgen there), from the repository root,
with the folder written by ``pack.py``:

    PYTHONPATH=src PYTHONUNBUFFERED=1 python3 benchmarks/gpu/lease.py all --pack runs/gpu_pack \
        --out $OUT --train-s 390 --deadline-s 560

1. **Training.** The runs of ``RUNS`` train at the same time, one process each on the one GPU,
   for ``--train-s`` seconds of wall time each, with the cosine learning-rate schedule laid over
   that time budget (``TrainConfig.lr_schedule="time"``), so every run ends fully decayed
   whatever its speed. The last EMA weights are slimmed (``slim_checkpoint``) into
   ``OUT/<run>.pt``.
2. **Sampling** (while time is left before ``--deadline-s``), with the new checkpoints, timed
   with the GPU synchronised: the CSP samples of ``bench_csp_model.py``'s protocols (Perov-5
   test k=20; MP-20 pilot/test k=1 at several step counts, k=20; the seeded 200 MP-20 targets
   with retrieved templates), MP-20 diffusion at 1,000 steps, DNG samples. Samples go to
   ``OUT/samples_{perov5,mp20}.npz`` and are scored on the CPU afterwards by ``evaluate.py``
   (StructureMatcher needs pymatgen).
3. ``OUT/logs.tar.gz`` holds every run's ``log.jsonl``, the process logs and ``summary.json``
   (steps, steps/s, wall time, sampling times, device), which is also printed last.

``python3 benchmarks/gpu/lease.py all --device cpu --train-s 20 ...`` runs the same thing on a
CPU, as a rehearsal.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

START = time.monotonic()


@dataclass(frozen=True)
class RunSpec:
    """One training run of the lease."""

    dataset: str
    process: str
    task: str
    lattice_repr: str
    batch_size: int
    type_path: str = "masked"
    lr: float = 1e-3
    hidden_dim: int = 256
    num_layers: int = 6
    split: str = "offline_train"


RUNS: dict[str, RunSpec] = {
    # Perov-5 on the complete standard train split (11,356; issue 19), MP-20 on offline_train
    "perov5-csp-flow": RunSpec("perov5", "flow", "csp", "ks", batch_size=512, split="train"),
    "mp20-csp-flow": RunSpec("mp20", "flow", "csp", "ks", batch_size=256),
    "mp20-csp-diffusion": RunSpec("mp20", "diffusion", "csp", "matrix", batch_size=256),
    "mp20-dng-flow": RunSpec("mp20", "flow", "dng", "ks", batch_size=256),
    "perov5-dng-flow": RunSpec("perov5", "flow", "dng", "ks", batch_size=512, split="train"),
}


def load_pack(pack: Path, name: str):
    with open(pack / f"{name}.pkl", "rb") as fh:
        return pickle.load(fh)


def use_symbols(pack: Path) -> dict:
    """Element symbols from the pack (``Crystal.formula`` asks pymatgen otherwise)."""
    import xtalgen.crystal

    meta = json.loads((pack / "meta.json").read_text())
    symbols = tuple(meta["symbols"])
    xtalgen.crystal._SYMBOLS = symbols

    def formula(self) -> str:  # metadata only (pymatgen's reduced_formula orders differently)
        zs, counts = np.unique(self.species, return_counts=True)
        g = int(np.gcd.reduce(counts))
        return "".join(f"{symbols[z - 1]}{c // g if c // g > 1 else ''}" for z, c in zip(zs, counts))

    xtalgen.crystal.Crystal.formula = property(formula)
    return meta


def elapsed() -> float:
    return time.monotonic() - START


# -- 1. training -------------------------------------------------------------------------------
def train_one(name: str, pack: Path, run_dir: Path, train_s: float, device: str) -> None:
    import torch

    from xtalgen.models.iterative.flow import FlowConfig
    from xtalgen.models.iterative.generative import ModelConfig
    from xtalgen.nn.backbone import BackboneConfig
    from xtalgen.train import TrainConfig, train

    meta = use_symbols(pack)
    spec = RUNS[name]
    train_set = load_pack(pack, f"{spec.dataset}_{spec.split}")
    val_set = load_pack(pack, f"{spec.dataset}_offline_val")
    model_config = ModelConfig(
        process=spec.process, task=spec.task, lattice_repr=spec.lattice_repr,
        backbone=BackboneConfig(hidden_dim=spec.hidden_dim, num_layers=spec.num_layers),
        flow=FlowConfig(type_path=spec.type_path),
    )
    config = TrainConfig(
        max_steps=10**9, max_time_s=train_s, lr_schedule="time", batch_size=spec.batch_size,
        lr=spec.lr, val_every=1000, log_every=100, checkpoint_every_s=60.0, seed=0,
        device=device, num_threads=2, tf32=True,
    )
    gpu = torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor()
    provenance = {
        "dataset": spec.dataset, "split": spec.split, "val_split": "offline_val",
        "source_files": {**meta["source_files"][f"{spec.dataset}/{spec.split}"],
                         **meta["source_files"][f"{spec.dataset}/offline_val"]},
        "git_commit": meta["git_commit"],
        "machine": f"{gpu}, {len(RUNS)} runs sharing it (benchmarks/gpu/lease.py)",
    }
    train(model_config, train_set, val_set, config, run_dir, provenance=provenance,
          progress=False)


def train_all(args: argparse.Namespace, runs_dir: Path, log_dir: Path) -> dict:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs = {}
    for name in RUNS:
        log = open(log_dir / f"{name}.log", "w")  # noqa: SIM115 (closed when the run ends)
        cmd = [sys.executable, __file__, "train", "--run", name, "--pack", str(args.pack),
               "--run-dir", str(runs_dir / name), "--train-s", str(args.train_s),
               "--device", args.device]
        procs[name] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), log)
    limit = args.train_s + 120
    for name, (proc, log) in procs.items():
        try:
            proc.wait(timeout=max(1.0, limit - (elapsed() - args.t0)))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        print(f"[{elapsed():6.0f} s] {name}: exit {proc.returncode}", flush=True)

    from xtalgen.models.checkpoint import read_checkpoint
    from xtalgen.models.learned import slim_checkpoint

    summary = {}
    for name in RUNS:
        last = runs_dir / name / "last.pt"
        if not last.exists():
            summary[name] = {"error": "no checkpoint"}
            continue
        slim_checkpoint(last, args.out / f"{name}.pt")
        ckpt = read_checkpoint(last)
        summary[name] = {
            "spec": RUNS[name].__dict__, "step": ckpt["step"], "wall_time_s": round(ckpt["wall_time_s"], 1),
            "steps_per_s": round(ckpt["step"] / max(ckpt["wall_time_s"], 1e-9), 2),
            "best_val_loss": ckpt.get("best_val_loss"),
            "params": sum(v.numel() for k, v in ckpt["state_dict"].items() if k.startswith("backbone.")),
        }
        print(f"[{elapsed():6.0f} s] {name}: step {ckpt['step']}", flush=True)
    return summary


# -- 2. sampling -------------------------------------------------------------------------------
class SampleStore:
    """Samples as flat arrays, ``KEY__lattices`` (n, 3, 3) angstrom, ``KEY__frac_coords``,
    ``KEY__species``, ``KEY__num_atoms``, ``KEY__target`` (index into the pack's target list,
    -1 for DNG), ``KEY__sample_index``, ``KEY__templated``."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def add(self, key: str, crystals, target_index: dict[str, int] | None = None) -> None:
        props = [c.properties for c in crystals]
        self.arrays[f"{key}__lattices"] = np.stack([c.lattice for c in crystals]).astype(np.float32)
        self.arrays[f"{key}__frac_coords"] = np.concatenate([c.frac_coords for c in crystals]).astype(np.float32)
        self.arrays[f"{key}__species"] = np.concatenate([c.species for c in crystals]).astype(np.int16)
        self.arrays[f"{key}__num_atoms"] = np.array([c.num_sites for c in crystals], dtype=np.int32)
        self.arrays[f"{key}__target"] = np.array(
            [target_index[str(p["material_id"])] if target_index else -1 for p in props], dtype=np.int32)
        self.arrays[f"{key}__sample_index"] = np.array([p.get("sample_index", 0) for p in props], dtype=np.int32)
        self.arrays[f"{key}__templated"] = np.array(["template_noise" in p for p in props])

    def save(self, path: Path) -> None:
        np.savez_compressed(path, **self.arrays)


def timed(fn):
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def sample_all(args: argparse.Namespace) -> dict:
    import torch

    from xtalgen.models import load_model

    torch.set_float32_matmul_precision("high")
    use_symbols(args.pack)
    results: dict[str, dict] = {}
    stores = {"perov5": SampleStore(), "mp20": SampleStore()}
    p5_test = load_pack(args.pack, "perov5_offline_test")
    mp_test = load_pack(args.pack, "mp20_offline_test")
    tpl = load_pack(args.pack, "mp20_tpl200")
    n_dng, diffusion_steps = 1000, 1000
    if args.limit:  # a rehearsal: few targets, few steps
        p5_test, mp_test = p5_test[: args.limit], mp_test[: args.limit]
        tpl = {"targets": tpl["targets"][: args.limit], "templates": tpl["templates"][: args.limit]}
        n_dng, diffusion_steps = args.limit, 10

    def ids(targets):
        return {str(t.properties["material_id"]): i for i, t in enumerate(targets)}

    def job(key, store, run, budget_s, fn, target_index=None, **info):
        """Run one sampling job if its checkpoint exists and its time budget fits."""
        ckpt = args.out / f"{run}.pt"
        if not ckpt.exists():
            results[key] = {"skipped": "no checkpoint"}
            return
        if elapsed() + budget_s > args.deadline_s:
            results[key] = {"skipped": f"deadline ({elapsed():.0f} s + {budget_s} s)"}
            print(f"[{elapsed():6.0f} s] {key}: skipped (deadline)", flush=True)
            return
        generator = load_model(ckpt, device=args.device, batch_size=info.pop("batch_size", 2000))
        samples, seconds = timed(lambda: fn(generator))
        stores[store].add(key, samples, target_index)
        stores[store].save(args.out / f"samples_{store}.npz")  # kept even if the lease is cut
        results[key] = {"run": run, "n": len(samples), "seconds": round(seconds, 2), **info}
        print(f"[{elapsed():6.0f} s] {key}: {results[key]}", flush=True)

    # Perov-5 test, all 3,785, k=20 (k=1 is sample 0), 20 Euler steps (the shipped default)
    job("p5_k20_s20", "perov5", "perov5-csp-flow", 30,
        lambda g: g.sample_csp(p5_test, k=20, seed=0, n_steps=20), ids(p5_test),
        targets="perov5_offline_test", k=20, steps=20, batch_size=8000)
    # MP-20 seeded 200 with retrieved templates (the recipe of RESULTS.md's 75.0% row)
    job("mp20_tpl200_k20", "mp20", "mp20-csp-flow", 20,
        lambda g: g.sample_csp(tpl["targets"], k=20, seed=0, n_steps=20, templates=tpl["templates"],
                               noise_level=0.05, template_fill="cycle", reuse_noise_level=0.3),
        ids(tpl["targets"]), targets="mp20_tpl200", k=20, steps=20)
    # MP-20 diffusion, 1,000 structures at the full 1,000 steps (predictor-corrector)
    job("mp20_diff_k1_s1000", "mp20", "mp20-csp-diffusion", 90,
        lambda g: g.sample_csp(mp_test, k=1, seed=0, n_steps=diffusion_steps), ids(mp_test),
        targets="mp20_offline_test", k=1, steps=diffusion_steps, batch_size=1000)
    # MP-20 pilot/test (1,000), k=1 against the number of Euler steps: time and match rate
    for steps in (20, 50, 100, 200):
        job(f"mp20_k1_s{steps}", "mp20", "mp20-csp-flow", 15,
            lambda g, s=steps: g.sample_csp(mp_test, k=1, seed=0, n_steps=s), ids(mp_test),
            targets="mp20_offline_test", k=1, steps=steps, batch_size=1000)
    job("mp20_k20_s20", "mp20", "mp20-csp-flow", 30,
        lambda g: g.sample_csp(mp_test, k=20, seed=0, n_steps=20), ids(mp_test),
        targets="mp20_offline_test", k=20, steps=20, batch_size=4000)
    job("mp20_dng_s100", "mp20", "mp20-dng-flow", 20,
        lambda g: g.sample(n_dng, seed=0, n_steps=100), steps=100, n_requested=n_dng)
    job("p5_dng_s100", "perov5", "perov5-dng-flow", 20,
        lambda g: g.sample(n_dng, seed=0, n_steps=100), steps=100, n_requested=n_dng)
    return results


def sample_extra(args: argparse.Namespace) -> None:
    """A second, short lease: many candidates per target for ranking, and 10,000 DNG samples
    (the CDVAE/DiffCSP sample count for coverage), with the shipped checkpoints."""
    import torch

    from xtalgen.checkpoints import shipped_checkpoint
    from xtalgen.models import load_model

    torch.set_float32_matmul_precision("high")
    use_symbols(args.pack)
    tpl = load_pack(args.pack, "mp20_tpl200")
    n_dng = 10_000
    if args.limit:  # a rehearsal
        tpl = {"targets": tpl["targets"][: args.limit], "templates": tpl["templates"][: args.limit]}
        n_dng = args.limit
    ids = {str(t.properties["material_id"]): i for i, t in enumerate(tpl["targets"])}
    store, results = SampleStore(), {}
    jobs = [
        ("mp20_tpl200_k100", "mp20-csp-flow", lambda g: g.sample_csp(
            tpl["targets"], k=100, seed=0, n_steps=20, templates=tpl["templates"],
            noise_level=0.05, template_fill="cycle", reuse_noise_level=0.3), ids),
        ("mp20_dng10k_s100", "mp20-dng-flow", lambda g: g.sample(n_dng, seed=1, n_steps=100), None),
        ("p5_dng10k_s100", "perov5-dng-flow", lambda g: g.sample(n_dng, seed=1, n_steps=100), None),
    ]
    for key, run, fn, index in jobs:
        generator = load_model(shipped_checkpoint(run), device=args.device, batch_size=5000)
        samples, seconds = timed(lambda fn=fn, generator=generator: fn(generator))
        store.add(key, samples, index)
        store.save(args.out / "samples_extra.npz")
        results[key] = {"run": run, "n": len(samples), "seconds": round(seconds, 2)}
        print(f"[{elapsed():6.0f} s] {key}: {results[key]}", flush=True)


def speed(args: argparse.Namespace) -> None:
    """Training speed of each run alone on the device (``--train-s`` seconds each, one after
    the other): steps per second with the GPU to itself, beside the shared-GPU figures."""
    from xtalgen.models.checkpoint import read_checkpoint

    work = Path(os.environ.get("TMPDIR", "/tmp")) / "xtalgen_speed"
    shutil.rmtree(work, ignore_errors=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for name in args.runs.split(","):
        cmd = [sys.executable, __file__, "train", "--run", name, "--pack", str(args.pack),
               "--run-dir", str(work / name), "--train-s", str(args.train_s), "--device", args.device]
        subprocess.run(cmd, env=env, check=True)
        ckpt = read_checkpoint(work / name / "last.pt")
        rate = ckpt["step"] / ckpt["wall_time_s"]
        print(f"[{elapsed():6.0f} s] {name} alone: {ckpt['step']} steps in "
              f"{ckpt['wall_time_s']:.1f} s = {rate:.1f} steps/s "
              f"(batch {RUNS[name].batch_size})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["all", "train", "extra", "speed"])
    parser.add_argument("--runs", default="mp20-csp-flow,perov5-csp-flow",
                        help="speed: the runs to time, comma-separated")
    parser.add_argument("--pack", type=Path, default=Path("runs/gpu_pack"))
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "runs/gpu_out")))
    parser.add_argument("--run", default=None)
    parser.add_argument("--run-dir", type=Path, default=None)
    parser.add_argument("--train-s", type=float, default=390.0)
    parser.add_argument("--deadline-s", type=float, default=560.0,
                        help="no sampling job starts if it might end after this (from start)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--limit", type=int, default=0,
                        help="rehearsal: sample for only this many targets (0: all)")
    args = parser.parse_args()
    if args.what == "train":
        train_one(args.run, args.pack, args.run_dir, args.train_s, args.device)
        return
    if args.what == "speed":
        speed(args)
        return
    if args.what == "extra":
        args.out.mkdir(parents=True, exist_ok=True)
        sample_extra(args)
        return

    import torch

    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(os.environ.get("TMPDIR", "/tmp")) / "xtalgen_lease"
    shutil.rmtree(work, ignore_errors=True)  # a rerun on a warm machine starts afresh
    runs_dir, log_dir = work / "runs", work / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    args.t0 = elapsed()
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"torch {torch.__version__}, device {device_name}, python {platform.python_version()}",
          flush=True)
    summary = {"device": device_name, "torch": torch.__version__, "train_s": args.train_s,
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    summary["training"] = train_all(args, runs_dir, log_dir)
    try:
        summary["sampling"] = sample_all(args)
    except Exception as exc:  # keep the checkpoints and logs whatever happens here
        import traceback

        traceback.print_exc()
        summary["sampling_error"] = repr(exc)
    summary["total_s"] = round(elapsed(), 1)
    (log_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    with tarfile.open(args.out / "logs.tar.gz", "w:gz") as tar:
        tar.add(log_dir, arcname="logs")
        for name in RUNS:
            log = runs_dir / name / "log.jsonl"
            if log.exists():
                tar.add(log, arcname=f"logs/{name}.jsonl")
    for name, run in summary["training"].items():
        print(f"{name}: step {run.get('step')}, {run.get('steps_per_s')} steps/s, "
              f"val {run.get('best_val_loss')}, {run.get('error', '')}")
    print(f"total {summary['total_s']} s; full summary in logs.tar.gz")


if __name__ == "__main__":
    main()
