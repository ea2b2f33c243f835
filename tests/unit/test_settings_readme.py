"""The README's settings table against ``Settings``: each variable it names is a setting, and
each default it states is the one ``Settings`` has (an audit found ``none`` given for the
database's port, name and sslmode and the cache's port: 5432, textnlp, prefer, 6379)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from textnlp.config import Settings, env_name

README = Path(__file__).parents[2] / "README.md"
#: Defaults the table describes in words rather than as a value.
DESCRIBED = {
    "TEXTNLP_HOME",  # `./.textnlp`
    "TEXTNLP_DATABASE__URL",  # SQLite in TEXTNLP_HOME
    "TEXTNLP_MODELS__PRICES",  # Bedrock models, gpt-4o-mini
    "TEXTNLP_AUTH__SESSION_STORE",  # by profile
    "TEXTNLP_AUTH__SESSION_TABLE",  # by environment
}


def table_rows() -> list[tuple[list[str], str]]:
    """``(variables, default cell)`` of each row of the table under ``| variable | default |``;
    ``TEXTNLP_X__A, __B`` is ``TEXTNLP_X__A, TEXTNLP_X__B``."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index("| variable | default | meaning |") + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        names_cell, default_cell = line.split(" | ")[:2]
        names = re.findall(r"`([A-Z_]+)`", names_cell)
        prefix = names[0].rsplit("__", 1)[0]
        rows.append(([names[0], *(prefix + n for n in names[1:])], default_cell))
    return rows


def split_defaults(cell: str, count: int) -> list[str]:
    """One shown default per variable: a cell of ``count`` comma-separated values, else one
    value for all; backquotes and a trailing explanation in brackets dropped."""
    values = [v.strip() for v in cell.split(", ")] if cell.count(", ") == count - 1 else [cell]
    values = values if len(values) == count else [cell] * count
    return [re.sub(r"\s*\(.*\)$", "", v).replace("`", "").strip() for v in values]


def default_of(variable: str) -> Any:
    path = variable.removeprefix("TEXTNLP_").lower().split("__")
    assert env_name(*path) == variable  # a variable of the schema
    value: Any = Settings.model_fields[path[0]].get_default(call_default_factory=True)
    for part in path[1:]:
        assert isinstance(value, BaseModel)
        value = getattr(value, part)
    return value


def shown(value: Any) -> str:
    """A default as the table writes it."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if value is None or value == "":
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def test_every_default_in_the_readme_is_the_settings_default() -> None:
    checked, wrong = [], []
    for names, cell in table_rows():
        for name, stated in zip(names, split_defaults(cell, len(names)), strict=True):
            actual = default_of(name)
            if name in DESCRIBED:
                continue
            checked.append(name)
            if stated != shown(actual):
                wrong.append(f"{name}: README says {stated!r}, Settings has {shown(actual)!r}")
    assert wrong == []
    assert {"TEXTNLP_DATABASE__PORT", "TEXTNLP_CACHE__PORT", "TEXTNLP_LOG_LEVEL"} <= set(checked)
