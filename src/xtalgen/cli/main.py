"""Entry point of the ``xtalgen`` command.

Each command group lives in its own module of this package and is registered here. Errors
meant for the user (:class:`xtalgen.XtalgenError`) are printed as one line, without a traceback.
"""

from __future__ import annotations

import sys

import typer

from xtalgen.errors import XtalgenError

app = typer.Typer(
    name="xtalgen",
    help="Generative modelling of crystals: data, representations, generators, metrics, screening.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """xtalgen: crystal data, representations, generators, metrics and screening.

    Run ``xtalgen COMMAND --help`` for the options of each command.
    """


COMMAND_MODULES: tuple[str, ...] = (
    "demo", "data", "files", "train", "sample", "screen", "symmetry", "evaluate", "search",
    "defects", "benchmark", "xrd", "gflownet", "predict", "optimize",
)
"""Modules of ``xtalgen.cli`` that each define ``register(app)``; one line per command group."""


def _register() -> None:
    """Attach every command module to ``app``. Heavy imports stay inside the command bodies."""
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(f"xtalgen.cli.{name}").register(app)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; user errors become ``error: ...`` on stderr and exit status 1."""
    _register()
    try:
        # Without standalone mode click returns (not raises) the code of ``typer.Exit``.
        exit_code = app(args=argv, standalone_mode=False)
    except XtalgenError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        # Usage errors (unknown command, bad option) carry their own formatting; typer ships
        # its own copy of click, so they are recognised by shape rather than by class.
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    if isinstance(exit_code, int) and exit_code:
        sys.exit(exit_code)


if __name__ == "__main__":
    main()
