"""``xtalgen symmetry``: report per structure, tolerance option, one-line error for a bad file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from test_representations_examples import random_pyxtal
from xtalgen import io as xio

FIXTURES = Path(__file__).parent / "fixtures"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xtalgen.cli.main", "symmetry", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_symmetry_report(tmp_path) -> None:
    path = tmp_path / "two.json"
    distorted = random_pyxtal()
    frac = distorted.frac_coords.copy()
    frac[0, 0] += 0.04 / distorted.lattice_parameters[0]  # below 0.1 A, above 0.01 A
    xio.write(
        [
            xio.read(FIXTURES / "good" / "nacl_symmetrized.cif")[0],
            distorted.replace(frac_coords=frac),
        ],
        path,
    )
    result = run_cli(str(path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "NaCl" in out and "Fm-3m (225), cubic" in out
    assert "225 | Na 4a | Cl 4b" in out
    assert "m-3m" in out  # site symmetry column
    assert "MgSiO3" in out and "Pnma (62), orthorhombic" in out
    assert "62 | O 4c | O 8d | Mg 4b | Si 4a" in out
    # a tighter tolerance sees the distortion
    tight = run_cli(str(path), "--symprec", "0.01", "--angle-tolerance", "1")
    assert tight.returncode == 0, tight.stderr
    assert "Pnma (62)" not in tight.stdout and "Fm-3m (225)" in tight.stdout


def test_disordered_structure_has_no_wyckoff_table() -> None:
    result = run_cli(str(FIXTURES / "good" / "alloy_disordered.cif"))
    assert result.returncode == 0, result.stderr
    assert "not available: site 3 (Cu:0.6 Au:0.4) is partially occupied" in result.stdout


def test_bad_file_is_one_error_line() -> None:
    result = run_cli(str(FIXTURES / "bad" / "malformed.cif"))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "malformed.cif" in lines[0]
    missing = run_cli("no/such/file.cif")
    assert missing.returncode == 1 and missing.stderr.startswith("error: ")
