"""``--var``/``--param`` values (``textnlp.cli.common.parse_assignments``): JSON when they
parse as JSON, else the text as typed; never YAML 1.1's guesses."""

from __future__ import annotations

from typing import Any

import pytest

from textnlp.cli.common import parse_assignments
from textnlp.errors import InvalidInput


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        # JSON: numbers, literals, quoted strings, lists and objects
        ("5", 5),
        ("2.5", 2.5),
        ("-1", -1),
        ("1e3", 1000.0),
        ("true", True),
        ("false", False),
        ("null", None),
        ('"no"', "no"),
        ('"5"', "5"),
        ("[1, 2]", [1, 2]),
        ('{"a": 1}', {"a": 1}),
        # YAML 1.1 would read these as false, true, 16, 1000, inf: they stay text
        ("no", "no"),
        ("yes", "yes"),
        ("on", "on"),
        ("0x10", "0x10"),
        ("1_000", "1_000"),
        (".inf", ".inf"),
        # JSON's non-standard constants and overflowing numbers are no floats
        ("NaN", "NaN"),
        ("Infinity", "Infinity"),
        ("-Infinity", "-Infinity"),
        ("1e400", "1e400"),
        ("[NaN]", "[NaN]"),
        # plain text, as typed
        ("cooking", "cooking"),
        ("a=b", "a=b"),
        ("  spaced out ", "  spaced out "),
    ],
)
def test_a_value_is_json_or_else_its_text(raw: str, value: Any) -> None:
    parsed = parse_assignments([f"name={raw}"])["name"]
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize("pair", ["topic=", "topic=   "])
@pytest.mark.parametrize("option", ["--var", "--param"])
def test_an_empty_value_is_refused(pair: str, option: str) -> None:
    with pytest.raises(InvalidInput, match=f"^{option} topic: empty value$"):
        parse_assignments([pair], option)
