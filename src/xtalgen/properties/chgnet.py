"""CHGNet formation energy: a property predictor that needs no training.

The **CHGNet formation energy** (eV/atom) of the structure as given (single point, no
relaxation, the way a property network sees a generated crystal), against the elemental
references of the bundled MP-20 hull (MP2020-compatible energies, the convention of CHGNet
0.3.0's training data). It stands in for CDVAE's trained formation-energy network in the DNG
suite's ``wdist_prop``; it is a proxy for that predictor, not the same model: compare
``wdist_prop`` only between runs that used the same predictor (the name is stored with the
metric).

Values are cached on disk (``$XTALGEN_CACHE/properties/``, keyed by the sha256 of the crystals
and the CHGNet version), so a reference split is predicted once.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from xtalgen.crystal import Crystal, crystals_sha256

__all__ = ["chgnet_formation_energy"]


def chgnet_formation_energy(
    crystals: Sequence[Crystal], *, batch_size: int = 64, progress: bool = True
) -> np.ndarray:
    """(N,) CHGNet single-point formation energies in eV/atom; NaN where no value exists.

    NaN: an element without an elemental reference in the bundled hull, or a structure the
    potential cannot evaluate.
    """
    path = _cache_path(crystals)
    if path.exists():
        return np.load(path)
    from tqdm.auto import tqdm

    from xtalgen.relax.hull import ConvexHull
    from xtalgen.relax.potential import get_potential

    potential = get_potential("chgnet")
    hull = ConvexHull()
    out = np.full(len(crystals), np.nan)
    bar = tqdm(total=len(crystals), desc="CHGNet formation energy", disable=not progress)
    for start in range(0, len(crystals), batch_size):
        chunk = list(crystals[start:start + batch_size])
        try:
            results = potential.single_points(chunk)
        except Exception:  # one bad cell must not lose the batch: fall back to one at a time
            results = []
            for crystal in chunk:
                try:
                    results.append(potential.single_points([crystal])[0])
                except Exception:
                    results.append((math.nan, None, None))
        for offset, (crystal, (energy, _, _)) in enumerate(zip(chunk, results)):
            composition = crystal.composition
            if math.isfinite(energy) and not hull.missing_elements(composition):
                out[start + offset] = hull.formation_energy_per_atom(composition, energy)
        bar.update(len(chunk))
    bar.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npy", delete=False) as tmp:
        np.save(tmp, out)
    os.replace(tmp.name, path)
    return out


def _cache_path(crystals: Sequence[Crystal]) -> Path:
    try:
        tag = version("chgnet")
    except PackageNotFoundError:
        tag = "unknown"
    root = os.environ.get("XTALGEN_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "xtalgen"
    return base / "properties" / f"eform-chgnet{tag}-{crystals_sha256(crystals)}.npy"
