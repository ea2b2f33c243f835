"""Helpers shared by the CLI commands."""

from __future__ import annotations

from typing import Any

import yaml
from rich.console import Console

from textnlp import strict_json
from textnlp.bootstrap import Platform
from textnlp.config import Settings, load_settings
from textnlp.errors import InvalidInput

console = Console()
err_console = Console(stderr=True)


def print_yaml(definition: Any) -> None:
    """A definition as YAML: highlighted on a terminal, plain and whole when piped (rich would
    cut its long lines at 80 columns)."""
    text = yaml.safe_dump(definition, sort_keys=False, allow_unicode=True)
    if console.is_terminal:
        from rich.syntax import Syntax

        console.print(Syntax(text, "yaml", word_wrap=True))
    else:
        print(text, end="")


def settings() -> Settings:
    return load_settings()


def service_settings() -> Settings:
    """The settings of a command the deployment runs as a task (``serve``, ``worker``,
    ``db upgrade``, ``jobs purge``), with the one log format installed: their stderr is the
    task's log (CloudWatch), where a library's warning must be a redacted JSON line too."""
    from textnlp.observability.logging import configure_logging

    config = load_settings()
    configure_logging(config.log_level, json_lines=config.observability.json_logs)
    return config


def platform(config: Settings | None = None) -> Platform:
    """The process's parts (use ``with platform() as p:``), from the environment's settings."""
    return Platform(config or settings())


def dollars(value: float | None) -> float | None:
    """A spending cap's option: 0 or more US dollars (``inf``: no cap); NaN is no amount."""
    import typer

    if value is not None and not value >= 0:  # NaN fails every comparison
        raise typer.BadParameter(f"must be 0 or more US dollars, got {value}")
    return value


def parse_assignments(pairs: list[str] | None, option: str = "--var") -> dict[str, Any]:
    """``["rating=4", "topic=cooking"]`` -> ``{"rating": 4, "topic": "cooking"}``.

    A value is JSON when it parses as JSON (``5``, ``-2.5``, ``true``, ``null``, ``"quoted"``,
    lists, objects), else the literal string: not YAML, whose 1.1 rules read ``no`` as false,
    ``0x10`` as 16 and ``1_000`` as 1000. ``NaN``, ``Infinity`` and numbers too large for a
    float stay strings. An empty value is refused (it would render as nothing).
    """
    values: dict[str, Any] = {}
    for pair in pairs or []:
        name, sep, raw = pair.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(f"{option} expects NAME=VALUE (got {pair!r})")
        if not raw.strip():
            raise InvalidInput(f"{option} {name.strip()}: empty value")
        values[name.strip()] = _json_or_text(raw)
    return values


def _json_or_text(raw: str) -> Any:
    try:
        return strict_json.loads(raw)
    except ValueError:  # json.JSONDecodeError is one
        return raw
