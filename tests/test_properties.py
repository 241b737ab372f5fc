"""xtalgen.properties: the shipped predictor of wdist_prop (CHGNet formation energy), its resolver."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from test_representations_examples import EXAMPLES
from xtalgen.errors import XtalgenError
from xtalgen.properties import chgnet_formation_energy, resolve_property_fn


def test_chgnet_formation_energy_of_rocksalt_and_perovskite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XTALGEN_CACHE", str(tmp_path))
    crystals = [EXAMPLES["NaCl"](), EXAMPLES["SrTiO3"]()]
    e_form = chgnet_formation_energy(crystals, progress=False)
    assert len(list((tmp_path / "properties").glob("*.npy"))) == 1
    np.testing.assert_array_equal(chgnet_formation_energy(crystals, progress=False), e_form)
    # Materials Project: NaCl -2.1 eV/atom, SrTiO3 -3.5 eV/atom (GGA/GGA+U, MP2020)
    assert e_form.shape == (2,)
    assert -2.6 < e_form[0] < -1.6
    assert -4.0 < e_form[1] < -3.0


def test_resolve_property_fn() -> None:
    name, fn = resolve_property_fn("formation-energy-chgnet")
    assert name == "formation-energy-chgnet" and fn is chgnet_formation_energy
    name, fn = resolve_property_fn("numpy:asarray")
    assert name == "asarray" and fn is np.asarray
    with pytest.raises(XtalgenError, match="unknown property predictor"):
        resolve_property_fn("bandgap")
    with pytest.raises(XtalgenError, match="cannot import"):
        resolve_property_fn("no_such_module_xyz:f")
