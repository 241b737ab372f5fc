"""The generators a benchmark can run, and one way to sample each for CSP or DNG.

Every generator comes from the registries that already exist, so a new family or checkpoint
appears without editing the harness: the registered search methods
(:data:`xtalgen.models.registry.GENERATORS`, built with their own
:meth:`~xtalgen.models.base.Generator.benchmark_kwargs`), the shipped checkpoints named
``DATASET-TASK-MODEL`` for the benchmark's dataset and task, and any checkpoint file given by path.
A pipeline of :data:`xtalgen.pipelines.PIPELINES` wrapped around a checkpoint is named
``PIPELINE:CHECKPOINT`` (e.g. ``templated-csp:mp20-csp-flow``); it runs only when named.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.models.base import Generator

__all__ = ["GeneratorEntry", "available_generators", "build_generator", "formula_units", "sample_csp",
           "sample_dng"]


@dataclass(frozen=True)
class GeneratorEntry:
    """One benchmark row's generator: ``name`` as the user writes it, ``kind`` (``search`` or a
    learned family), and the checkpoint file when there is one."""

    name: str
    kind: str
    checkpoint: Path | None = None


def _checkpoint_info(path: Path) -> dict[str, Any]:
    from xtalgen.models.checkpoint import read_checkpoint

    data = read_checkpoint(path)
    provenance = data.get("provenance") or {}
    return {
        "family": data.get("family", "iterative"),
        "wall_time_s": data.get("wall_time_s", provenance.get("wall_time_s")),
    }


def available_generators(task: str, dataset: str) -> list[GeneratorEntry]:
    """Every registered search method that supports ``task`` and every shipped checkpoint of
    ``dataset`` for ``task`` (by its name, ``DATASET-TASK-MODEL``), aliases resolved once."""
    from xtalgen.checkpoints import shipped_checkpoints
    from xtalgen.models.registry import GENERATORS

    entries = [
        GeneratorEntry(name, "search")
        for name in GENERATORS
        if task == "csp" or name != "evolution"  # evolution needs a composition
    ]
    seen: set[Path] = set()
    for name, path in sorted(shipped_checkpoints().items()):
        parts = name.split("-")
        if len(parts) < 3 or parts[0] != dataset or parts[1] != task:
            continue
        resolved = path.resolve()
        if resolved in seen:
            continue
        seen.add(resolved)
        entries.append(GeneratorEntry(name, _checkpoint_info(path)["family"], path))
    return entries


def resolve_generators(spec: str | Sequence[str], task: str, dataset: str) -> list[GeneratorEntry]:
    """``"all"``, or names / checkpoint paths separated by commas."""
    from xtalgen.checkpoints import shipped_checkpoints
    from xtalgen.models.registry import GENERATORS

    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if not names or names == ["all"]:
        return available_generators(task, dataset)
    out: list[GeneratorEntry] = []
    for name in names:
        if name == "all":
            out.extend(e for e in available_generators(task, dataset) if e not in out)
        elif name in GENERATORS:
            out.append(GeneratorEntry(name, "search"))
        else:
            pipeline, _, checkpoint = name.partition(":") if ":" in name else ("", "", name)
            if pipeline and pipeline not in _pipelines():
                raise XtalgenError(f"no pipeline named {pipeline!r} (known: "
                                   f"{', '.join(_pipelines())})")
            path = shipped_checkpoints().get(checkpoint, Path(checkpoint))
            if not path.exists():
                known = ", ".join(e.name for e in available_generators(task, dataset))
                raise XtalgenError(f"no generator or checkpoint named {name!r} (for {task} on "
                                   f"{dataset}: {known})")
            try:
                kind = "pipeline" if pipeline else _checkpoint_info(path)["family"]
            except Exception:  # unreadable: the run records the error in this generator's row
                kind = "?"
            out.append(GeneratorEntry(name, kind, path))
    return out


def build_generator(entry: GeneratorEntry, train: Sequence[Crystal], n_steps: int | None) -> Generator:
    """The generator of ``entry``, built as the benchmark runs it."""
    from xtalgen.models.registry import generator_class, load_generator

    if entry.checkpoint is None:
        return load_generator(entry.name, **generator_class(entry.name).benchmark_kwargs(train))
    kwargs: dict[str, Any] = {"progress": False}
    if n_steps is not None:
        kwargs["n_steps"] = n_steps
    model = load_generator(entry.checkpoint, **kwargs)
    if entry.kind != "pipeline":
        return model
    module_name, class_name = _pipelines()[entry.name.partition(":")[0]].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(model, **cls.benchmark_kwargs(train))


def _pipelines() -> dict[str, str]:
    from xtalgen.pipelines import PIPELINES

    return PIPELINES


def cost_of(entry: GeneratorEntry, generator: Generator) -> dict[str, Any]:
    """Parameters (learned models) and training seconds (from the checkpoint's provenance)."""
    model = getattr(generator, "model", None)
    while model is not None and not hasattr(model, "parameters") and hasattr(model, "model"):
        model = model.model  # a pipeline around a learned generator around its network
    params = sum(p.numel() for p in model.parameters()) if hasattr(model, "parameters") else None
    train_s = _checkpoint_info(entry.checkpoint)["wall_time_s"] if entry.checkpoint else None
    return {"parameters": params, "train_s": None if train_s is None else float(train_s)}


def sample_csp(generator: Generator, targets: Sequence[Crystal], k: int, seed: int) -> list[Crystal]:
    """``k`` predictions per target, tagged with its ``material_id`` and ``sample_index``.

    Learned models sample all targets in batches (``sample_csp``); other generators are asked
    once per target for ``k`` crystals of its cell composition (seed ``seed + i``). CSP gives
    the number of atoms, so a generator whose config has ``formula_units`` (the search methods)
    is held to the target's (as :mod:`benchmarks.bench_search_csp` does), and its setting is
    restored after. A target a generator cannot serve gets no predictions (it counts as a
    miss), not an error.
    """
    if hasattr(generator, "sample_csp"):
        return list(generator.sample_csp(list(targets), k=k, seed=seed))
    config = getattr(generator, "config", None)
    cell_aware = config is not None and hasattr(config, "formula_units")
    before = config.formula_units if cell_aware else None
    out: list[Crystal] = []
    for i, target in enumerate(targets):
        if cell_aware:
            config.formula_units = (formula_units(target),)
        try:
            crystals = generator.generate(k, composition=target.composition.formula, seed=seed + i)
        except XtalgenError:
            continue
        finally:
            if cell_aware:
                config.formula_units = before
        mid = target.properties.get("material_id", str(i))
        out.extend(
            c.with_properties(material_id=mid, sample_index=j) for j, c in enumerate(crystals[:k])
        )
    return out


def formula_units(crystal: Crystal) -> int:
    """Formula units in the cell (8 for C8, 4 for Li4Mn4O8)."""
    from xtalgen.models.iterative.templates import reduced_counts

    return max(crystal.num_sites // max(sum(n for _, n in reduced_counts(crystal.species)), 1), 1)


def sample_dng(generator: Generator, n: int, seed: int) -> list[Crystal]:
    """``n`` de novo crystals (fewer if the generator returns fewer)."""
    return list(generator.generate(n, seed=seed))
