"""``strict_json.decode_at`` reads a value from a piece of the text: the same value, the same
end and the same refusals as reading it from the whole text, wherever the piece is cut."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textnlp import strict_json
from textnlp.strict_json import DECODER, decode_at, object_starts


def whole(text: str, start: int) -> tuple[str, Any]:
    try:
        return "ok", DECODER.raw_decode(text, start)
    except json.JSONDecodeError:
        return "not json", None
    except ValueError as exc:
        return "refused", str(exc)


def pieces(text: str, start: int) -> tuple[str, Any]:
    try:
        return "ok", decode_at(text, start)
    except json.JSONDecodeError:
        return "not json", None
    except ValueError as exc:
        return "refused", str(exc)


# Tokens that a cut can split: long strings and numbers, every literal, escapes, whitespace.
TOKENS = [
    '"' + "x" * 40 + '"',
    '"\\u00e9\\n\\"q\\""',
    "123456789012345678901234567890",
    "-1.5e-7",
    "true",
    "false",
    "null",
    "NaN",
    "-Infinity",
    "1e999",
    "   \n\t ",
    "tru",
    '"unterminated',
    "{}",
    "[]",
]


@st.composite
def json_ish(draw: st.DrawFn) -> str:
    """An object of many members, some broken, so that the pieces' ends fall everywhere."""
    members = draw(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=400))
    closing = draw(st.sampled_from(["}", "", "} trailing prose", ", }", "x"]))
    body = ", ".join(f'"k{i}": {token}' for i, token in enumerate(members))
    return "{" + body + closing


@settings(max_examples=300, deadline=None)
@given(text=json_ish(), window=st.sampled_from([4, 16, 64, 4096]))
def test_a_value_read_in_pieces_is_the_value_read_whole(text: str, window: int) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(strict_json, "_WINDOW", window)
        assert pieces(text, 0) == whole(text, 0)


@pytest.mark.parametrize("cut", range(4090, 4100))
def test_a_token_across_the_first_cut(cut: int) -> None:
    for token in TOKENS:
        text = '{"pad": "' + "p" * (cut - 9) + '", "v": ' + token + "} after"
        assert pieces(text, 0) == whole(text, 0), (cut, token)


def test_a_value_later_in_the_text() -> None:
    text = "prose {" + '"a": "' + "y" * 10_000 + '"} more'
    assert pieces(text, 6) == whole(text, 6)
    assert pieces(text, 6)[1][1] == len(text) - len(" more")  # the end, in the whole text


def test_only_possible_object_starts_are_tried() -> None:
    text = '{{x{"a": 1}{ \n}{ x}{\t"b"'
    assert list(object_starts(text)) == [3, 11, 19]


def test_an_integer_longer_than_python_converts_is_refused_in_our_words() -> None:
    with pytest.raises(ValueError, match="a number of 5000 digits is too long") as refused:
        strict_json.loads('{"a": -' + "1" * 5000 + "}")
    assert not isinstance(refused.value, json.JSONDecodeError)  # JSON-shaped: not looked past
    assert strict_json.loads("1" * 4300) == int("1" * 4300)
