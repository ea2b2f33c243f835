"""The ``textnlp`` entry point: builds the Typer app and maps errors to exit codes.

Exit codes: 0 success, 1 a failed check (e.g. a validation gate) or an internal failure,
2 bad input (one line on stderr, no traceback), 130 interrupted.
"""

from __future__ import annotations

import sys

import typer

from textnlp.cli import catalogue, generate
from textnlp.errors import TextNLPError

app = typer.Typer(
    name="textnlp",
    help="Generate, validate and serve synthetic text datasets with language models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
generate.register(app)
catalogue.register(app)


def _register_optional(module: str) -> None:
    """Commands whose module may be absent in a trimmed install."""
    import importlib

    try:
        importlib.import_module(f"textnlp.cli.{module}").register(app)
    except ModuleNotFoundError as exc:
        if exc.name != f"textnlp.cli.{module}":
            raise


for _module in ("validate", "serve", "users", "worker", "jobs", "db"):
    _register_optional(_module)


def run() -> None:
    """Console-script entry point."""
    try:
        # Without standalone mode Typer returns the code of a typer.Exit (130 after Ctrl-C).
        code = app(standalone_mode=False)
    except TextNLPError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        sys.exit(2 if exc.user_error else 1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except typer.exceptions.TyperException as exc:  # usage errors: bad option values...
        print(f"error: {exc.format_message()}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    run()
