"""String formats are asserted, OpenAI's structured outputs' list of them: a json_schema
response_format or a template's schema asking for ``format: date`` got any string before
(jsonschema treats ``format`` as an annotation unless told otherwise)."""

from __future__ import annotations

import pytest

from textnlp.validation.safe_schema import compiled


@pytest.mark.parametrize(
    ("fmt", "good", "bad"),
    [
        ("date-time", "2024-01-31T10:00:00Z", "2024-01-31 10:00"),
        ("date-time", "2016-12-31T23:59:60Z", "2016-12-31T23:59:61Z"),  # a leap second
        ("time", "23:59:60Z", "24:00:00Z"),
        ("time", "10:00:00+02:00", "10h"),
        ("date", "2024-01-31", "2024-13-45"),
        ("duration", "P3DT4H30M", "3 days"),
        ("duration", "PT0.5S", "P"),
        ("email", "ann@example.com", "ann at example"),
        ("hostname", "api.example.com", "not a host"),
        ("ipv4", "10.0.0.1", "10.0.0.256"),
        ("ipv6", "2001:db8::1", "2001:db8:::1"),
        ("uuid", "123e4567-e89b-12d3-a456-426614174000", "123e4567"),
    ],
)
def test_each_openai_format_is_asserted(fmt: str, good: str, bad: str) -> None:
    schema = compiled({"type": "string", "format": fmt})
    assert schema.first_error(good) is None
    error = schema.first_error(bad)
    assert error is not None and f"is not a '{fmt}'" in error.message


def test_other_formats_stay_annotations() -> None:
    assert compiled({"type": "string", "format": "color"}).first_error("not a colour") is None
    assert compiled({"format": "date"}).first_error(42) is None  # formats apply to strings
