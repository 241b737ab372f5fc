"""``xtalgen search``: a composition a user types, a template file, budgets, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from xtalgen import io as xio
from xtalgen.cli.main import main
from xtalgen.crystal import Crystal


def test_search_substitution_from_a_template_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], nacl: Crystal, srtio3: Crystal
) -> None:
    pool = tmp_path / "pool.extxyz"
    xio.write([nacl, srtio3], pool)
    out = tmp_path / "out"
    main(["search", "substitution", "--composition", "BaZrO3", "--n", "1", "--no-relax",
          "--pool", str(pool), "--out", str(out)])
    printed = capsys.readouterr().out
    assert "BaZrO3" in printed and "Pm-3m" in printed and "0 potential calls" in printed
    (crystal,) = xio.read(out / "samples.extxyz")
    assert crystal.formula == "BaZrO3"
    assert crystal.properties["generator"] == "substitution"
    assert len(list((out / "cif").glob("*.cif"))) == 1


def test_search_substitution_naive_rule_and_cell_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], nacl: Crystal, cscl: Crystal
) -> None:
    pool = tmp_path / "pool.extxyz"
    xio.write([cscl, nacl], pool)
    common = ["search", "substitution", "--composition", "KBr", "--n", "1", "--no-relax",
              "--pool", str(pool)]
    main([*common, "--formula-units", "4", "--out", str(tmp_path / "z4")])
    assert xio.read(tmp_path / "z4" / "samples.extxyz")[0].num_sites == 8  # rock salt cell
    main([*common, "--ranking", "none", "--species-map", "electronegativity",
          "--out", str(tmp_path / "naive")])
    assert xio.read(tmp_path / "naive" / "samples.extxyz")[0].num_sites == 2  # first in pool
    capsys.readouterr()


def test_search_random_unrelaxed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["search", "random-search", "--composition", "NaCl", "--spacegroup", "225", "--n", "2",
          "--no-relax", "--seed", "1", "--out", str(tmp_path)])
    assert len(xio.read(tmp_path / "samples.extxyz")) == 2
    assert "Fm-3m" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["search", "annealing", "--composition", "NaCl"], "unknown search method"),
        (["search", "evolution"], "composition"),
        (["search", "random-search", "--composition", "NaCl", "--spacegroup", "300"], "1-230"),
    ],
)
def test_search_errors_are_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--no-relax", "--out", str(tmp_path)])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
