"""Helpers shared by the CLI commands."""

from __future__ import annotations

from typing import Any

import yaml
from rich.console import Console

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


def platform(config: Settings | None = None) -> Platform:
    """The process's parts (use ``with platform() as p:``), from the environment's settings."""
    return Platform(config or settings())


def parse_assignments(pairs: list[str] | None, option: str = "--var") -> dict[str, Any]:
    """``["rating=4", "topic=cooking"]`` -> ``{"rating": 4, "topic": "cooking"}``."""
    values: dict[str, Any] = {}
    for pair in pairs or []:
        name, sep, raw = pair.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(f"{option} expects NAME=VALUE (got {pair!r})")
        try:
            parsed = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            parsed = raw
        values[name.strip()] = parsed if isinstance(parsed, int | float | bool) else raw
    return values
