"""The ``textnlp`` entry point: builds the Typer app and maps errors to exit codes.

Exit codes:

- 0 success;
- 1 a failed check (e.g. a validation gate), a model backend's failure, or an internal failure
  (a bug: the traceback is printed for the report);
- 2 the command cannot run as asked: bad input, settings or files, and a dependency it cannot
  reach (``ServiceUnavailable``: the database, cache or queue of the settings, the ``--api``
  server). An unreachable dependency is not bad input in the strict sense, but from the
  command line a mistyped ``TEXTNLP_DATABASE__URL`` or ``--api`` and a server that is down look
  the same, the fix is on the user's side either way (the URL, or starting the service), and
  the public contract gives errors one code; the message names the dependency;
- 130 interrupted.

A command whose packages are not installed (``textnlp serve`` after ``pip install
'textnlp[embedded]'``) is a ``MissingExtra`` naming the extra to install, so exit 2 too.

Every error of codes 1 (but a bug) and 2 is one line on stderr, ``error: ...``.
"""

from __future__ import annotations

import os
import signal
import sys
from importlib import metadata
from typing import NoReturn

import typer

from textnlp.cli import catalogue, db, generate, jobs, recipes, serve, users, validate, worker
from textnlp.errors import InvalidInput, OutputError, ServiceUnavailable, TextNLPError
from textnlp.extras import missing_extra
from textnlp.generation.writers import home_expanded

app = typer.Typer(
    name="textnlp",
    help="Generate, validate and serve synthetic text datasets with language models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
for _commands in (generate, catalogue, recipes, validate, serve, users, worker, jobs, db):
    _commands.register(app)


def _print_version(asked: bool) -> None:
    if asked:
        try:
            version = metadata.version("textnlp")
        except metadata.PackageNotFoundError:  # a source tree that was never installed
            from textnlp import __version__ as version
        print(f"textnlp {version}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
) -> None:
    # No docstring: the app's help stays the one given to typer.Typer above.
    pass


def exit_code(error: TextNLPError) -> int:
    return 2 if error.user_error or isinstance(error, ServiceUnavailable) else 1


def fail(error: TextNLPError) -> None:
    """One line on stderr (a message with line breaks is joined), then the error's exit code."""
    message = " ".join(line.strip() for line in error.message.splitlines() if line.strip())
    print(f"error: {message}", file=sys.stderr)
    sys.exit(exit_code(error))


def _first_error(group: BaseExceptionGroup[BaseException]) -> TextNLPError | None:
    for leaf in group.exceptions:
        found = _first_error(leaf) if isinstance(leaf, BaseExceptionGroup) else leaf
        if isinstance(found, TextNLPError):
            return found
    return None


def run() -> None:
    """Console-script entry point."""
    undecodable = _undecodable_argument(sys.argv[1:])
    if undecodable is not None:
        fail(undecodable)
    sys.argv[1:] = paths_home_expanded(sys.argv[1:])
    try:
        # Without standalone mode Typer returns the code of a typer.Exit (130 after Ctrl-C).
        code = app(standalone_mode=False)
    except TextNLPError as exc:
        fail(exc)
    except BaseExceptionGroup as group:  # errors of concurrent tasks
        found = _first_error(group)
        if found is None:
            raise
        fail(found)
    except typer.Exit as exc:
        _exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        _exit(130)
    except ModuleNotFoundError as exc:
        missing = missing_extra(exc)
        if missing is None:
            raise  # our own module missing is a bug: its traceback is the report
        fail(missing)
    except OSError as exc:  # a path of the user's (TEXTNLP_HOME, an output) cannot be used
        where = f" ({exc.filename})" if exc.filename else ""
        fail(OutputError(f"{exc.strerror or exc}{where}"))
    except typer.exceptions.TyperException as exc:  # usage errors: bad option values...
        # No message: ``textnlp`` or ``textnlp jobs`` alone (no_args_is_help), whose help rich
        # has printed already; exit 2 all the same, as Typer's own. (Its NoArgsIsHelpError
        # lives in Typer's private copy of click, hence the test on the message.)
        if message := exc.format_message():
            print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    _exit(code if isinstance(code, int) else 0)


#: The options that name a file (``-t`` and ``-r`` may: a template's or recipe's YAML).
PATH_OPTIONS = frozenset(
    [
        "-o",
        "--out",
        "--rejects",
        "-r",
        "--recipe",
        "-t",
        "--template",
        "--prompts-file",
        "--report",
        "--gate",
        "--reference",
    ]  # fmt: skip
)


def paths_home_expanded(arguments: list[str]) -> list[str]:
    """The arguments with ``~`` expanded in the values of ``PATH_OPTIONS``, as the library
    expands its paths: the shell expands ``-o ~/x`` but not ``--out=~/x`` (nor a quoted
    ``'~/x'``), which made a directory named ``~``."""
    expanded: list[str] = []
    value_next = False
    for index, argument in enumerate(arguments):
        if argument == "--":  # what follows is no option
            return expanded + arguments[index:]
        if value_next:
            argument = str(home_expanded(argument))
        elif argument.startswith("--") and "=" in argument:
            name, value = argument.split("=", 1)
            if name in PATH_OPTIONS:
                argument = f"{name}={home_expanded(value)}"
        elif not argument.startswith("--") and argument[:2] in PATH_OPTIONS and argument[2:]:
            argument = f"{argument[:2]}{home_expanded(argument[2:])}"  # -o~/x
        value_next = not value_next and argument in PATH_OPTIONS
        expanded.append(argument)
    return expanded


def _undecodable_argument(arguments: list[str]) -> InvalidInput | None:
    """An argument that is not UTF-8 (Python keeps its bytes as lone surrogates, which every
    encoder after it refuses: a tokeniser, a cache key, a JSON file), refused before any work."""
    from textnlp.services.text_boundary import valid_unicode

    for argument in arguments:
        if not valid_unicode(argument):
            shown = os.fsencode(argument).decode("utf-8", "backslashreplace")  # its bytes: \xff
            return InvalidInput(f"argument '{shown[:200]}' is not valid UTF-8")
    return None


def _exit(code: int) -> NoReturn:
    if code == 130:  # interrupted, and stopping: another Ctrl-C would only kill the teardown
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)


if __name__ == "__main__":
    run()
