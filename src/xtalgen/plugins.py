"""Import user-supplied callables named ``"package.module:function"`` (potentials, predictors)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from xtalgen.errors import XtalgenError

__all__ = ["import_callable"]


def import_callable(path: str, kind: str) -> Callable[..., Any]:
    """The callable at ``"package.module:function"``; one clear ``XtalgenError`` otherwise.

    ``kind`` names what is imported in the error message (e.g. ``"potential factory"``).
    """
    module_name, _, attr = path.partition(":")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise XtalgenError(f"cannot import {kind} {path!r}: {exc}") from None
    if not callable(obj):
        raise XtalgenError(f"{kind} {path!r} is not callable")
    return obj
