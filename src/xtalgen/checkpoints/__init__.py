"""Small trained checkpoints shipped with xtalgen (see README.md here for how each was made).

>>> from xtalgen.checkpoints import shipped_checkpoint
>>> from xtalgen.models.checkpoint import load_model
>>> model = load_model(shipped_checkpoint("perov5-csp-flow"))       # doctest: +SKIP
>>> model.sample(4, composition="SrTiO3")                            # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from xtalgen.errors import XtalgenError

__all__ = ["CHECKPOINT_DIR", "shipped_checkpoint", "shipped_checkpoints"]

CHECKPOINT_DIR = Path(__file__).parent


def shipped_checkpoints() -> dict[str, Path]:
    """Name (file stem) -> path of every shipped checkpoint."""
    return {path.stem: path for path in sorted(CHECKPOINT_DIR.glob("*.pt"))}


def shipped_checkpoint(name: str) -> Path:
    """Path of a shipped checkpoint by name, e.g. ``"perov5-csp-flow"``."""
    available = shipped_checkpoints()
    if name not in available:
        known = ", ".join(available) or "none"
        raise XtalgenError(f"no shipped checkpoint named {name!r} (shipped: {known})")
    return available[name]
