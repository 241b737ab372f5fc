"""GFlowNet vs random symmetric search vs evolutionary search at equal reward evaluations (issue 16).

Real run (two systems, the trained formation-energy predictor as the reward, 10,000 reward
evaluations per method, S.U.N. of 200 samples per method; resumable: rerun the same command
after an interruption; one process per system runs them side by side, then one invocation
with both systems, all cached, writes the joint table):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_gflownet.py \\
        --systems Li-Mn-O Ni-Ti-Al --reward formation-energy --budget 10000 --sun-n 200 \\
        --threads 1 --seed 0 --out runs/bench_gflownet

Time: see RESULTS.md for the measured run. With the CHGNet single-point reward
(``--reward chgnet-formation-energy``), measured at --budget 400 on the busy 2-core machine:
GFlowNet training 0.10 s per reward evaluation, random search 0.07 s, evolution 0.06 s, so
about 1.5 h per system at 20,000 evaluations beside the S.U.N. screens (~3 CPU s per
structure). The predictor reward costs about a millisecond per crystal, so the searches'
own generation (pyxtal) and the S.U.N. screens dominate. The toy takes about 10 s.

Smoke test (one system, tiny budgets, about 30 s on the busy machine; 20 s more per extra
system):

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_gflownet.py \\
        --systems Li-Mn-O --budget 64 --sun-n 4 --relax-steps 20 --no-require-converged \\
        --gfn-samples 32 --gfn-hidden-dim 32 --gfn-layers 1 --gfn-batch-size 16 \\
        --evo-compositions 2 --evo-population 4 --evo-offspring 4 --toy-steps 100 \\
        --toy-samples 1000 --out /tmp/bench_gflownet_smoke

Anchors (issue 16): Crystal-GFN (AI4Mat 2023) samples space group, composition and lattice
parameters only, no atomic positions; its median predicted formation energy is -3.2 eV/atom
with its own proxy; LeMat-GenBench scores it 51.7% valid and 0% stable. Here every GFlowNet
sample is a complete crystal (positions included) decoded through the Wyckoff grammar, and
formation energies come from our MP-20 predictor (or CHGNet against the bundled MP-20 hull's
elemental references), not comparable one to one with Crystal-GFN's proxy.

Protocol, per system (``--systems``, e.g. Li-Mn-O and the ternary intermetallic Ni-Ti-Al):

* The reward (``--reward``, default ``formation-energy``: the formation energy per atom E
  predicted by the shipped ``mp20-formation-energy`` predictor, eV/atom, as Crystal-GFN
  rewards with a formation-energy proxy; ``chgnet-formation-energy``: CHGNet single point
  against the hull's references; log R = -beta E, beta 5 unless ``--beta``; charge neutrality
  by SMACT as a hard term, all-metal compositions pass) is the same definition for every method, built by
  :func:`xtalgen.models.gflownet.rewards.make_reward`. A *reward evaluation* is one crystal
  passed to the reward (crystals that fail a hard term or the GFlowNet's geometry checks cost
  none); it is the common currency.
* ``gflownet``: :func:`xtalgen.pipelines.gflownet.train_gflownet` (what ``xtalgen gflownet
  train`` runs: the one training loop) with ``max_reward_evaluations=--budget``, so training
  stops once the environment has made that many evaluations (it may overshoot by less than one
  batch; the searches then get the GFlowNet's exact count). Constant learning rate after the
  warmup (``--gfn-min-lr-ratio 1``): the run's length is set by the budget, ``--gfn-max-steps``
  only caps it. Then ``--gfn-samples`` crystals are sampled from the trained policy (EMA
  weights, temperature 1; undecodable draws are redrawn by the generator and counted in
  ``last_report``) and each is scored with the reward for the figures below: these
  *measurement* evaluations are reported apart and not charged to the method (sampling a
  trained GFlowNet needs no reward).
* ``gflownet-best``: the same samples, ranked by reward: the S.U.N. set is the best
  ``--sun-n`` distinct ones. Its evaluations are charged (budget + samples scored), since
  ranking needs the reward.
* ``random``: :class:`xtalgen.search.RandomSymmetricSearch` (pyxtal, Wyckoff-consistent random
  symmetric crystals) in DNG mode over the chemical system: each draw picks a composition
  uniformly from the system's charge-neutral compositions (the reward's own hard term; reduced
  formulas of 1 to ``--max-elements`` elements with at most ``--max-atoms`` atoms per formula
  unit), a number of formula units with at most ``--max-atoms`` atoms per cell and a compatible
  space group uniformly; each crystal is scored once (single point, no relaxation) by the same
  reward, as many as the GFlowNet's evaluations. pyxtal's cell is the conventional one, so in
  centred groups it holds fewer primitive atoms than the GFlowNet allows.
* ``evolution``: :class:`xtalgen.search.EvolutionarySearch` with the reward's E as its fitness
  (no relaxation). It searches one fixed composition and cannot explore a chemical system, so
  it runs over the ``--evo-compositions`` compositions (two or more elements) most frequent
  among the best 100 distinct crystals of the GFlowNet samples and of the random search
  (ties: best reward), or
  ``--evo-composition-list``, with the evaluation budget split evenly among them
  (``--evo-population``, ``--evo-offspring``; generations until the budget is spent).

Figures per method (``results.json``, ``results.md``): reward evaluations charged, mean and
best log-reward (invalid samples at the environment's floor, -20) and reward R = exp(log R);
mean and median E over the rewardable samples; the fractions of *all* samples with E below
-1 and -2 eV/atom; among the best 100 distinct (exact structure) samples, the number of
distinct reduced compositions and of space groups (spglib, symprec 0.1); the S.U.N. set of
``--sun-n`` crystals (``gflownet``: the first sun-n policy samples, as drawn; the others: the
best sun-n by reward) screened by :func:`xtalgen.screen.screen` (CHGNet relaxation up to
``--relax-steps`` FIRE steps, bundled MP-20 hull, uniqueness, novelty against MP-20
``offline_train``): the E_hull <= 0.1 rate and S.U.N. (MatterGen convention: E_hull <= 0.1,
converged relaxations only unless ``--no-require-converged``; the strict E_hull <= 0 figure
beside it), S.U.N. count per 1,000 charged evaluations; wall time (method: training or search,
sampling and scoring; screening: summed relaxation time).

The toy: the enumerable Na-Cl environment of :mod:`xtalgen.models.gflownet.toy` trained with
:func:`xtalgen.pipelines.gflownet.train_toy` for ``--toy-steps``; ``--toy-samples`` samples;
the Pearson correlation between each terminal's sampled frequency and its normalised reward
(target > 0.9), and the learned log Z against the exact log sum R.

Resumable pieces under OUT: ``toy/`` (checkpoint, ``result.json``), ``<system>/gflownet/train/``
(the training run, resumed by the training loop), ``<system>/<method>/samples.extxyz`` with
``scores.json`` and ``piece.json`` (a finished method is not run again), and
``<system>/<method>/sun-*.db`` (the screening store, resumed by the pipeline). Settings that
change a method's result are recorded in its ``piece.json`` (and, for a GFlowNet run still
training, in ``gflownet/train-settings.json``); a mismatch is an error (choose another
``--out``). ``results.json`` and ``results.md`` cover the systems of the invocation (cached
systems cost seconds, so list them all).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shlex
import sys
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import combinations, product
from pathlib import Path
from typing import Any

import numpy as np

MACHINE = "2-core CPU dev machine, no GPU"
METHODS = ("gflownet", "gflownet-best", "random", "evolution")
FLOOR = -20.0
"""Log-reward of a sample without a reward (the GFlowNet environment's ``min_log_reward``)."""
BEST = 100
"""Mode coverage: distinct compositions and space groups among this many best samples."""


# -- command line --------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[1:]))
    p.add_argument("--systems", nargs="+", default=["Li-Mn-O", "Ni-Ti-Al"],
                   help="chemical systems (an oxide and a ternary intermetallic by default)")
    p.add_argument("--reward", default="formation-energy",
                   choices=("formation-energy", "chgnet-formation-energy", "e-hull", "toy"),
                   help="formation-energy: the trained predictor mp20-formation-energy; "
                   "chgnet-formation-energy: CHGNet single point against the hull's references")
    p.add_argument("--beta", type=float, default=None, help="reward exp(-beta E) (default: the reward's)")
    p.add_argument("--budget", type=int, default=20000, help="reward evaluations per method")
    p.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated of {METHODS}")
    p.add_argument("--sun-n", type=int, default=200, help="crystals screened for S.U.N. per method (0: none)")
    p.add_argument("--out", type=Path, default=Path("runs/bench_gflownet"))
    p.add_argument("--threads", type=int, default=1, help="torch threads (CHGNet's too)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    # the shared action space
    p.add_argument("--max-atoms", type=int, default=12,
                   help="GFlowNet: atoms per primitive cell; random/evolution: per pyxtal cell")
    p.add_argument("--max-elements", type=int, default=0, help="elements per composition (0: all)")
    p.add_argument("--spacegroups", default="", help="allowed space groups, e.g. 1-230 ('' : all)")
    # GFlowNet
    p.add_argument("--gfn-batch-size", type=int, default=32)
    p.add_argument("--gfn-lr", type=float, default=1e-3)
    p.add_argument("--gfn-min-lr-ratio", type=float, default=1.0,
                   help="cosine floor over --gfn-max-steps (1: constant rate after warmup)")
    p.add_argument("--gfn-hidden-dim", type=int, default=128)
    p.add_argument("--gfn-layers", type=int, default=3)
    p.add_argument("--gfn-epsilon", type=float, default=0.05)
    p.add_argument("--gfn-replay-fraction", type=float, default=0.25)
    p.add_argument("--gfn-max-steps", type=int, default=100_000, help="cap on training steps")
    p.add_argument("--gfn-max-time", type=float, default=0.0, help="cap on training seconds (0: none)")
    p.add_argument("--gfn-samples", type=int, default=1000, help="policy samples scored after training")
    # random search
    p.add_argument("--random-spacegroup-prior", default="uniform", choices=("uniform", "mp20"))
    # evolution
    p.add_argument("--evo-compositions", type=int, default=4, help="compositions searched")
    p.add_argument("--evo-composition-list", default="",
                   help="comma-separated formulas instead of the most frequent ones")
    p.add_argument("--evo-population", type=int, default=16)
    p.add_argument("--evo-offspring", type=int, default=16)
    p.add_argument("--evo-max-time", type=float, default=0.0,
                   help="cap on seconds per composition (0: none)")
    # S.U.N. screening
    p.add_argument("--relax-steps", type=int, default=300, help="FIRE steps of the S.U.N. relaxation")
    p.add_argument("--fmax", type=float, default=0.1)
    p.add_argument("--require-converged", action=argparse.BooleanOptionalAction, default=True,
                   help="unconverged relaxations count as failed (the pipeline's default)")
    p.add_argument("--sun-workers", type=int, default=1, help="screening worker processes")
    # the toy
    p.add_argument("--toy", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--toy-steps", type=int, default=300)
    p.add_argument("--toy-samples", type=int, default=4000)
    args = p.parse_args(argv)
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = set(args.methods) - set(METHODS)
    if unknown:
        p.error(f"unknown methods {sorted(unknown)}; choose from {METHODS}")
    if args.budget < 1:
        p.error("--budget must be at least 1")
    return args


# -- small helpers -------------------------------------------------------------------------------
def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def write_json(path: Path, payload: Any) -> None:
    from xtalgen.metrics.core import to_jsonable

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(to_jsonable(payload), indent=1) + "\n")
    tmp.replace(path)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def finite(x: Any) -> float | None:
    """A JSON-safe float (None for NaN or missing)."""
    return float(x) if x is not None and math.isfinite(float(x)) else None


def structure_key(crystal: Any) -> str:
    from xtalgen.crystal import crystals_sha256

    return crystals_sha256([crystal])


class RewardPotential:
    """The reward's energy E as a search "potential" (single points only): ``energy_per_atom``
    returns E of the reward (for formation-energy: eV/atom against the hull's references) and
    counts the calls, each one reward evaluation. A crystal failing the reward's hard term
    gets NaN (the searches here only draw compositions that pass it)."""

    name = "reward"
    correction = "none"

    def __init__(self, reward: Any) -> None:
        if not hasattr(reward, "energies"):
            raise SystemExit(f"reward {reward!r} has no energies(): the searches need an EnergyReward")
        self.reward = reward
        self.calls = 0

    def energy_per_atom(self, crystal: Any) -> float:
        check = getattr(self.reward, "invalid_reasons", None)
        if check is not None and check([crystal])[0]:
            return math.nan
        self.calls += 1
        return float(self.reward.energies([crystal])[0])


# -- the pieces ----------------------------------------------------------------------------------
class Piece:
    """A method's cached result in ``folder``: ``samples.extxyz``, ``scores.json`` (per sample:
    E, log-reward, reason, space group, key) and ``piece.json`` (settings, evaluations, wall
    time, extras)."""

    def __init__(self, folder: Path, settings: dict[str, Any]) -> None:
        self.folder = folder
        self.settings = json.loads(json.dumps(settings))

    def load(self) -> tuple[list[Any], list[dict[str, Any]], dict[str, Any]] | None:
        meta = read_json(self.folder / "piece.json")
        if meta is None or not (self.folder / "samples.extxyz").exists():
            return None
        if meta.get("settings") != self.settings:
            raise SystemExit(f"{self.folder} was made with other settings "
                             f"({meta.get('settings')} != {self.settings}): choose another --out")
        from xtalgen.io import read

        crystals = read(self.folder / "samples.extxyz")
        scores = read_json(self.folder / "scores.json") or []
        if len(scores) != len(crystals):
            return None
        return crystals, scores, meta

    def save(self, crystals: list[Any], scores: list[dict[str, Any]], meta: dict[str, Any]
             ) -> tuple[list[Any], list[dict[str, Any]], dict[str, Any]]:
        """Write the piece and return it as read back, so that a first run and a resumed one
        screen the very same structures (the screening store keys them by a hash)."""
        from xtalgen.crystal import Crystal
        from xtalgen.io import write

        self.folder.mkdir(parents=True, exist_ok=True)
        plain = [Crystal(c.lattice, c.frac_coords, c.species) for c in crystals]
        write(plain, self.folder / "samples.extxyz")
        write_json(self.folder / "scores.json", scores)
        write_json(self.folder / "piece.json", {**meta, "settings": self.settings})
        loaded = self.load()
        assert loaded is not None
        return loaded


def score_records(crystals: Sequence[Any], energies: Sequence[float], reasons: Sequence[str],
                  beta: float) -> list[dict[str, Any]]:
    """Per-sample records: E, log-reward (floored; the floor where there is no E), the reason
    a sample has no reward, the detected space group and the exact structure key."""
    from xtalgen.search.common import detect_spacegroup

    out = []
    for crystal, energy, reason in zip(crystals, energies, reasons):
        e = finite(energy)
        if e is None and not reason:
            reason = "reward is NaN"
        out.append({
            "energy": e,
            "log_reward": max(-beta * e, FLOOR) if e is not None else FLOOR,
            "reason": reason,
            "formula": crystal.formula,
            "spacegroup": detect_spacegroup(crystal)[0],
            "key": structure_key(crystal),
        })
    return out


def system_compositions(elements: Sequence[int], max_atoms: int, max_elements: int,
                        reward: Any) -> list[str]:
    """Reduced formulas of the system (1 to ``max_elements`` elements, at most ``max_atoms``
    atoms per formula unit) that pass the reward's hard term (charge neutrality)."""
    from xtalgen.crystal import Crystal, element_symbol

    check = getattr(reward, "invalid_reasons", None)
    out = []
    for k in range(1, min(max_elements, len(elements)) + 1):
        for subset in combinations(sorted(elements), k):
            for counts in product(range(1, max_atoms + 1), repeat=k):
                if sum(counts) > max_atoms or math.gcd(*counts) != 1:  # reduced formulas only
                    continue
                species = [z for z, c in zip(subset, counts) for _ in range(c)]
                n = len(species)
                dummy = Crystal(np.eye(3) * 10.0, [[i / n, i / n, i / n] for i in range(n)], species)
                if check is not None and check([dummy])[0]:
                    continue
                out.append("".join(f"{element_symbol(z)}{c}" for z, c in zip(subset, counts)))
    return out


def best_distinct(scores: Sequence[dict[str, Any]], n: int, valid_only: bool = True) -> list[int]:
    """Indices of the ``n`` best samples by log-reward, one per exact structure."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i]["log_reward"])
    seen: set[str] = set()
    out = []
    for i in order:
        if valid_only and scores[i]["energy"] is None:
            continue
        if scores[i]["key"] in seen:
            continue
        seen.add(scores[i]["key"])
        out.append(i)
        if len(out) >= n:
            break
    return out


# -- methods -------------------------------------------------------------------------------------
def run_gflownet(system: str, folder: Path, reward: Any, args: argparse.Namespace,
                 settings: dict[str, Any]) -> tuple[list[Any], list[dict[str, Any]], dict[str, Any]]:
    piece = Piece(folder, settings)
    cached = piece.load()
    if cached is not None:
        log(f"{system} gflownet: cached ({len(cached[0])} samples)")
        return cached
    from xtalgen.models import load_model
    from xtalgen.models.checkpoint import read_checkpoint
    from xtalgen.pipelines.gflownet import train_gflownet

    marker = folder / "train-settings.json"
    previous = read_json(marker)
    if previous is not None and previous != piece.settings:
        raise SystemExit(f"{folder / 'train'} was started with other settings ({previous} != "
                         f"{piece.settings}): choose another --out")
    write_json(marker, piece.settings)
    log(f"{system} gflownet: training until {args.budget} reward evaluations")
    path = train_gflownet(
        system, folder / "train", reward=args.reward, beta=args.beta,
        steps=args.gfn_max_steps, max_reward_evaluations=args.budget, max_atoms=args.max_atoms,
        max_elements=args.max_elements, spacegroups=args.spacegroups,
        batch_size=args.gfn_batch_size, epsilon=args.gfn_epsilon,
        replay_fraction=args.gfn_replay_fraction, lr=args.gfn_lr,
        min_lr_ratio=args.gfn_min_lr_ratio, hidden_dim=args.gfn_hidden_dim,
        num_layers=args.gfn_layers, max_time=args.gfn_max_time, checkpoint_every=300.0,
        seed=args.seed, threads=args.threads, progress=not args.no_progress,
        provenance={"benchmark": "bench_gflownet"})
    ckpt = read_checkpoint(path)
    used = int(ckpt["state_dict"]["reward_evaluations"])
    train_wall = float(ckpt["wall_time_s"])
    if used < args.budget:
        warnings.warn(f"{system}: the GFlowNet stopped after {used} of {args.budget} reward "
                      f"evaluations (step {ckpt['step']}: --gfn-max-steps or --gfn-max-time)",
                      stacklevel=1)
    log(f"{system} gflownet: {ckpt['step']} steps, {used} reward evaluations, {train_wall:.0f} s; "
        f"sampling {args.gfn_samples}")
    start = time.perf_counter()
    generator = load_model(path, batch_size=256, progress=not args.no_progress)
    crystals = generator.generate(args.gfn_samples, seed=args.seed)
    sample_wall = time.perf_counter() - start
    start = time.perf_counter()
    check = getattr(reward, "invalid_reasons", None)
    reasons = [r or "" for r in check(crystals)] if check is not None else [""] * len(crystals)
    todo = [i for i, r in enumerate(reasons) if not r]
    energies = np.full(len(crystals), np.nan)
    if todo:
        energies[todo] = reward.energies([crystals[i] for i in todo])
    score_wall = time.perf_counter() - start
    scores = score_records(crystals, energies, reasons, reward.beta)
    meta = {
        "reward_evaluations": used,
        "measurement_evaluations": len(todo),
        "wall_s": train_wall + sample_wall + score_wall,
        "train_wall_s": train_wall,
        "sample_wall_s": sample_wall,
        "score_wall_s": score_wall,
        "train_steps": int(ckpt["step"]),
        "log_z": float(ckpt["state_dict"]["log_z_param"]) * ckpt["model_config"]["log_z_scale"],
        "sampling_report": generator.last_report,
        "checkpoint": str(path),
    }
    return piece.save(crystals, scores, meta)


def run_random(system: str, elements: list[int], folder: Path, reward: Any, n_evals: int,
               args: argparse.Namespace, settings: dict[str, Any]
               ) -> tuple[list[Any], list[dict[str, Any]], dict[str, Any]]:
    piece = Piece(folder, settings)
    cached = piece.load()
    if cached is not None:
        log(f"{system} random: cached ({len(cached[0])} crystals)")
        return cached
    from xtalgen.pipelines.gflownet import parse_spacegroups
    from xtalgen.search import RandomSymmetricSearch, SearchBudget

    max_elements = args.max_elements or len(elements)
    formulas = system_compositions(elements, args.max_atoms, max_elements, reward)
    log(f"{system} random: {n_evals} reward evaluations over {len(formulas)} charge-neutral "
        "compositions")
    shim = RewardPotential(reward)
    search = RandomSymmetricSearch(
        candidates_per_structure=1, max_atoms=args.max_atoms,
        spacegroups=parse_spacegroups(args.spacegroups) or None,
        spacegroup_weights="mp20" if args.random_spacegroup_prior == "mp20" else None,
        compositions=formulas, relax=False, energies=True, potential=shim,
        budget=SearchBudget(max_potential_calls=n_evals), dedupe=False,
        progress=not args.no_progress)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        crystals = search.generate(n_evals, seed=args.seed)
    wall = time.perf_counter() - start
    energies = [c.properties.get("energy_per_atom", math.nan) for c in crystals]
    scores = score_records(crystals, energies, [""] * len(crystals), reward.beta)
    meta = {"reward_evaluations": shim.calls, "measurement_evaluations": 0, "wall_s": wall,
            "n_compositions": len(formulas), "n_returned": len(crystals)}
    return piece.save(crystals, scores, meta)


def evolution_compositions(pools: Sequence[Sequence[dict[str, Any]]], k: int) -> list[str]:
    """The ``k`` formulas of two or more elements most frequent among the best 100 distinct
    crystals of each pool (ties: the best log-reward). Elements are left out: their formation
    energy is about 0 by construction, and a search of one would spend budget for nothing."""
    from xtalgen.search.common import parse_composition

    counts: Counter[str] = Counter()
    best: dict[str, float] = {}
    for scores in pools:
        for i in best_distinct(scores, BEST):
            formula = scores[i]["formula"]
            if len(parse_composition(formula)) < 2:
                continue
            counts[formula] += 1
            best[formula] = max(best.get(formula, -math.inf), scores[i]["log_reward"])
    ranked = sorted(counts, key=lambda f: (-counts[f], -best[f], f))
    return ranked[:k]


def run_evolution(system: str, folder: Path, reward: Any, n_evals: int, compositions: list[str],
                  args: argparse.Namespace, settings: dict[str, Any]
                  ) -> tuple[list[Any], list[dict[str, Any]], dict[str, Any]]:
    piece = Piece(folder, settings)
    cached = piece.load()
    if cached is not None:
        log(f"{system} evolution: cached ({len(cached[0])} crystals)")
        return cached
    from xtalgen.pipelines.gflownet import parse_spacegroups
    from xtalgen.search import EvolutionarySearch, SearchBudget

    if not compositions:
        raise SystemExit(f"{system}: evolution needs compositions: run gflownet or random first, "
                         "or pass --evo-composition-list")
    shares = [n_evals // len(compositions) + (i < n_evals % len(compositions))
              for i in range(len(compositions))]
    log(f"{system} evolution: {n_evals} reward evaluations over {compositions} ({shares})")
    shim = RewardPotential(reward)
    crystals: list[Any] = []
    per: list[dict[str, Any]] = []
    start = time.perf_counter()
    for formula, share in zip(compositions, shares):
        if share < 2:
            continue
        search = EvolutionarySearch(
            population_size=min(args.evo_population, max(2, share // 2)),
            offspring_per_generation=args.evo_offspring, n_generations=10**9,
            max_atoms=args.max_atoms, spacegroups=parse_spacegroups(args.spacegroups) or None,
            relax=False, energies=True, potential=shim,
            budget=SearchBudget(max_potential_calls=share,
                                max_wall_time=args.evo_max_time or None),
            dedupe=False, progress=False)
        before, t0 = shim.calls, time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                found = search.generate(share, composition=formula, seed=args.seed)
            except Exception as exc:  # no compatible group, too many atoms: recorded, skipped
                found = []
                log(f"{system} evolution {formula}: {type(exc).__name__}: {exc}")
        generations = max((c.properties.get("n_generations", 0) for c in found), default=0)
        per.append({"composition": formula, "budget": share, "reward_evaluations": shim.calls - before,
                    "n_crystals": len(found), "generations": generations,
                    "wall_s": time.perf_counter() - t0})
        crystals += found
    wall = time.perf_counter() - start
    energies = [c.properties.get("energy_per_atom", math.nan) for c in crystals]
    scores = score_records(crystals, energies, [""] * len(crystals), reward.beta)
    meta = {"reward_evaluations": shim.calls, "measurement_evaluations": 0, "wall_s": wall,
            "compositions": per}
    return piece.save(crystals, scores, meta)


# -- figures -------------------------------------------------------------------------------------
def sample_figures(scores: Sequence[dict[str, Any]]) -> dict[str, Any]:
    n = len(scores)
    if not n:
        return {"n_samples": 0}
    log_r = np.array([s["log_reward"] for s in scores])
    energies = np.array([s["energy"] for s in scores if s["energy"] is not None], dtype=float)
    best = best_distinct(scores, BEST)
    reasons = Counter(s["reason"] for s in scores if s["reason"])
    return {
        "n_samples": n,
        "rewardable_fraction": len(energies) / n,
        "no_reward_reasons": dict(reasons),
        "distinct_fraction": len({s["key"] for s in scores}) / n,
        "mean_log_reward": float(log_r.mean()),
        "best_log_reward": float(log_r.max()),
        "mean_reward": float(np.exp(log_r).mean()),
        "best_reward": float(np.exp(log_r.max())),
        "mean_energy": float(energies.mean()) if len(energies) else None,
        "median_energy": float(np.median(energies)) if len(energies) else None,
        "best_energy": float(energies.min()) if len(energies) else None,
        "frac_energy_below_-1": float((energies < -1.0).sum() / n),
        "frac_energy_below_-2": float((energies < -2.0).sum() / n),
        "best100_n": len(best),
        "best100_compositions": len({scores[i]["formula"] for i in best}),
        "best100_spacegroups": len({scores[i]["spacegroup"] for i in best}),
        "best100_top_compositions": Counter(scores[i]["formula"] for i in best).most_common(5),
    }


def sun_subset(method: str, scores: Sequence[dict[str, Any]], n: int) -> list[int]:
    """Indices screened for S.U.N.: the first ``n`` GFlowNet samples as drawn; otherwise the
    ``n`` best distinct by reward."""
    if method == "gflownet":
        return list(range(min(n, len(scores))))
    return best_distinct(scores, n)


def run_sun(crystals: Sequence[Any], indices: list[int], folder: Path,
            args: argparse.Namespace) -> dict[str, Any]:
    from xtalgen.crystal import Crystal
    from xtalgen.screen import ScreenConfig, screen

    config = ScreenConfig(potential="chgnet", potential_kw={"threads": args.threads},
                          fmax=args.fmax, max_steps=args.relax_steps,
                          require_converged=args.require_converged,
                          novelty_reference="mp20:offline_train", n_workers=args.sun_workers,
                          progress=not args.no_progress)
    tag = hashlib.sha1(json.dumps([indices, args.relax_steps, args.fmax,
                                   args.require_converged]).encode()).hexdigest()[:8]
    folder.mkdir(parents=True, exist_ok=True)
    store = folder / f"sun-{len(indices)}-{tag}.db"
    subset = [Crystal(crystals[i].lattice, crystals[i].frac_coords, crystals[i].species)
              for i in indices]
    summary = screen(subset, store, config)
    from xtalgen.screen import CandidateStore

    rows = CandidateStore(store).table()
    relax_s = float(sum(r.get("relax_s") or 0.0 for r in rows))
    mattergen = summary.metrics.get("mattergen", {})
    strict = summary.metrics.get("strict", {})
    return {
        "n_submitted": summary.n_submitted,
        "stages": summary.stages,
        "frac_ehull_le_0.1": mattergen.get("frac_stable"),
        "frac_sun": mattergen.get("frac_sun"),
        "n_sun": mattergen.get("n_sun"),
        "frac_sun_strict": strict.get("frac_sun"),
        "n_sun_strict": strict.get("n_sun"),
        "frac_unique": mattergen.get("frac_unique"),
        "frac_novel": mattergen.get("frac_novel"),
        "converged": sum(bool(r.get("converged")) for r in rows),
        "relax_wall_s": relax_s,
        "store": str(store),
    }


def run_toy(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from xtalgen.models import load_model
    from xtalgen.models.checkpoint import read_checkpoint
    from xtalgen.models.gflownet.toy import sampled_vs_reward
    from xtalgen.pipelines.gflownet import train_toy

    folder = args.out / "toy"
    key = {"steps": args.toy_steps, "samples": args.toy_samples, "seed": args.seed}
    cached = read_json(folder / "result.json")
    if cached is not None and cached.get("settings") == key:
        log(f"toy: cached (r = {cached['correlation']:.3f})")
        return cached
    log(f"toy: training {args.toy_steps} steps")
    path = train_toy(folder, steps=args.toy_steps, seed=args.seed, progress=not args.no_progress)
    model = load_model(path).model
    with torch.no_grad():
        result = sampled_vs_reward(model, n=args.toy_samples, seed=args.seed + 1)
    ckpt = read_checkpoint(path)
    out = {
        "settings": key,
        "n_terminals": len(result["terminals"]),
        "n_samples": result["n_samples"],
        "correlation": result["correlation"],
        "outside": result["outside"],
        "log_z": result["log_z"],
        "log_total": result["log_total"],
        "steps": int(ckpt["step"]),
        "train_wall_s": float(ckpt["wall_time_s"]),
        "max_target": float(result["target"].max()),
        "max_frequency": float(result["frequency"].max()),
    }
    write_json(folder / "result.json", out)
    log(f"toy: r = {out['correlation']:.3f} over {out['n_terminals']} terminals")
    return out


# -- one system ----------------------------------------------------------------------------------
def run_system(system: str, args: argparse.Namespace) -> dict[str, Any]:
    from xtalgen.models.gflownet.env import chemical_system, system_name
    from xtalgen.models.gflownet.rewards import make_reward

    elements = chemical_system(system)
    name = system_name(elements)
    folder = args.out / name
    options = {} if args.beta is None else {"beta": args.beta}
    reward = make_reward(args.reward, **options)
    check = getattr(reward, "check_system", None)
    if check is not None:
        check(elements)
    space = {"system": name, "reward": args.reward, "beta": reward.beta, "seed": args.seed,
             "max_atoms": args.max_atoms, "max_elements": args.max_elements,
             "spacegroups": args.spacegroups}
    gfn_settings = {**space, "budget": args.budget, "batch_size": args.gfn_batch_size,
                    "lr": args.gfn_lr, "min_lr_ratio": args.gfn_min_lr_ratio,
                    "hidden_dim": args.gfn_hidden_dim, "layers": args.gfn_layers,
                    "epsilon": args.gfn_epsilon, "replay_fraction": args.gfn_replay_fraction,
                    "max_steps": args.gfn_max_steps, "max_time": args.gfn_max_time,
                    "samples": args.gfn_samples}
    results: dict[str, dict[str, Any]] = {}
    pieces: dict[str, tuple[list[Any], list[dict[str, Any]], dict[str, Any]]] = {}
    if "gflownet" in args.methods or "gflownet-best" in args.methods:
        pieces["gflownet"] = run_gflownet(name, folder / "gflownet", reward, args, gfn_settings)
    n_evals = pieces["gflownet"][2]["reward_evaluations"] if "gflownet" in pieces else args.budget
    if "random" in args.methods or ("evolution" in args.methods and not args.evo_composition_list):
        pieces["random"] = run_random(
            name, elements, folder / "random", reward, n_evals, args,
            {**space, "reward_evaluations": n_evals, "prior": args.random_spacegroup_prior})
    if "evolution" in args.methods:
        if args.evo_composition_list:
            compositions = [f.strip() for f in args.evo_composition_list.split(",") if f.strip()]
        else:
            compositions = evolution_compositions(
                [pieces[m][1] for m in ("gflownet", "random") if m in pieces], args.evo_compositions)
        pieces["evolution"] = run_evolution(
            name, folder / "evolution", reward, n_evals, compositions, args,
            {**space, "reward_evaluations": n_evals, "compositions": compositions,
             "population": args.evo_population, "offspring": args.evo_offspring,
             "max_time": args.evo_max_time})
    for method in args.methods:
        source = "gflownet" if method == "gflownet-best" else method
        crystals, scores, meta = pieces[source]
        charged = meta["reward_evaluations"]
        if method == "gflownet-best":
            charged += meta["measurement_evaluations"]
        report = meta.get("sampling_report") or {}
        draws = report.get("decoded", 0) + sum((report.get("failed_attempts") or {}).values())
        row: dict[str, Any] = {
            "method": method,
            "reward_evaluations": charged,
            "measurement_evaluations": 0 if method == "gflownet-best" else meta["measurement_evaluations"],
            "wall_s": meta["wall_s"],
            # GFlowNet draws that decoded to a valid crystal (the generator redraws the others)
            "valid_per_draw": report["decoded"] / draws if draws else None,
            **sample_figures(scores),
            "details": {k: v for k, v in meta.items() if k not in ("settings",)},
        }
        if args.sun_n > 0:
            indices = sun_subset(method, scores, args.sun_n)
            log(f"{name} {method}: S.U.N. screening of {len(indices)} crystals")
            sun = run_sun(crystals, indices, folder / method, args)
            sun["per_1000_evaluations"] = (1000.0 * sun["n_sun"] / charged
                                           if charged and sun["n_sun"] is not None else None)
            row["sun"] = sun
        results[method] = row
        log(f"{name} {method}: mean log R {row.get('mean_log_reward', float('nan')):.2f}, "
            f"best {row.get('best_log_reward', float('nan')):.2f}, "
            f"S.U.N. {row.get('sun', {}).get('n_sun')}")
    return {"system": name, "elements": elements, "methods": results}


# -- report --------------------------------------------------------------------------------------
def fmt(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown(payload: dict[str, Any]) -> str:
    lines = [
        f"GFlowNet benchmark ({payload['date']}, {payload['machine']}, reward "
        f"{payload['reward']}, budget {payload['budget']} reward evaluations per method, "
        f"S.U.N. of {payload['sun_n']}).",
        "",
        "| system | method | reward evals | mean log R | best log R | median E_f (eV/atom) | "
        "E_f < -1 | E_f < -2 | best-100 comps | best-100 SGs | E_hull <= 0.1 | S.U.N. | "
        "S.U.N. strict | S.U.N. / 1k evals | wall (s) | screen (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for system in payload["systems"]:
        for method, row in system["methods"].items():
            sun = row.get("sun", {})
            lines.append(
                f"| {system['system']} | {method} | {row['reward_evaluations']} | "
                f"{fmt(row.get('mean_log_reward'))} | {fmt(row.get('best_log_reward'))} | "
                f"{fmt(row.get('median_energy'))} | {fmt(row.get('frac_energy_below_-1'), 3)} | "
                f"{fmt(row.get('frac_energy_below_-2'), 3)} | {fmt(row.get('best100_compositions'))} | "
                f"{fmt(row.get('best100_spacegroups'))} | {fmt(sun.get('frac_ehull_le_0.1'), 3)} | "
                f"{fmt(sun.get('frac_sun'), 3)} | {fmt(sun.get('frac_sun_strict'), 3)} | "
                f"{fmt(sun.get('per_1000_evaluations'), 3)} | {fmt(row.get('wall_s'), 0)} | "
                f"{fmt(sun.get('relax_wall_s'), 0)} |")
    toy = payload.get("toy")
    if toy:
        lines += ["", f"Toy (Na-Cl, {toy['n_terminals']} terminals, {toy['steps']} steps, "
                      f"{toy['n_samples']} samples): correlation of sampled frequency with "
                      f"normalised reward r = {toy['correlation']:.3f} (target > 0.9); "
                      f"log Z {toy['log_z']:.2f} vs exact log sum R {toy['log_total']:.2f}."]
    lines += ["", "Anchors: Crystal-GFN median predicted formation energy -3.2 eV/atom with its "
                  "own proxy and no atomic positions; LeMat-GenBench scores it 0% stable."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ["XTALGEN_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    from xtalgen.models.checkpoint import git_commit

    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    payload: dict[str, Any] = {
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": MACHINE,
        "git_commit": git_commit(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "reward": args.reward,
        "beta": args.beta,
        "budget": args.budget,
        "sun_n": args.sun_n,
        "threads": args.threads,
        "seed": args.seed,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "systems": [],
    }
    if args.toy:
        payload["toy"] = run_toy(args)
    for system in args.systems:
        payload["systems"].append(run_system(system, args))
        write_json(args.out / "results.json", payload)  # partial results as systems finish
    payload["wall_s"] = time.perf_counter() - start
    write_json(args.out / "results.json", payload)
    table = markdown(payload)
    (args.out / "results.md").write_text(table)
    print(table)
    log(f"wrote {args.out / 'results.json'} and {args.out / 'results.md'}")


if __name__ == "__main__":
    main()
