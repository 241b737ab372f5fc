"""Structure and composition fingerprints of the coverage metrics (CDVAE, spec B.4).

* Structure: matminer ``CrystalNNFingerprint.from_preset("ops")`` per site, averaged over sites
  (61 numbers: for CN 1-24 a weight, plus 37 motif order parameters for CN 1-12). A crystal
  whose fingerprint raises gets ``None`` (a row of NaN in arrays) and is then invalid.
  ``method="fast"`` computes the same numbers (to float noise, ~1e-12) with
  :mod:`xtalgen.metrics.crystalnn` (7-9x less CPU on MP-20), and falls back to matminer for any
  structure it does not reproduce; ``method="matminer"`` is the plain reference path. The
  default is ``DEFAULT_METHOD``, overridden by the environment variable
  ``XTALGEN_FINGERPRINT_METHOD``.
* Composition: matminer ``ElementProperty.from_preset("magpie")`` (132 numbers), standardised
  with CDVAE's fixed ``CompScalerMeans`` / ``CompScalerStds`` (bundled
  ``data/files/reference/cdvae_constants.json``); NaN becomes 0 after scaling.

Structure fingerprints run in parallel processes; a reference set's fingerprints are cached on
disk under ``$XTALGEN_CACHE`` (default ``~/.cache/xtalgen``) in ``fingerprints/``, keyed by the
sha256 of the crystals' arrays, the method and the matminer/pymatgen versions.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Sequence
from functools import cache, partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from xtalgen.crystal import Crystal, crystals_sha256
from xtalgen.metrics.crystalnn import FAST_VERSION, FastStats, ops_preset, site_fingerprints
from xtalgen.parallel import parallel_map

__all__ = [
    "COMP_FP_DIM",
    "DEFAULT_METHOD",
    "FINGERPRINT_METHODS",
    "STRUCT_FP_DIM",
    "composition_fingerprints",
    "default_method",
    "scale_composition",
    "structure_fingerprint",
    "structure_fingerprints",
]

STRUCT_FP_DIM = 61
COMP_FP_DIM = 132
_FORMAT = 1  # bump when the cached array layout changes
FINGERPRINT_METHODS = ("fast", "matminer")
# "matminer" until tests that demand bit-equality with matminer accept float noise
DEFAULT_METHOD = "fast"


def default_method() -> str:
    """``$XTALGEN_FINGERPRINT_METHOD`` if set, else ``DEFAULT_METHOD``."""
    return _check_method(os.environ.get("XTALGEN_FINGERPRINT_METHOD") or DEFAULT_METHOD)


def _check_method(method: str | None) -> str:
    method = default_method() if method is None else method
    if method not in FINGERPRINT_METHODS:
        raise ValueError(f"fingerprint method must be one of {FINGERPRINT_METHODS}, not {method!r}")
    return method


@cache
def _crystal_nn_fp():
    from matminer.featurizers.site import CrystalNNFingerprint

    return CrystalNNFingerprint.from_preset("ops")


@cache
def _magpie():
    from matminer.featurizers.composition import ElementProperty

    return ElementProperty.from_preset("magpie")


@cache
def _scaler_constants() -> tuple[np.ndarray, np.ndarray]:
    path = Path(__file__).resolve().parents[1] / "data" / "files" / "reference" / "cdvae_constants.json"
    data = json.loads(path.read_text())
    return np.asarray(data["CompScalerMeans"], float), np.asarray(data["CompScalerStds"], float)


def _matminer_fingerprint(structure) -> np.ndarray | None:
    featurizer = _crystal_nn_fp()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sites = [featurizer.featurize(structure, i) for i in range(len(structure))]
    except Exception:  # the reference code counts any failure as "no fingerprint"
        return None
    return np.asarray(sites, dtype=float).mean(axis=0)


def _fast_fingerprint(structure, stats: FastStats | None = None) -> np.ndarray | None:
    if len(structure) > 0:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return site_fingerprints(structure, stats).mean(axis=0)
        except Exception as exc:  # not reproduced by the fast path: the reference decides
            if stats is not None:
                stats.fallback_structures += 1
                first_line = (str(exc).splitlines() or [""])[0][:120]
                stats.reasons.append(f"{type(exc).__name__}: {first_line}")
    return _matminer_fingerprint(structure)


def structure_fingerprint(
    crystal: Crystal, method: str | None = None, stats: FastStats | None = None
) -> np.ndarray | None:
    """Site-averaged CrystalNN "ops" fingerprint (61,), or None when matminer raises.

    ``method``: "fast" (same numbers, see :mod:`xtalgen.metrics.crystalnn`), "matminer", or
    None for :func:`default_method`; ``stats`` (fast only) counts uses of the reference code.
    """
    method = _check_method(method)
    structure = crystal.to_pymatgen()
    if method == "matminer":
        return _matminer_fingerprint(structure)
    return _fast_fingerprint(structure, stats)


def _fp_or_nan(crystal: Crystal, method: str) -> np.ndarray:
    fp = structure_fingerprint(crystal, method)
    return np.full(STRUCT_FP_DIM, np.nan) if fp is None else fp


def _version(*names: str) -> str:
    for name in names:
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return "unknown"


def _cache_file(crystals: Sequence[Crystal], method: str) -> Path:
    root = os.environ.get("XTALGEN_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "xtalgen"
    versions = f"matminer{_version('matminer')}-pymatgen{_version('pymatgen-core', 'pymatgen')}"
    if method == "fast":
        versions += f"-scipy{_version('scipy')}-fast{FAST_VERSION}"
    tag = f"{method}-{versions}-v{_FORMAT}"
    return base / "fingerprints" / f"crystalnn-{crystals_sha256(crystals)}-{tag}.npy"


def structure_fingerprints(
    crystals: Sequence[Crystal],
    *,
    n_jobs: int | None = None,
    progress: bool = True,
    cache: bool = False,
    method: str | None = None,
) -> np.ndarray:
    """(N, 61) site-averaged CrystalNN fingerprints; a row of NaN where matminer failed.

    ``cache=True`` reads / writes the on-disk cache (meant for reference splits); ``method``
    as in :func:`structure_fingerprint` (part of the cache key).
    """
    method = _check_method(method)
    path = _cache_file(crystals, method) if cache else None
    if path is not None and path.exists():
        return np.load(path)
    _crystal_nn_fp()  # build once here, so forked workers inherit it
    if method == "fast":
        ops_preset()
    rows = parallel_map(
        partial(_fp_or_nan, method=method), list(crystals), n_jobs=n_jobs,
        desc="CrystalNN fingerprints", progress=progress, chunksize=4,
    )
    fps = np.asarray(rows, dtype=float).reshape(len(crystals), STRUCT_FP_DIM)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npy", delete=False) as tmp:
            np.save(tmp, fps)
        os.replace(tmp.name, path)
    return fps


@cache
def _magpie_row(formula_key: tuple[tuple[str, float], ...]) -> tuple[float, ...]:
    from pymatgen.core import Composition

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tuple(float(v) for v in _magpie().featurize(Composition(dict(formula_key))))


def composition_fingerprints(crystals: Sequence[Crystal]) -> np.ndarray:
    """(N, 132) raw Magpie features of each crystal's composition (may contain NaN)."""
    rows = []
    for c in crystals:
        comp = c.composition.reduced_composition
        key = tuple(sorted((el.symbol, float(amt)) for el, amt in comp.items()))
        rows.append(_magpie_row(key))
    return np.asarray(rows, dtype=float).reshape(len(crystals), COMP_FP_DIM)


def scale_composition(comp_fps: np.ndarray) -> np.ndarray:
    """CDVAE's ``StandardScaler(CompScalerMeans, CompScalerStds, replace_nan_token=0.)``."""
    means, stds = _scaler_constants()
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = (np.asarray(comp_fps, dtype=float) - means) / stds
    return np.where(np.isnan(scaled), 0.0, scaled)
