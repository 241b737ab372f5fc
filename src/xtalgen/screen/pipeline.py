"""The screening pipeline: validity -> deduplication -> relaxation + E_hull -> S.U.N. -> rank.

Every stage writes to the candidate store as it goes, so a run killed at any point continues
where it stopped when run again: finished candidates are never recomputed (each row records the
``run`` that computed it). The per-structure work goes through an executor (local process pool
or Dask); the pipeline never knows which generator made the crystals (provenance travels in
``Crystal.properties`` and lands in the store).

Ranking (``rank``, 1 = best) covers the unique candidates with a finite E_hull. With
``ScreenConfig.synthesizability`` (a trained synthesisability predictor: shipped name, checkpoint
path, or a function ``list[Crystal] -> scores``) each of them also gets a ``synthesizability``
score of its relaxed structure, and ``rank_by`` may use it: see
:func:`xtalgen.screen.rank.rank_order`.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.relax.relaxer import RelaxConfig
from xtalgen.screen.executor import Executor, get_executor
from xtalgen.screen.rank import (
    RANK_KEYS,
    flag_and_rank,
    parse_rank_by,
    rank_order,
    synthesizability_scorer,
)
from xtalgen.screen.store import CandidateStore
from xtalgen.screen.worker import WorkerSpec, screen_chunk, screen_one

__all__ = ["RANK_KEYS", "ScreenConfig", "ScreenSummary", "candidate_id", "parse_rank_by",
           "rank_order", "screen"]

FINISHED = ("invalid", "duplicate", "relaxed", "failed", "disordered")

DEFAULT_REJECT_EHULL: tuple[tuple[int, float], ...] = ((50, 2.0), (100, 1.2), (200, 0.5))
"""Early rejection: (step, E_hull eV/atom) - a relaxation still above it at that step stops."""

@dataclass
class ScreenConfig:
    """Settings of a screening run (energies eV/atom, forces eV/angstrom).

    ``novelty_reference``: ``"name:split"`` of a dataset (default: MP-20's offline training
    set), a path, a list of crystals, or None (novelty not checked: every structure counts as
    novel, and the store says so). ``require_converged``: a relaxation that hit ``max_steps``
    counts as failed (no stability flags); otherwise its E_hull is used as it is.
    ``reject_ehull``: early rejection during relaxation (see ``WorkerSpec``; () disables).
    ``batch_size > 1``: each task is a chunk of that many candidates relaxed in lockstep with
    one batched potential call per step (when the potential has one; stored per chunk).

    Disordered inputs (partial occupancies) are never relaxed as their majority structure: they
    are stored with stage ``disordered`` and a ``disorder`` message naming the file and site.
    ``order > 0`` also screens up to that many orderings of each (``order_method``:
    ``"ewald"``, the symmetry-distinct orderings of lowest Ewald energy, see
    :func:`xtalgen.disorder.enumerate_orderings`; ``"sqs"``, ``order`` special quasirandom
    structures with different seeds, see :func:`xtalgen.disorder.special_quasirandom`), each
    with ``parent_cid`` pointing back; the parent row then holds the lowest E_hull of its
    orderings (``best_e_above_hull``, ``best_ordering``).
    """

    potential: str = "chgnet"
    potential_kw: dict[str, Any] = field(default_factory=dict)
    fmax: float = 0.1
    max_steps: int = 300
    reject_ehull: tuple[tuple[int, float], ...] = DEFAULT_REJECT_EHULL
    reject_formation_energy: float | None = None
    reject_initial_fmax: float | None = 100.0
    require_comp_valid: bool = False
    dedup: bool = True
    require_converged: bool = True
    novelty_reference: str | Sequence[Crystal] | None = "mp20:offline_train"
    hull_reference: str | None = None
    n_workers: int | None = None
    scheduler: str | None = None
    batch_size: int = 1
    progress: bool = True
    order: int = 0
    order_method: str = "ewald"
    order_supercell: tuple[int, int, int] | None = None
    order_max_sites: int = 64
    synthesizability: str | Callable[[Sequence[Crystal]], Any] | None = None
    """Synthesisability predictor: a shipped name (``"mpts52-synthesizability"``), a checkpoint
    path, or a function of crystals -> (N,) scores in [0, 1]; None: no score."""
    rank_by: tuple[str, ...] = ("e_above_hull",)
    """Keys of the ranking, in order (see :func:`rank_order`); ``"synthesizability"`` needs
    ``synthesizability``. ``"KEY:RES"`` sets a key's resolution."""

    def worker_spec(self) -> WorkerSpec:
        relax = RelaxConfig(
            fmax=self.fmax, max_steps=self.max_steps, reject_initial_fmax=self.reject_initial_fmax
        )
        return WorkerSpec(
            potential=self.potential,
            potential_kw=tuple(sorted(self.potential_kw.items())),
            relax=relax,
            reject_formation_energy=self.reject_formation_energy,
            reject_ehull=tuple(self.reject_ehull),
            reference=self.hull_reference,
        )

    def settings(self) -> dict[str, Any]:
        """JSON-friendly settings (a list of novelty-reference crystals becomes its length)."""
        from dataclasses import fields

        out = {f.name: getattr(self, f.name) for f in fields(self)}
        ref = self.novelty_reference
        if not (ref is None or isinstance(ref, str)):
            out["novelty_reference"] = f"{len(ref)} crystals"
        out["potential_kw"] = dict(self.potential_kw)
        if callable(self.synthesizability):
            fn = self.synthesizability
            out["synthesizability"] = getattr(fn, "name", getattr(fn, "__name__", repr(fn)))
        out["rank_by"] = list(self.rank_by)
        return out


@dataclass
class ScreenSummary:
    """What a run did: counts per stage and the stability metrics of both conventions."""

    store: str
    n_submitted: int
    stages: dict[str, int]
    metrics: dict[str, dict[str, Any]]
    n_computed_this_run: int
    wall_s: float
    run: int
    top: list[dict[str, Any]] = field(default_factory=list)
    disordered: list[str] = field(default_factory=list)
    parents: list[dict[str, Any]] = field(default_factory=list)


def candidate_id(index: int, crystal: Crystal) -> str:
    """Stable id of the ``index``-th submitted crystal: index plus a hash of its structure."""
    h = hashlib.sha1()
    for array in (np.round(crystal.lattice, 6), np.round(crystal.frac_coords, 6), crystal.species):
        h.update(np.ascontiguousarray(array).tobytes())
    return f"{index:06d}-{h.hexdigest()[:10]}"


def _stored_ids(store: CandidateStore, cids: list[str], crystals: Sequence[Crystal],
                tol: float = 1e-5) -> list[str]:
    """``cids``, where an id is not stored but a stored row of the same index holds the same
    submitted structure (species equal; lattice within ``tol`` angstrom, fractional coordinates
    within ``tol`` modulo 1), that row's id. A file round trip can move a coordinate across the
    6-decimal rounding of :func:`candidate_id`; without this the crystal would be screened again."""
    stages = store.stages()
    missing = [i for i, cid in enumerate(cids) if cid not in stages]
    if not missing:
        return cids
    by_index: dict[int, list[Any]] = defaultdict(list)
    for row in store.rows():
        by_index[int(row.get("index", -1))].append(row)
    out = list(cids)
    for i in missing:
        for row in by_index.get(i, []):
            stored = store.initial(row)
            if _same_structure(stored, crystals[i], tol):
                out[i] = row.get("cid")
                break
    return out


def _same_structure(a: Crystal, b: Crystal, tol: float) -> bool:
    if a.num_sites != b.num_sites or not np.array_equal(a.species, b.species):
        return False
    if not np.allclose(a.lattice, b.lattice, atol=tol, rtol=0):
        return False
    delta = np.asarray(a.frac_coords) - np.asarray(b.frac_coords)
    return bool(np.all(np.abs(delta - np.round(delta)) <= tol))


def _validity(crystal: Crystal) -> tuple[bool, bool]:
    from xtalgen.metrics.validity import smact_validity, structure_validity

    try:
        comp = bool(smact_validity(crystal))
    except Exception:
        comp = False
    return bool(structure_validity(crystal)), comp


def _find_duplicates(crystals: dict[str, Crystal], order: list[str]) -> dict[str, str]:
    """cid -> cid of its first earlier match (disordered matcher, grouped by formula)."""
    from xtalgen.matching import disordered_matcher

    matcher = disordered_matcher()
    kept: dict[str, list[tuple[str, Any]]] = defaultdict(list)
    duplicates: dict[str, str] = {}
    for cid in order:
        crystal = crystals[cid]
        key = crystal.formula if crystal.is_ordered else crystal.composition.chemical_system
        structure = crystal.to_pymatgen()
        for other_cid, other in kept[key]:
            try:
                same = matcher.fit(other, structure)
            except Exception:
                same = False
            if same:
                duplicates[cid] = other_cid
                break
        else:
            kept[key].append((cid, structure))
    return duplicates


def screen(
    crystals: Sequence[Crystal],
    store: CandidateStore | str | Path,
    config: ScreenConfig | None = None,
    *,
    executor: Executor | None = None,
) -> ScreenSummary:
    """Screen ``crystals`` into ``store``; resumable (see the module docstring)."""
    from tqdm.auto import tqdm

    start = time.perf_counter()
    config = config or ScreenConfig()
    ranking = parse_rank_by(config.rank_by)  # bad keys and predictors fail before any work
    if any(key == "synthesizability" for key, _, _ in ranking) and config.synthesizability is None:
        raise XtalgenError("ranking by synthesizability needs a synthesizability predictor "
                           "(--synthesizability NAME|PATH)")
    scorer = synthesizability_scorer(config.synthesizability)
    store = store if isinstance(store, CandidateStore) else CandidateStore(store)
    run = int(store.metadata.get("runs", 0)) + 1
    store.set_metadata(runs=run, settings=config.settings())
    crystals, extra = _expand_disorder(crystals, config)
    cids = _stored_ids(store, [candidate_id(i, c) for i, c in enumerate(crystals)], crystals)
    by_cid = dict(zip(cids, crystals))
    position = {cid: i for i, cid in enumerate(cids)}
    stages = store.stages()

    # 1. validity and deduplication of the candidates not stored yet (one transaction)
    new = [cid for cid in cids if cid not in stages]
    if new:
        valid: dict[str, tuple[bool, bool]] = {}
        for cid in tqdm(new, desc="validity", disable=not config.progress, leave=False):
            valid[cid] = (False, False) if cid in extra else _validity(by_cid[cid])
        passes = {cid: s and (c or not config.require_comp_valid) for cid, (s, c) in valid.items()}
        # orderings of a disordered input are symmetry-distinct by construction; the
        # order-disorder-aware matcher would merge them before their energies are known
        candidates = [
            c
            for c in cids
            if c not in extra
            and "parent_cid" not in by_cid[c].properties
            and ((stages.get(c) not in (None, "invalid")) or passes.get(c))
        ]
        duplicates = _find_duplicates(by_cid, candidates) if config.dedup else {}
        with store.transaction():
            for cid in new:
                s, c = valid[cid]
                if cid in extra:
                    store.add(cid, by_cid[cid], position[cid], stage="disordered", **extra[cid])
                    continue
                stage = (
                    "invalid"
                    if not passes[cid]
                    else ("duplicate" if cid in duplicates else "pending")
                )
                store.add(
                    cid,
                    by_cid[cid],
                    position[cid],
                    stage=stage,
                    struct_valid=s,
                    comp_valid=c,
                    valid=s and c,
                    duplicate_of=duplicates.get(cid),
                    **_ordering_keys(by_cid[cid]),
                )
        stages = store.stages()

    # 2. relaxation + E_hull of pending candidates, stored as each one finishes
    pending = [cid for cid in cids if stages[cid] == "pending"]
    spec = config.worker_spec()
    own_executor = executor is None
    if pending and executor is None:
        executor = get_executor(config.scheduler, config.n_workers)
    try:
        if config.batch_size > 1:  # chunks relaxed in lockstep, one batched call per step
            size = config.batch_size
            chunks = [pending[i : i + size] for i in range(0, len(pending), size)]
            tasks = [(spec, [(cid, by_cid[cid]) for cid in chunk]) for chunk in chunks]
            fn = screen_chunk
        else:
            tasks = [(spec, cid, by_cid[cid]) for cid in pending]
            fn = screen_one
        results = executor.imap_unordered(fn, tasks) if pending else iter(())
        with tqdm(
            total=len(pending), desc="relax + E_hull", unit="crystal", disable=not config.progress
        ) as bar:
            for out in results:
                for item in out if isinstance(out, list) else [out]:
                    _store_result(store, item, run)
                    bar.update(1)
    finally:
        if own_executor and executor is not None:
            executor.close()

    # 3. S.U.N. over all candidates (recomputed only when something new finished)
    n_new = len(pending) + len(new)
    rank_settings = {"rank_by": list(config.rank_by),
                     "synthesizability": config.settings()["synthesizability"]}
    if n_new or "summary" not in store.metadata or store.metadata.get("ranking") != rank_settings:
        _copy_duplicates(store)
        flag_and_rank(store, config, scorer, submitted=set(cids))
        store.set_metadata(ranking=rank_settings)
    meta = store.metadata
    table = store.table()
    counts: dict[str, int] = defaultdict(int)
    for row in table:
        counts[row.get("stage", "?")] += 1
    top = [r for r in table if "rank" in r]
    top.sort(key=lambda r: r["rank"])
    disordered = [r for r in table if r.get("stage") == "disordered"]
    return ScreenSummary(
        store=store.path,
        n_submitted=len(table),
        stages=dict(counts),
        metrics=meta.get("summary", {}),
        n_computed_this_run=len(pending),
        wall_s=time.perf_counter() - start,
        run=run,
        top=top[:10],
        disordered=[r.get("disorder", "") for r in disordered],
        parents=[
            {k: r.get(k) for k in ("cid", "source", "composition", "n_orderings", "best_ordering",
                                   "best_e_above_hull")}
            for r in disordered
        ],
    )


def _expand_disorder(
    crystals: Sequence[Crystal], config: ScreenConfig
) -> tuple[list[Crystal], dict[str, dict[str, Any]]]:
    """Inputs plus, with ``config.order``, the orderings of each disordered one (appended, so
    input positions and candidate ids never move); cid -> store keys of each disordered input.
    """
    from xtalgen.disorder import (
        OrderingSettings,
        disorder_message,
        enumerate_orderings,
        special_quasirandom,
    )

    out = list(crystals)
    extra: dict[str, dict[str, Any]] = {}
    for i, crystal in enumerate(crystals):
        message = disorder_message(crystal, "a relaxation")
        if message is None:
            continue
        cid = candidate_id(i, crystal)
        keys: dict[str, Any] = {
            "disorder": message,
            "source": crystal.properties.get("source"),
            "composition": crystal.formula,
        }
        if config.order > 0:
            try:
                if config.order_method == "sqs":
                    orderings = []
                    for seed in range(config.order):
                        sqs = special_quasirandom(
                            crystal, config.order_supercell, seed=seed,
                            max_sites=config.order_max_sites,
                        )
                        parent = sqs.properties["parent"]
                        orderings.append(
                            sqs.with_properties(ordering=seed, source=f"{parent}#sqs{seed}")
                        )
                elif config.order_method == "ewald":
                    settings = OrderingSettings(
                        n=config.order,
                        supercell=config.order_supercell,
                        max_sites=config.order_max_sites,
                    )
                    orderings = enumerate_orderings(crystal, settings)
                else:
                    raise XtalgenError(
                        f"order_method must be ewald or sqs, got {config.order_method!r}"
                    )
            except XtalgenError as exc:
                keys["error"] = str(exc)
                orderings = []
            out.extend(o.with_properties(parent_cid=cid) for o in orderings)
            keys["n_orderings"] = len(orderings)
        extra[cid] = keys
    return out, extra


def _ordering_keys(crystal: Crystal) -> dict[str, Any]:
    """Store keys that tie an ordering to its disordered parent (none for other candidates)."""
    props = crystal.properties
    if "parent_cid" not in props:
        return {}
    return {
        "parent_cid": props["parent_cid"],
        "ordering": props.get("ordering"),
        "ewald_energy": props.get("ewald_energy"),
        "ordering_supercell": props.get("supercell"),
        "ordering_method": props.get("ordering_method"),
        "source": props.get("source"),
    }


def _store_result(store: CandidateStore, out: dict[str, Any], run: int) -> None:
    keys = (
        "energy_per_atom",
        "initial_energy_per_atom",
        "n_steps",
        "converged",
        "error",
        "rmsd",
        "max_force",
        "relax_s",
        "relax_cpu_s",
        "e_above_hull",
        "formation_energy",
        "corrected_energy_per_atom",
        "hull_error",
        "potential",
    )
    kvp = {k: out.get(k) for k in keys}
    data = {"decomposition": out["decomposition"]} if out.get("decomposition") else None
    store.update(
        out["cid"], crystal=out.get("relaxed"), data=data, stage=out["stage"], run=run, **kvp
    )


def _copy_duplicates(store: CandidateStore) -> None:
    """Duplicates inherit the relaxation and E_hull of the candidate they duplicate."""
    rows = {row.cid: row for row in store.rows()}
    copied = (
        "energy_per_atom",
        "e_above_hull",
        "formation_energy",
        "rmsd",
        "n_steps",
        "converged",
        "error",
    )
    with store.transaction():
        for row in rows.values():
            if row.get("stage") != "duplicate" or "energy_per_atom" in row.key_value_pairs:
                continue
            source = rows.get(row.get("duplicate_of"))
            if source is None or source.get("stage") not in ("relaxed", "failed"):
                continue
            kvp = {k: source.get(k) for k in copied if k in source.key_value_pairs}
            atoms = source.toatoms()
            store.db.update(row.id, atoms=atoms, **kvp)
