"""Small trained checkpoints shipped with xtalgen (see README.md here for how each was made).

>>> from xtalgen.checkpoints import shipped_checkpoint
>>> from xtalgen.models import load_model
>>> model = load_model(shipped_checkpoint("perov5-csp-flow"))       # doctest: +SKIP
>>> model.sample(4, composition="SrTiO3")                            # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from xtalgen.errors import XtalgenError

__all__ = ["CHECKPOINT_DIR", "PREDICTOR_DIR", "shipped_checkpoint", "shipped_checkpoints"]

CHECKPOINT_DIR = Path(__file__).parent
"""The shipped generators."""
PREDICTOR_DIR = CHECKPOINT_DIR / "predictors"
"""The shipped property predictors (not generators: loaded by
:func:`xtalgen.properties.trained.load_predictor`)."""

ALIASES = {"mp20-csp-wyckoff": "mp20-dng-wyckoff", "perov5-csp-wyckoff": "perov5-dng-wyckoff",
           "mp20-csp-cif-lm": "mp20-cif-lm", "mp20-dng-cif-lm": "mp20-cif-lm",
           "perov5-csp-cif-lm": "perov5-cif-lm", "perov5-dng-cif-lm": "perov5-cif-lm"}
"""Second names of one file: a Wyckoff transformer or a CIF language model serves DNG and CSP
alike (the ``DATASET-TASK-MODEL`` names let ``xtalgen benchmark`` find it for either task)."""


def shipped_checkpoints() -> dict[str, Path]:
    """Name (file stem, or an alias of :data:`ALIASES`) -> path of every shipped checkpoint."""
    found = {path.stem: path for path in sorted(CHECKPOINT_DIR.glob("*.pt"))}
    found.update({alias: found[name] for alias, name in ALIASES.items() if name in found})
    return dict(sorted(found.items()))


def shipped_checkpoint(name: str) -> Path:
    """Path of a shipped checkpoint by name, e.g. ``"perov5-csp-flow"``."""
    available = shipped_checkpoints()
    if name not in available:
        known = ", ".join(available) or "none"
        raise XtalgenError(f"no shipped checkpoint named {name!r} (shipped: {known})")
    return available[name]
