"""Errors that the CLI reports as one line, without a traceback."""

from __future__ import annotations


class XtalgenError(Exception):
    """A user-facing error: bad input, a missing file or checkpoint, an unknown dataset.

    The message is complete on its own; the CLI prints ``error: <message>`` and exits 1.
    """
