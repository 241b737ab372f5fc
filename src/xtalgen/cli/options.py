"""Parsers of option values that several commands share."""

from __future__ import annotations


def parse_supercell(text: str | None, option: str = "--supercell") -> tuple[int, int, int] | None:
    """``"2x2x1"`` -> (2, 2, 1); None or ``"auto"`` -> None; anything else: one-line error."""
    from xtalgen.errors import XtalgenError

    if text is None or text.strip().lower() == "auto":
        return None
    try:
        cell = tuple(int(x) for x in text.lower().split("x"))
    except ValueError:
        cell = ()
    if len(cell) != 3 or min(cell) < 1:
        raise XtalgenError(
            f"{option} looks like 2x2x2 (three positive integers) or auto, got {text!r}"
        )
    return cell  # type: ignore[return-value]
