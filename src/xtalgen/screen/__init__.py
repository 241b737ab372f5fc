"""Screening: validity, deduplication, relaxation, E_hull, S.U.N., ranking, candidate store.

``screen(crystals, "candidates.db")`` runs it all (resumable); the per-structure work goes
through an executor (local process pool, or Dask with ``ScreenConfig(scheduler=ADDRESS)``).
"""

from __future__ import annotations

from xtalgen.screen.executor import DaskExecutor, Executor, LocalExecutor, get_executor
from xtalgen.screen.pipeline import ScreenConfig, ScreenSummary, candidate_id, screen
from xtalgen.screen.store import CandidateStore
from xtalgen.screen.sun import CONVENTIONS, StabilityMetrics, stability_metrics

__all__ = [
    "CONVENTIONS",
    "CandidateStore",
    "DaskExecutor",
    "Executor",
    "LocalExecutor",
    "ScreenConfig",
    "ScreenSummary",
    "StabilityMetrics",
    "candidate_id",
    "get_executor",
    "screen",
    "stability_metrics",
]
