"""Relax many crystals: one by one (:func:`~xtalgen.relax.relaxer.relax_one`) or in lockstep
batches (:func:`~xtalgen.relax.batched.relax_batched`), one :class:`RelaxResult` per crystal.
"""

from __future__ import annotations

from collections.abc import Sequence

from xtalgen.crystal import Crystal
from xtalgen.relax.batched import relax_batched
from xtalgen.relax.potential import Potential, get_potential
from xtalgen.relax.relaxer import RelaxConfig, RelaxResult, relax_one

__all__ = ["relax"]


def relax(
    crystals: Sequence[Crystal],
    *,
    potential: Potential | None = None,
    fmax: float = 0.1,
    max_steps: int = 500,
    progress: bool = True,
    config: RelaxConfig | None = None,
    batch_size: int = 1,
) -> list[RelaxResult]:
    """Relax every crystal (positions and cell) with ``potential`` (default: CHGNet).

    ``config`` overrides ``fmax`` and ``max_steps`` when given. Failures never stop the run:
    see ``RelaxResult.error``. ``batch_size > 1`` relaxes that many crystals in lockstep with
    one batched potential call per step (``xtalgen.relax.batched``; needs ``potential.batch``,
    pays off on a GPU). For many crystals on many cores, use ``xtalgen.screen``.
    """
    from tqdm.auto import tqdm

    config = config or RelaxConfig(fmax=fmax, max_steps=max_steps)
    potential = potential or get_potential("chgnet")
    results: list[RelaxResult] = []
    with tqdm(total=len(crystals), desc="relax", unit="crystal", disable=not progress) as bar:
        if batch_size > 1 and potential.batch is not None:
            for start in range(0, len(crystals), batch_size):
                chunk, _ = relax_batched(crystals[start : start + batch_size], potential, config)
                results.extend(chunk)
                bar.update(len(chunk))
            return results
        for crystal in crystals:
            results.append(relax_one(crystal, potential, config))
            bar.update(1)
    return results
