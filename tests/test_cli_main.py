"""The CLI entry point: help text and one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xtalgen.cli.main", *args], capture_output=True, text=True, timeout=120
    )


def test_help_lists_commands() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert "demo" in result.stdout


def test_unknown_command_is_a_usage_error_without_traceback() -> None:
    result = run_cli("no-such-command")
    assert result.returncode == 2
    assert "No such command" in result.stderr
    assert "Traceback" not in result.stderr


def test_load_generator_resolves_names_and_reports_unknown_ones() -> None:
    import pytest

    from xtalgen import XtalgenError
    from xtalgen.models import load_generator

    model = load_generator("perov5-csp-flow")
    (crystal,) = model.generate(1, composition="SrTiO3", seed=0)
    assert crystal.formula == "SrTiO3"
    with pytest.raises(XtalgenError, match="random-search"):
        load_generator("no-such-generator")


def test_train_rejects_an_unknown_type_path(tmp_path) -> None:
    result = run_cli("train", "--dataset", "perov5", "--out", str(tmp_path / "run"),
                     "--model", "flow", "--task", "dng", "--type-path", "gaussian")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: --type-path must be one of")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--lr-schedule", "linear"], "error: --lr-schedule must be steps or time"),
    (["--lr-schedule", "time"], "error: --lr-schedule time needs --max-time"),
])
def test_train_rejects_a_bad_lr_schedule(tmp_path, args, message) -> None:
    result = run_cli("train", "--dataset", "perov5", "--out", str(tmp_path / "run"), *args)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(message)
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()
