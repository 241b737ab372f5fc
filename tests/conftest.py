"""Shared test fixtures: a few small, well-known crystals and the structure-file fixtures folder.

The crystals are session-scoped (a Crystal is immutable). Lattices in angstrom, rows = vectors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xtalgen.crystal import Crystal

FIXTURES = Path(__file__).parent / "fixtures"
"""Small structure files: ``good/`` (readable), ``bad/`` (one defect each), ``overlapping.cif``."""


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module's tests (tiny models: more threads only add overhead on
    the 2-core CI machine); ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def nacl() -> Crystal:
    """Rock salt NaCl, conventional cubic cell (Fm-3m, 225), a = 5.64 A, 8 sites."""
    na = [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]
    cl = [[0.5, 0.5, 0.5], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]]
    return Crystal(
        lattice=np.eye(3) * 5.64,
        frac_coords=na + cl,
        species=[11] * 4 + [17] * 4,
        properties={"material_id": "mp-22862", "formation_energy_per_atom": -2.11},
    )


@pytest.fixture(scope="session")
def si() -> Crystal:
    """Diamond Si, primitive fcc cell (Fd-3m, 227), a = 5.43 A, 2 sites; non-orthogonal lattice."""
    h = 5.43 / 2
    return Crystal(
        lattice=[[0, h, h], [h, 0, h], [h, h, 0]],
        frac_coords=[[0, 0, 0], [0.25, 0.25, 0.25]],
        species=[14, 14],
    )


@pytest.fixture(scope="session")
def cscl() -> Crystal:
    """CsCl (Pm-3m, 221), a = 4.12 A, 2 sites."""
    return Crystal(np.eye(3) * 4.12, [[0, 0, 0], [0.5, 0.5, 0.5]], [55, 17])


@pytest.fixture(scope="session")
def srtio3() -> Crystal:
    """Cubic perovskite SrTiO3 (Pm-3m, 221), a = 3.905 A, 5 sites (Sr, Ti, O, O, O)."""
    return Crystal(
        lattice=np.eye(3) * 3.905,
        frac_coords=[[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
        species=[38, 22, 8, 8, 8],
        properties={"band_gap": 1.8},
    )


@pytest.fixture(scope="session")
def disordered_alloy() -> Crystal:
    """fcc Cu3Au-like cell, a = 3.75 A, 4 sites; site 0 is disordered Cu 0.6 / Au 0.4."""
    return Crystal(
        lattice=np.eye(3) * 3.75,
        frac_coords=[[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
        species=[29, 29, 29, 29],
        site_occupancies=[((29, 0.6), (79, 0.4)), None, None, None],
    )


@pytest.fixture(scope="session")
def ordered_crystals(nacl: Crystal, si: Crystal, cscl: Crystal, srtio3: Crystal) -> list[Crystal]:
    """The four ordered fixtures: NaCl, Si, CsCl, SrTiO3."""
    return [nacl, si, cscl, srtio3]
