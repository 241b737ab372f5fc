"""Process-parallel map with a progress bar, for the expensive metrics and encodings.

Results come back in input order. Work below ``min_items`` (or ``n_jobs=1``) runs in this
process, so small inputs never pay the start-up cost of worker processes.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

from tqdm.auto import tqdm

__all__ = ["cpu_seconds", "default_jobs", "parallel_map"]

T = TypeVar("T")
R = TypeVar("R")


def cpu_seconds() -> float:
    """CPU seconds used by this process and its finished (joined) worker processes."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def default_jobs() -> int:
    """Worker processes to use by default: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


def parallel_map(
    fn: Callable[[T], R],
    items: Sequence[T],
    *,
    n_jobs: int | None = None,
    desc: str = "",
    progress: bool = True,
    chunksize: int = 1,
    min_items: int = 8,
) -> list[R]:
    """``[fn(x) for x in items]`` over ``n_jobs`` processes (``fn`` must be picklable)."""
    n_jobs = default_jobs() if n_jobs is None else max(1, int(n_jobs))
    disable = not progress
    if n_jobs == 1 or len(items) < max(min_items, 2):
        return [fn(x) for x in tqdm(items, desc=desc, disable=disable, leave=False)]
    context = _context()
    results: list[Any] = []
    with ProcessPoolExecutor(max_workers=n_jobs, mp_context=context) as pool:
        iterator = pool.map(fn, items, chunksize=max(1, chunksize))
        for result in tqdm(iterator, total=len(items), desc=desc, disable=disable, leave=False):
            results.append(result)
    return results


def _context() -> mp.context.BaseContext:
    # fork shares the parent's imports (pymatgen, matminer take seconds to import)
    methods = mp.get_all_start_methods()
    return mp.get_context("fork" if "fork" in methods else methods[0])
