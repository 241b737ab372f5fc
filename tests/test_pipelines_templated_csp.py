"""Template-seeded CSP as one generator: retrieval, refinement by the model, relaxation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.calculators.emt import EMT

from xtalgen.checkpoints import shipped_checkpoint
from xtalgen.crystal import Crystal
from xtalgen.errors import XtalgenError
from xtalgen.models import load_model
from xtalgen.pipelines.templated_csp import TemplatedCSP, TemplatedCSPConfig, relax_samples
from xtalgen.relax.potential import Potential

BA, SR, CA, TI, ZR, OX = 56, 38, 20, 22, 40, 8
CUBIC = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]


def perovskite(a: int, b: int, lattice: float, label: str) -> Crystal:
    return Crystal(np.eye(3) * lattice, CUBIC, [a, b, OX, OX, OX], properties={"material_id": label})


def rocksalt(lattice: float = 4.2) -> Crystal:
    frac = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5],
            [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5], [0.5, 0.5, 0.5]]
    return Crystal(np.eye(3) * lattice, frac, [ZR] * 4 + [OX] * 4, properties={"material_id": "ZrO-rs"})


POOL = [perovskite(BA, ZR, 4.2, "BaZrO3"), perovskite(CA, TI, 3.8, "CaTiO3"), rocksalt()]


@pytest.fixture(scope="module")
def model():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield load_model(shipped_checkpoint("perov5-csp-flow"), n_steps=2)
    torch.set_num_threads(previous)


def test_generate_starts_from_retrieved_templates(model) -> None:
    csp = TemplatedCSP(model, pool=POOL, noise_level=0.02, reuse_noise_level=0.02)
    out = csp.generate(3, composition="SrTiO3", seed=0)
    assert len(out) == 3 and all(c.formula == "SrTiO3" for c in out)
    # two perovskite templates (the rock salt has another formula type), then reused
    assert [c.properties["template_rank"] for c in out] == [0, 1, 0]
    assert all(c.properties["generator"] == "templated-csp" for c in out)
    assert all(c.properties["composition"] == "SrTiO3" for c in out)
    # at noise 0.02 two Euler steps keep the substituted cubic cells (volume rescaled to Sr, Ti)
    lengths = np.array([c.lattice_parameters[:3] for c in out])
    assert np.allclose(lengths, lengths[:, :1], rtol=0.1)


def test_noise_zero_returns_the_substituted_templates(model) -> None:
    csp = TemplatedCSP(model, pool=POOL, noise_level=0.0)
    out = csp.generate(2, composition="SrTiO3")
    assert [c.properties["template_material_id"] for c in out] in (
        ["CaTiO3", "BaZrO3"], ["BaZrO3", "CaTiO3"])
    for c in out:
        assert np.allclose(c.frac_coords, CUBIC)


def test_no_template_of_the_formula_type_samples_from_noise(model) -> None:
    out = TemplatedCSP(model, pool=POOL, noise_level=0.02).generate(2, composition="SrTi2O5", seed=1)
    assert len(out) == 2 and all("template_rank" not in c.properties for c in out)
    assert all(c.formula == "SrTi2O5" for c in out)
    empty = TemplatedCSP(model, pool=[]).generate(1, composition="SrTiO3")
    assert "template_rank" not in empty[0].properties


def test_settings_are_checked(model) -> None:
    with pytest.raises(XtalgenError, match="noise_level"):
        TemplatedCSP(model, noise_level=1.5)
    with pytest.raises(XtalgenError, match="unknown templated-csp setting"):
        TemplatedCSP(model, nope=1)
    with pytest.raises(XtalgenError, match="template_fill"):
        TemplatedCSPConfig(template_fill="again")
    with pytest.raises(XtalgenError, match="composition"):
        TemplatedCSP(model, pool=POOL).generate(2)


def test_relax_samples_keeps_provenance_and_reports_steps() -> None:
    emt = Potential("emt", EMT())
    a = 3.9  # EMT copper relaxes to about 3.6 angstrom
    frac = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    cu = Crystal(np.eye(3) * a, frac, [29] * 4, properties={"material_id": "t", "sample_index": 3})
    (relaxed,) = relax_samples([cu], max_steps=200, fmax=0.01, potential=emt)
    assert relaxed.properties["relaxed"] is True
    assert relaxed.properties["sample_index"] == 3 and relaxed.properties["material_id"] == "t"
    assert 0 < relaxed.properties["relax_steps"] <= 200
    assert relaxed.properties["relax_converged"] is True
    assert relaxed.volume < cu.volume * 0.9
    (capped,) = relax_samples([cu], max_steps=1, fmax=0.001, potential=emt)
    assert capped.properties["relax_steps"] == 1 and capped.properties["relax_converged"] is False
    assert relax_samples([], potential=emt) == []


def _cli(capsys, *args: str) -> tuple[int, str]:
    from xtalgen.cli.main import main

    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def test_cli_sample_with_templates_from_a_cif_folder(tmp_path, capsys) -> None:
    from xtalgen import io as xio

    xio.write(POOL, tmp_path / "pool", fmt="cif")
    out = tmp_path / "samples"
    code, err = _cli(capsys, "sample", "perov5-csp-flow", "--n", "2", "--composition", "SrTiO3",
                     "--steps", "2", "--templates", str(tmp_path / "pool"), "--out", str(out))
    assert code == 0, err
    back = xio.read(out / "samples.extxyz")
    assert len(back) == 2 and all(c.formula == "SrTiO3" for c in back)
    assert back[0].properties["template_rank"] == 0
    code, err = _cli(capsys, "sample", "random-search", "--n", "1", "--composition", "SrTiO3",
                     "--templates", "mp20")
    assert code == 1 and err.startswith("error: ") and "CSP checkpoint" in err
    code, err = _cli(capsys, "sample", "perov5-csp-flow", "--n", "1", "--composition", "SrTiO3",
                     "--templates", str(tmp_path / "missing"))
    assert code == 1 and "unknown dataset" in err


def test_templated_samples_name_their_template(model) -> None:
    out = TemplatedCSP(model, pool=POOL, noise_level=0.02).generate(2, composition="SrTiO3")
    assert {c.properties["template_material_id"] for c in out} == {"BaZrO3", "CaTiO3"}
