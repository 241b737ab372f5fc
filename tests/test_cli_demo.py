"""``xtalgen demo`` runs end to end from bundled files and prints the CSP table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_demo_runs_on_bundled_data(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "xtalgen.cli.main", "demo", "--n-targets", "4", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "match rate" in result.stdout
    assert "perov5-csp-flow" in result.stdout and "substitution" in result.stdout
    metrics = json.loads((tmp_path / "substitution" / "metrics.json").read_text())
    assert 0.0 <= metrics["metrics"]["match_rate@1"]["value"] <= 1.0
    assert (tmp_path / "perov5-csp-flow" / "samples.extxyz").stat().st_size > 0
