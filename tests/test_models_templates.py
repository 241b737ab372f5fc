"""Template seeding of CSP samples: which template each sample starts from, and the sampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xtalgen.checkpoints import shipped_checkpoint
from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.models import load_model
from xtalgen.models.iterative.templates import assign_templates, reduced_counts

SR, TI, OX = 38, 22, 8


def perovskite(a: float = 3.9, label: str = "") -> Crystal:
    """Cubic SrTiO3, 5 sites."""
    frac = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    return Crystal(np.eye(3) * a, frac, [SR, TI, OX, OX, OX], properties={"material_id": label})


def doubled(a: float = 3.9) -> Crystal:
    """The same perovskite as a 1x1x2 supercell (10 sites, two formula units)."""
    base = perovskite(a)
    frac = np.concatenate([base.frac_coords * [1, 1, 0.5], base.frac_coords * [1, 1, 0.5] + [0, 0, 0.5]])
    return Crystal(np.diag([a, a, 2 * a]), frac, list(base.species) * 2, properties={"material_id": "x2"})


def other_formula() -> Crystal:
    return Crystal(np.eye(3) * 4.0, [[0, 0, 0], [0.5, 0.5, 0.5]], [SR, OX], properties={"material_id": "SrO"})


def test_reduced_counts() -> None:
    assert reduced_counts([SR, TI, OX, OX, OX]) == reduced_counts(list(doubled().species))
    assert reduced_counts([8, 8, 22]) == ((8, 2), (22, 1))
    assert reduced_counts([SR, OX]) != reduced_counts([SR, TI, OX, OX, OX])


def test_templates_used_once_each_in_retrieval_order() -> None:
    target = perovskite(label="t")
    a, b, c = perovskite(4.0, "a"), doubled(), perovskite(4.1, "c")
    plan = assign_templates([target], [[a, other_formula(), b, c]], 5)[0]
    # the wrong formula is skipped; the target's cell size first, then the doubled cell;
    # leftovers start from noise
    assert plan == [a, c, b, None, None]
    any_cell = assign_templates([target], [[a, other_formula(), b, c]], 5, cells="any")[0]
    assert any_cell == [a, b, c, None, None]
    cycled = assign_templates([target], [[a, b]], 5, fill="cycle")[0]
    assert cycled == [a, b, a, b, a]
    same_cell = assign_templates([target], [[a, b, c]], 3, cells="target")[0]
    assert same_cell == [a, c, None]


def test_mixed_plans() -> None:
    target = perovskite(label="t")
    a, c = perovskite(4.0, "a"), perovskite(4.1, "c")
    assert assign_templates([target], [[a, c]], 4, n_templated=2)[0] == [a, c, None, None]
    assert assign_templates([target], [[a, c]], 4, n_templated=2, templates_first=False)[0] == [
        None, None, a, c]
    assert assign_templates([target], [[a, c]], 2, n_templated=0)[0] == [None, None]
    with pytest.raises(XtalgenError, match="template lists"):
        assign_templates([target], [], 2)
    with pytest.raises(XtalgenError, match="fill"):
        assign_templates([target], [[a]], 2, fill="nope")


@pytest.fixture(scope="module")
def generator():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield load_model(shipped_checkpoint("perov5-csp-flow"), n_steps=2)
    torch.set_num_threads(previous)


def test_sample_csp_starts_each_sample_from_its_template(generator) -> None:
    target = perovskite(label="t")
    tpl = [perovskite(4.0, "a"), doubled(4.2)]
    out = generator.sample_csp([target], k=3, templates=[tpl], noise_level=0.02, seed=0)
    assert [c.properties["sample_index"] for c in out] == [0, 1, 2]
    assert [c.num_sites for c in out] == [5, 10, 5]  # the doubled template keeps its cell
    assert [c.properties.get("template_rank") for c in out] == [0, 1, None]
    assert "template_noise" not in out[2].properties  # no third template: from noise
    # at noise 0.02 two Euler steps barely move the templates' cells
    assert abs(out[0].volume - 4.0**3) / 4.0**3 < 0.15
    assert abs(out[1].volume - 2 * 4.2**3) / (2 * 4.2**3) < 0.15
    assert all(c.formula == "SrTiO3" for c in out)


def test_sample_csp_template_free_first(generator) -> None:
    target = perovskite(label="t")
    out = generator.sample_csp([target], k=2, templates=[[perovskite(4.0, "a")]],
                               noise_level=0.1, n_templated=1, templates_first=False)
    assert "template_noise" not in out[0].properties
    assert out[1].properties["template_rank"] == 0


def test_sample_csp_reused_templates_get_their_own_noise(generator) -> None:
    target = perovskite(label="t")
    out = generator.sample_csp([target], k=3, templates=[[perovskite(4.0, "a")]], noise_level=0.02,
                               template_fill="cycle", reuse_noise_level=0.5)
    assert [c.properties["template_noise"] for c in out] == [0.02, 0.5, 0.5]
    assert [c.properties["template_rank"] for c in out] == [0, 0, 0]
    assert abs(out[0].volume - 4.0**3) / 4.0**3 < 0.15
