"""A powder diffraction pattern (2-theta in degrees, intensity) and the two-column text reader.

Fields of :class:`Pattern`: ``two_theta`` (degrees, ascending), ``intensity`` (arbitrary
units), ``wavelength`` (angstrom; default Cu K-alpha, 1.54184, pymatgen's ``"CuKa"``).

The reader accepts whitespace-, comma- or semicolon-separated text: ``#`` starts a comment, one
header line (e.g. ``2theta,intensity``) may come before the data, and only the first two
columns are used (a third one, say an error estimate, is ignored). Every problem is one line
naming the file: a :class:`PatternError`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xtalgen.errors import XtalgenError

__all__ = ["CU_KALPHA", "WAVELENGTHS", "Pattern", "PatternError", "read_pattern",
           "resolve_wavelength", "write_pattern"]

CU_KALPHA = 1.54184
"""Cu K-alpha wavelength in angstrom (weighted K-alpha1/K-alpha2, pymatgen's ``"CuKa"``)."""

WAVELENGTHS: dict[str, float] = {
    "CuKa": 1.54184, "CuKa1": 1.54056, "CuKa2": 1.54439, "CuKb1": 1.39222,
    "MoKa": 0.71073, "MoKa1": 0.7093, "MoKa2": 0.71359, "MoKb1": 0.63229,
    "CrKa": 2.291, "CrKa1": 2.2897, "CrKa2": 2.29361, "CrKb1": 2.08487,
    "FeKa": 1.93735, "FeKa1": 1.93604, "FeKa2": 1.93998, "FeKb1": 1.75661,
    "CoKa": 1.79026, "CoKa1": 1.78896, "CoKa2": 1.79285, "CoKb1": 1.63079,
    "AgKa": 0.560885, "AgKa1": 0.559421, "AgKa2": 0.563813, "AgKb1": 0.497082,
}
"""X-ray tube lines (angstrom), the names and values of pymatgen's ``XRDCalculator``."""

_SEPARATORS = re.compile(r"[\s,;]+")


class PatternError(XtalgenError, ValueError):
    """A pattern file or value that cannot be used (the message is one line)."""


@dataclass(frozen=True, eq=False)
class Pattern:
    """A powder pattern: ``two_theta`` (degrees, ascending), ``intensity`` (arbitrary units),
    ``wavelength`` (angstrom). ``source`` names where it came from (file, crystal)."""

    two_theta: np.ndarray
    intensity: np.ndarray
    wavelength: float = CU_KALPHA
    source: str = ""

    def __post_init__(self) -> None:
        x = np.asarray(self.two_theta, dtype=np.float64).reshape(-1)
        y = np.asarray(self.intensity, dtype=np.float64).reshape(-1)
        where = f"{self.source}: " if self.source else ""
        if len(x) != len(y):
            raise PatternError(f"{where}{len(x)} angles for {len(y)} intensities")
        if len(x) < 2:
            raise PatternError(f"{where}a pattern needs at least two points, got {len(x)}")
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            raise PatternError(f"{where}the pattern holds NaN or infinite values")
        if x.min() < 0 or x.max() > 180:
            bad = x.min() if x.min() < 0 else x.max()
            raise PatternError(f"{where}2-theta must lie in 0-180 degrees, found {bad:g}")
        if not self.wavelength > 0:
            raise PatternError(f"{where}the wavelength must be positive, got {self.wavelength}")
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
        x.setflags(write=False)
        y.setflags(write=False)
        object.__setattr__(self, "two_theta", x)
        object.__setattr__(self, "intensity", y)
        object.__setattr__(self, "wavelength", float(self.wavelength))

    @property
    def range(self) -> tuple[float, float]:
        """Smallest and largest 2-theta, degrees."""
        return float(self.two_theta[0]), float(self.two_theta[-1])

    def __len__(self) -> int:
        return len(self.two_theta)


def resolve_wavelength(value: str | float | None) -> float:
    """Angstrom from a tube-line name (``"CuKa"``, case-insensitive) or a number (angstrom)."""
    if value is None:
        return CU_KALPHA
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        text = str(value).strip()
        for name, wavelength in WAVELENGTHS.items():
            if name.lower() == text.lower():
                return wavelength
        try:
            number = float(text)
        except ValueError:
            known = ", ".join(WAVELENGTHS)
            raise PatternError(
                f"unknown wavelength {text!r}: give angstrom (e.g. 1.5406) or one of {known}"
            ) from None
    if not (math.isfinite(number) and 0 < number < 10):
        raise PatternError(f"a wavelength must be a positive number of angstrom, got {value!r}")
    return number


def read_pattern(path: str | Path, wavelength: str | float | None = None) -> Pattern:
    """The two-column pattern (2-theta degrees, intensity) in text file ``path``.

    ``wavelength``: angstrom or a tube-line name (default Cu K-alpha). Raises
    :class:`PatternError` (one line, naming the file) for a missing or empty file, a single
    column, a non-numeric row after the first, and angles outside 0-180 degrees.
    """
    path = Path(path)
    if not path.is_file():
        raise PatternError(f"{path}: no such pattern file")
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise PatternError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    rows: list[tuple[float, float]] = []
    first = True
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = [f for f in _SEPARATORS.split(line) if f]
        if first and not _is_number(fields[0]):  # a header line such as "2theta intensity"
            first = False
            continue
        if len(fields) < 2:
            raise PatternError(
                f"{path}: line {number} has one column ({line[:40]!r}); a pattern needs two "
                "columns, 2-theta (degrees) and intensity"
            )
        try:
            x, y = float(fields[0]), float(fields[1])
        except ValueError:
            raise PatternError(f"{path}: line {number} is not two numbers: {line[:40]!r}") from None
        first = False
        if not (math.isfinite(x) and math.isfinite(y)):
            raise PatternError(f"{path}: line {number} holds NaN or infinite values")
        if not 0 <= x <= 180:
            raise PatternError(
                f"{path}: line {number}: 2-theta {x:g} is outside 0-180 degrees"
                + (" (negative angle)" if x < 0 else "")
            )
        rows.append((x, y))
    if not rows:
        raise PatternError(f"{path}: empty pattern file (no rows of 2-theta and intensity)")
    if len(rows) < 2:
        raise PatternError(f"{path}: a pattern needs at least two rows, got one")
    data = np.array(rows)
    return Pattern(data[:, 0], data[:, 1], resolve_wavelength(wavelength), source=str(path))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def write_pattern(pattern: Pattern, path: str | Path) -> Path:
    """Write ``pattern`` as two-column text (``# 2theta_deg intensity``, wavelength in a
    comment) that :func:`read_pattern` reads back."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# wavelength_angstrom {pattern.wavelength:.6g}", "# 2theta_deg intensity"]
    lines += [f"{x:.4f} {y:.6g}" for x, y in zip(pattern.two_theta, pattern.intensity)]
    path.write_text("\n".join(lines) + "\n")
    return path
