"""One executor interface for the per-structure work: a local process pool or a Dask cluster.

``executor.imap_unordered(fn, items)`` yields ``fn(item)`` as each finishes (any order), so the
pipeline stores every result the moment it exists. ``fn`` and the items must be picklable;
workers keep module-level caches (the potential is loaded once per worker process).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from xtalgen.errors import XtalgenError

__all__ = ["DaskExecutor", "Executor", "LocalExecutor", "get_executor"]


class Executor(Protocol):
    """Runs ``fn`` over ``items`` and yields the results as they complete."""

    name: str

    def imap_unordered(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Any]: ...

    def close(self) -> None: ...


def _init_worker(threads: int) -> None:
    os.environ["XTALGEN_THREADS"] = str(threads)
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


class LocalExecutor:
    """A pool of ``n_workers`` spawned processes (1: run in this process, no pool).

    Each worker gets ``cpu_count // n_workers`` torch threads (at least 1).
    """

    name = "local"

    def __init__(self, n_workers: int | None = None) -> None:
        cpus = os.cpu_count() or 1
        self.n_workers = max(1, int(n_workers or cpus))
        self.threads = max(1, cpus // self.n_workers)
        self._pool = None

    def imap_unordered(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Any]:
        if self.n_workers == 1 or len(items) <= 1:
            for item in items:
                yield fn(item)
            return
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.n_workers,
                mp_context=mp.get_context("spawn"),
                initializer=_init_worker,
                initargs=(self.threads,),
            )
        futures = [self._pool.submit(fn, item) for item in items]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class DaskExecutor:
    """Tasks on a ``dask.distributed`` cluster at ``address`` (or an existing ``Client``)."""

    name = "dask"

    def __init__(self, address: str | None = None, client: Any = None) -> None:
        from distributed import Client

        if client is None and not address:
            raise XtalgenError("a Dask scheduler address is needed, e.g. tcp://host:8786")
        try:
            self.client = client or Client(address, timeout="30s")
        except OSError as exc:
            raise XtalgenError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
        self._own_client = client is None
        self.address = address or str(self.client.scheduler.address)

    def imap_unordered(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Any]:
        from distributed import as_completed

        futures = self.client.map(fn, list(items), pure=False)
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            self.client.cancel(futures)

    def close(self) -> None:
        if self._own_client:
            self.client.close()


def get_executor(scheduler: str | None = None, n_workers: int | None = None) -> Executor:
    """Dask when a scheduler address is given, otherwise the local process pool."""
    if scheduler:
        return DaskExecutor(scheduler)
    return LocalExecutor(n_workers)
