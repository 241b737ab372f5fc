"""Checkpoint files of learned generators: one ``torch.save`` dict, loaded with weights_only.

Contents: ``format``/``version``; ``family`` (the model family, a key of
:data:`xtalgen.models.learned.FAMILIES`; absent in files written before families existed, which
are iterative); ``model_config`` (plain dict of the family's config dataclass);
``state_dict`` (raw weights), ``ema_state_dict`` (EMA weights, used for sampling);
``optimizer`` and ``rng_state`` (for resuming; dropped from shipped checkpoints);
``train_config``; ``provenance`` (dataset, split, source file hashes, git commit, ...);
``step``, ``wall_time_s``, ``best_val_loss``.
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
    "load_checkpoint_generator",
    "load_model",
    "read_checkpoint",
    "slim_checkpoint",
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


def slim_checkpoint(src: str | Path, dst: str | Path) -> Path:
    """Copy a checkpoint keeping only what sampling needs (EMA weights, config, provenance)."""
    payload = read_checkpoint(src)
    keep = ("family", "model_config", "ema_state_dict", "train_config", "provenance", "step",
            "wall_time_s", "best_val_loss")
    fields = {k: payload[k] for k in keep if k in payload}
    from xtalgen.models.learned import DEFAULT_FAMILY, family_generator

    # network weights in half precision; exact buffers (noise schedules) stay fp32
    prefixes = family_generator(payload.get("family", DEFAULT_FAMILY)).half_precision_prefixes
    fields["ema_state_dict"] = {
        k: v.half() if v.is_floating_point() and k.startswith(prefixes) else v
        for k, v in fields["ema_state_dict"].items()
    }
    return write_checkpoint(dst, **fields)


def load_checkpoint_generator(path: str | Path, **kwargs: Any):  # -> LearnedGenerator
    """The generator of a checkpoint file, of the family the file records
    (:meth:`xtalgen.models.learned.LearnedGenerator.load`)."""
    from xtalgen.models.learned import LearnedGenerator

    return LearnedGenerator.load(path, **kwargs)


load_model = load_checkpoint_generator
"""``load_model(path).generate(n, ...)``: the Python entry point for checkpoints of any family."""
