"""``xtalgen demo`` runs end to end from bundled files and prints the multi-family table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_runs_on_bundled_data(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "xtalgen.cli.main", "demo", "--n-targets", "3", "--k", "2",
         "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "match@1" in out and "match@2" in out
    for name in ("substitution", "random-search", "perov5-csp-flow", "perov5-csp-diffusion"):
        assert f"| {name} |" in out, name
    assert "wyckoff" in out and "evolution" not in out.split("generators:")[1].splitlines()[0]
    assert (tmp_path / "table.csv").is_file() and (tmp_path / "match_vs_k.png").is_file()
    assert " failed: " not in result.stderr  # no generator failed (spglib notes aside)
