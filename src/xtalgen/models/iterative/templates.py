"""Which retrieved template each CSP sample starts from (DiffCSP++-style template seeding).

A CSP sampler asked for ``k`` structures of a target may start some of them from retrieved
templates (e.g. :class:`xtalgen.search.PrototypeSubstitution` candidates, best first) pushed back
to a noise level, and the others from pure noise. :func:`assign_templates` makes that choice:

* a template is *usable* when its composition reduces to the target's (``cells="any"``: the
  template may hold a different number of formula units, and the sample keeps the template's
  cell) or when it has exactly the target's sites (``cells="target"``); ``cells="prefer"``
  (default) takes the templates with the target's sites first, then the other usable ones,
  each group in retrieval order (the number of atoms per cell, which CSP is given, is strong
  evidence: on 200 MP-20 test targets it lifts the first template's match rate from 45.0% to
  54.5%);
* usable templates are used once each, in retrieval order: sample slot ``j`` of the templated
  slots takes the ``j``-th usable template, so k samples use the top-k distinct templates;
* slots left over when there are fewer usable templates than templated slots start from noise
  (``fill="noise"``) or reuse the templates round-robin (``fill="cycle"``);
* ``n_templated`` caps the templated slots per target (the rest start from noise), and
  ``templates_first`` puts them at sample indices ``0..`` (else at the end, so that sample 0,
  the one match@1 scores, is template-free).
"""

from __future__ import annotations

from collections.abc import Sequence
from math import gcd

from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError

__all__ = ["TEMPLATE_CELLS", "TEMPLATE_FILLS", "assign_templates", "reduced_counts", "templates_as_samples"]

TEMPLATE_CELLS = ("prefer", "any", "target")
TEMPLATE_FILLS = ("noise", "cycle")


def reduced_counts(species: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """``((Z, n), ...)`` of the reduced formula of a list of atomic numbers, sorted by Z."""
    counts: dict[int, int] = {}
    for z in species:
        counts[int(z)] = counts.get(int(z), 0) + 1
    divisor = 0
    for n in counts.values():
        divisor = gcd(divisor, n)
    return tuple(sorted((z, n // max(divisor, 1)) for z, n in counts.items()))


def _usable(target: Crystal, candidates: Sequence[Crystal], cells: str) -> list[Crystal]:
    sites = sorted(int(z) for z in target.species)
    same = [t for t in candidates if sorted(int(z) for z in t.species) == sites]
    if cells == "target":
        return same
    key = reduced_counts(target.species)
    usable = [t for t in candidates if reduced_counts(t.species) == key]
    if cells == "any":
        return usable
    return same + [t for t in usable if t.num_sites != target.num_sites]


def assign_templates(
    targets: Sequence[Crystal],
    templates: Sequence[Sequence[Crystal]],
    k: int,
    *,
    cells: str = "prefer",
    fill: str = "noise",
    n_templated: int | None = None,
    templates_first: bool = True,
) -> list[list[Crystal | None]]:
    """Per target, ``k`` entries: the template sample ``j`` starts from, or None (pure noise).

    ``templates[i]`` are target ``i``'s retrieved templates, best first. See the module
    docstring for ``cells``, ``fill``, ``n_templated`` and ``templates_first``.
    """
    if cells not in TEMPLATE_CELLS:
        raise XtalgenError(f"cells must be one of {TEMPLATE_CELLS}, got {cells!r}")
    if fill not in TEMPLATE_FILLS:
        raise XtalgenError(f"fill must be one of {TEMPLATE_FILLS}, got {fill!r}")
    if len(templates) != len(targets):
        raise XtalgenError(f"{len(templates)} template lists for {len(targets)} targets")
    if k < 1:
        raise XtalgenError(f"k must be at least 1, got {k}")
    slots = k if n_templated is None else max(0, min(int(n_templated), k))
    plan: list[list[Crystal | None]] = []
    for target, candidates in zip(targets, templates):
        usable = _usable(target, candidates, cells)
        seeded: list[Crystal | None] = []
        for j in range(slots):
            if j < len(usable):
                seeded.append(usable[j])
            elif fill == "cycle" and usable:
                seeded.append(usable[j % len(usable)])
            else:
                seeded.append(None)
        plain: list[Crystal | None] = [None] * (k - slots)
        plan.append(seeded + plain if templates_first else plain + seeded)
    return plan


def templates_as_samples(
    targets: Sequence[Crystal],
    templates: Sequence[Sequence[Crystal]],
    k: int,
    **plan_options: object,
) -> list[Crystal]:
    """The templates themselves as CSP samples (no network), assigned as the sampler assigns
    them (``plan_options``: see :func:`assign_templates`), tagged ``material_id``,
    ``sample_index`` and ``template_rank``. Slots without a template get no sample (a miss)."""
    plan = assign_templates(targets, templates, k, **plan_options)  # type: ignore[arg-type]
    out = []
    for i, (target, starts) in enumerate(zip(targets, plan)):
        mid = target.properties.get("material_id", str(i))
        ranks = {id(t): r for r, t in enumerate(templates[i])}
        for j, template in enumerate(starts):
            if template is not None:
                out.append(template.with_properties(material_id=mid, sample_index=j,
                                                    template_rank=ranks[id(template)]))
    return out
