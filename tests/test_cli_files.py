"""``xtalgen convert``: summaries, one ``error:`` line per bad file, exit status, no traceback."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from xtalgen import io
from xtalgen.cli.main import main

BAD = sorted(p.name for p in (Path(__file__).parent / "fixtures" / "bad").iterdir())
"""One defect per file; test_io.py checks each reason through the Python API."""


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xtalgen.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_convert_folder_of_bad_files(fixtures_dir: Path, tmp_path: Path) -> None:
    result = run_cli("convert", fixtures_dir / "bad", tmp_path / "out")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = error_lines(result.stderr)
    assert len(errors) == len(BAD) == 9
    for name in BAD:
        (line,) = [e for e in errors if e.startswith(f"error: {fixtures_dir / 'bad' / name}: ")]
        assert len(line) > len(f"error: {fixtures_dir / 'bad' / name}: ") + 5  # has a reason
    assert "failed: 9 file(s)" in result.stdout


def test_convert_mixed_folder_writes_the_good_ones(fixtures_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    shutil.copytree(fixtures_dir / "good", folder)
    shutil.copy(fixtures_dir / "bad" / "unknown_element.cif", folder)
    shutil.copy(fixtures_dir / "overlapping.cif", folder)
    out = tmp_path / "all.extxyz"
    result = run_cli("convert", folder, out)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    (error,) = error_lines(result.stderr)
    assert "unknown_element.cif: " in error and "'Qx'" in error
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "overlapping.cif" in warnings[0]
    n_good = 10  # 9 in good/ + the overlapping one, still read
    assert f"converted {n_good} structure(s) from 7 of 8 file(s)" in result.stdout
    with pytest.warns(io.OverlappingSitesWarning):
        back = io.read(out)
    assert len(back) == n_good
    assert back[0].properties["source"] == "all.extxyz#0"


def test_convert_good_file_to_folder(fixtures_dir: Path, tmp_path: Path) -> None:
    result = run_cli("convert", fixtures_dir / "good" / "structures.json", tmp_path / "out",
                     "--to", "poscar")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0000_CsCl.vasp",
                                                                    "0001_SrTiO3.vasp"]
    assert error_lines(result.stderr) == []


def test_convert_missing_input(tmp_path: Path) -> None:
    result = run_cli("convert", tmp_path / "absent.cif", tmp_path / "out.json")
    assert result.returncode == 1
    expected = f"error: {tmp_path / 'absent.cif'}: no such file or folder"
    assert error_lines(result.stderr) == [expected]
    assert "Traceback" not in result.stderr


# in-process runs (fast): each bad-input case through the command, one error line each
@pytest.mark.parametrize("name", BAD)
def test_convert_each_bad_file(
    name: str, fixtures_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["convert", str(fixtures_dir / "bad" / name), str(tmp_path / "out.cif")])
    assert info.value.code == 1
    err = capsys.readouterr().err
    (line,) = error_lines(err)
    assert line.startswith(f"error: {fixtures_dir / 'bad' / name}: ")
    assert str(io.read_many(fixtures_dir / "bad" / name).errors[0][1]) in line  # same reason
    assert "Traceback" not in err
    assert not (tmp_path / "out.cif").exists()


def test_convert_output_error_is_one_line(
    fixtures_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as info:  # two structures do not fit one POSCAR
        main(["convert", str(fixtures_dir / "good" / "frames.extxyz"), str(tmp_path / "POSCAR")])
    assert info.value.code == 1
    (line,) = error_lines(capsys.readouterr().err)
    assert "POSCAR: a POSCAR holds one structure, got 2" in line
