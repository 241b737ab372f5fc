"""Powder diffraction: reading patterns, simulation, the WCC similarity, ranking, the pipeline
and ``xtalgen xrd-match``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import typer
from pymatgen.core import Lattice, Structure
from typer.testing import CliRunner

from xtalgen.crystal import Crystal
from xtalgen.diffraction import (
    CU_KALPHA,
    Pattern,
    prepare_reference,
    read_pattern,
    resolve_wavelength,
    score_crystal,
    similarity,
    simulate_pattern,
    synthetic_measurement,
    weighted_cross_correlation,
    write_pattern,
)
from xtalgen.errors import XtalgenError


def _crystal(group: str, a: float, coords: list[list[float]]) -> Crystal:
    structure = Structure.from_spacegroup(group, Lattice.cubic(a), ["Na", "Cl"], coords)
    return Crystal.from_pymatgen(structure)


@pytest.fixture(scope="module")
def polymorphs() -> dict[str, Crystal]:
    """NaCl as rocksalt, CsCl type and zincblende."""
    return {
        "rocksalt": _crystal("Fm-3m", 5.64, [[0, 0, 0], [0.5, 0.5, 0.5]]),
        "cscl": _crystal("Pm-3m", 3.40, [[0, 0, 0], [0.5, 0.5, 0.5]]),
        "zincblende": _crystal("F-43m", 6.00, [[0, 0, 0], [0.25, 0.25, 0.25]]),
    }


# -- reading -------------------------------------------------------------------------------

def test_read_accepts_comments_header_and_commas(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("# measured\n2theta,intensity\n10.0, 1\n10.02,5 # peak\n\n10.04,2,0.1\n")
    pattern = read_pattern(path)
    assert np.allclose(pattern.two_theta, [10.0, 10.02, 10.04])
    assert np.allclose(pattern.intensity, [1, 5, 2])
    assert pattern.wavelength == CU_KALPHA
    assert read_pattern(path, "MoKa").wavelength == pytest.approx(0.71073)


@pytest.mark.parametrize(("text", "words"), [
    ("", "empty"),
    ("# only a comment\n2theta intensity\n", "empty"),
    ("10.0\n10.1\n", "one column"),
    ("10 1\n11 x\n", "not two numbers"),
    ("-5 1\n10 2\n", "negative"),
    ("10 1\n190 2\n", "outside 0-180"),
])
def test_bad_pattern_files_are_one_line_errors(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "bad.xy"
    path.write_text(text)
    with pytest.raises(XtalgenError) as info:
        read_pattern(path)
    message = str(info.value)
    assert words in message and str(path) in message and "\n" not in message


def test_missing_file_and_bad_wavelength(tmp_path: Path) -> None:
    with pytest.raises(XtalgenError, match="no such pattern file"):
        read_pattern(tmp_path / "nope.xy")
    assert resolve_wavelength("cuka1") == pytest.approx(1.54056)
    assert resolve_wavelength("1.2") == pytest.approx(1.2)
    with pytest.raises(XtalgenError, match="unknown wavelength"):
        resolve_wavelength("CuKz")


def test_write_and_read_back(tmp_path: Path, polymorphs) -> None:
    pattern = simulate_pattern(polymorphs["rocksalt"], (20, 60))
    back = read_pattern(write_pattern(pattern, tmp_path / "p.xy"))
    assert np.allclose(back.two_theta, pattern.two_theta)
    assert np.allclose(back.intensity, pattern.intensity, atol=1e-3)


# -- simulation and similarity -------------------------------------------------------------

def test_simulated_rocksalt_has_its_peaks(polymorphs) -> None:
    pattern = simulate_pattern(polymorphs["rocksalt"], (20, 60), fwhm=0.1)
    assert pattern.intensity.max() == pytest.approx(100)
    peak = pattern.two_theta[np.argmax(pattern.intensity)]
    assert peak == pytest.approx(31.7, abs=0.1)  # (200) of a = 5.64 A with Cu K-alpha


def test_similarity_is_one_for_identical_and_tolerates_shifts(polymorphs) -> None:
    pattern = simulate_pattern(polymorphs["rocksalt"])
    assert similarity(pattern, pattern) == pytest.approx(1.0)
    shifted = Pattern(pattern.two_theta + 0.1, pattern.intensity)
    other = simulate_pattern(polymorphs["zincblende"])
    assert similarity(pattern, shifted) > 0.9
    assert similarity(pattern, shifted) > similarity(pattern, other) + 0.5
    f = np.zeros(200)
    f[100] = 1.0
    g = np.roll(f, 3)
    assert weighted_cross_correlation(f, g, width=0.1) == pytest.approx(1 - 3 / 5)
    assert weighted_cross_correlation(f, np.zeros(200), width=0.1) == 0.0


def test_true_structure_ranks_first(polymorphs) -> None:
    """A noisy, shifted rocksalt pattern with two peaks removed picks rocksalt, even with a
    cell 3% too large; the decoys score lower."""
    measured = synthetic_measurement(polymorphs["rocksalt"], seed=3)
    reference = prepare_reference(measured)
    big = polymorphs["rocksalt"].replace(lattice=polymorphs["rocksalt"].lattice * 1.03)
    scores = {name: score_crystal(reference, c)[0].score for name, c in polymorphs.items()}
    fit, _ = score_crystal(reference, big)
    assert max(scores, key=scores.get) == "rocksalt"
    assert fit.score > max(scores["cscl"], scores["zincblende"])
    assert fit.scale == pytest.approx(1 / 1.03, abs=0.005)


def test_synthetic_measurement_is_seeded(polymorphs) -> None:
    a = synthetic_measurement(polymorphs["cscl"], seed=1)
    b = synthetic_measurement(polymorphs["cscl"], seed=1)
    c = synthetic_measurement(polymorphs["cscl"], seed=2)
    assert np.array_equal(a.intensity, b.intensity)
    assert not np.array_equal(a.intensity, c.intensity)
    assert "2 peaks removed" in a.source


# -- pipeline and CLI ----------------------------------------------------------------------

def test_pipeline_ranks_substitution_candidates(tmp_path: Path, polymorphs) -> None:
    from xtalgen.pipelines.xrd_match import XRDMatchConfig, write_results, xrd_match

    measured = synthetic_measurement(polymorphs["rocksalt"], seed=0)
    config = XRDMatchConfig(generators=("substitution", "no-such-generator"), n=4,
                            relax=False, top=2, progress=False)
    result = xrd_match(measured, "NaCl", config)
    assert result.failures and result.failures[0].startswith("no-such-generator:")
    assert result.n_generated["substitution"] >= 2
    scores = [c.score for c in result.ranked]
    assert scores == sorted(scores, reverse=True)
    best = result.top[0]
    assert best.score > 0.6 and "225" in best.spacegroup  # the rocksalt prototype
    written = write_results(result, measured, tmp_path / "out")
    assert len(written["cif"]) == len(result.top) == len(written["png"])
    assert (tmp_path / "out" / "ranking.csv").read_text().startswith("rank,top,score")


def test_pipeline_fails_when_every_generator_fails(polymorphs) -> None:
    from xtalgen.pipelines.xrd_match import XRDMatchConfig, xrd_match

    measured = simulate_pattern(polymorphs["rocksalt"])
    config = XRDMatchConfig(generators=("no-such-generator",), relax=False, progress=False)
    with pytest.raises(XtalgenError, match="no candidates for NaCl: no-such-generator"):
        xrd_match(measured, "NaCl", config)


def _app() -> typer.Typer:
    from xtalgen.cli.xrd import register

    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """test app"""

    register(app)
    return app


def test_cli_writes_cifs_and_plots(tmp_path: Path, polymorphs) -> None:
    pattern = write_pattern(synthetic_measurement(polymorphs["rocksalt"], seed=5),
                            tmp_path / "nacl.xy")
    out = tmp_path / "match"
    result = CliRunner().invoke(_app(), [
        "xrd-match", str(pattern), "--composition", "NaCl", "--generator", "substitution",
        "--n", "3", "--no-relax", "--top", "2", "--out", str(out), "--no-progress",
    ])
    assert result.exit_code == 0, result.output
    assert "best matches" in result.output and "NaCl" in result.output
    assert sorted(p.suffix for p in out.glob("rank01_*")) == [".cif", ".png"]
    assert (out / "ranking.json").exists()


def test_cli_help_and_one_line_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    help_text = runner.invoke(_app(), ["xrd-match", "--help"]).output
    assert "--composition" in help_text and "--generator" in help_text
    empty = tmp_path / "empty.xy"
    empty.write_text("")
    result = runner.invoke(_app(), ["xrd-match", str(empty), "--composition", "NaCl"])
    assert result.exit_code != 0
    assert isinstance(result.exception, XtalgenError)
    assert "empty pattern file" in str(result.exception)
