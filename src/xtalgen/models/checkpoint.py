"""Checkpoint files of learned generators: one ``torch.save`` dict, loaded with weights_only.

Contents: ``format``/``version``; ``family`` (the model family, a key of
:data:`xtalgen.models.learned.FAMILIES`; absent in files written before families existed, which
are iterative); ``model_config`` (plain dict of the family's config dataclass);
``state_dict`` (raw weights), ``ema_state_dict`` (EMA weights, used for sampling);
``optimizer`` and ``rng_state`` (for resuming; dropped from shipped checkpoints);
``train_config``; ``provenance`` (dataset, split, source file hashes, git commit, ...);
``step``, ``wall_time_s``, ``best_val_loss``.

This module is the file format only. Loading a checkpoint as a generator of its family
(``load_model``) and slimming one for shipping (``slim_checkpoint``) need the family registry:
:mod:`xtalgen.models.learned`.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import torch

from xtalgen.errors import XtalgenError

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_NAMES",
    "git_commit",
    "read_checkpoint",
    "write_checkpoint",
]

CHECKPOINT_FORMAT = "xtalgen-generator"
CHECKPOINT_VERSION = 1
CHECKPOINT_NAMES = {"last": "last.pt", "best": "best.pt"}
_REQUIRED = ("model_config", "ema_state_dict")


def git_commit() -> str | None:
    """The current git commit of the source tree, when it is a checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def write_checkpoint(path: str | Path, *, model_config: Any, **fields: Any) -> Path:
    """Write a checkpoint atomically (temporary file, then rename)."""
    path = Path(path)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model_config": model_config.to_dict() if hasattr(model_config, "to_dict") else model_config,
        **fields,
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and check a checkpoint; a missing or corrupt file raises one clear XtalgenError."""
    path = Path(path)
    if not path.is_file():
        raise XtalgenError(f"checkpoint {str(path)!r} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors all mean the same to the user
        raise XtalgenError(f"checkpoint {str(path)!r} is corrupt or not a torch file ({exc.__class__.__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise XtalgenError(f"{str(path)!r} is not an xtalgen generator checkpoint")
    missing = [key for key in _REQUIRED if key not in payload]
    if missing:
        raise XtalgenError(f"checkpoint {str(path)!r} lacks {', '.join(missing)}")
    return payload
