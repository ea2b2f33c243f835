"""A value PostgreSQL refuses is the caller's mistake, not a server error.

A path's id, a console form's field or any other text that reaches a statement without a
request model's check can hold NUL, which PostgreSQL's text cannot store. The engine's error
hook (``textnlp.adapters.db.base``) turns the driver's refusal into ``InvalidInput`` (422),
and the connection stays usable.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from textnlp.adapters.db.base import make_engine
from textnlp.errors import InvalidInput


@pytest.mark.parametrize(
    ("statement", "value", "reason"),
    [
        ("select cast(:v as text)", "a\x00b", "NUL"),
        ("select cast(:v as integer)", "12 monkeys", "invalid input syntax for type integer"),
        ("select cast(:v as smallint)", "99999", "out of range"),
    ],
)
def test_a_refused_value_is_invalid_input_and_the_connection_goes_on(
    postgres_url: str, statement: str, value: str, reason: str
) -> None:
    engine = make_engine(postgres_url)
    try:
        with engine.connect() as connection:
            with pytest.raises(InvalidInput, match=reason) as refused:
                connection.execute(text(statement), {"v": value})
            assert refused.value.http_status == 422
            connection.rollback()
            assert connection.execute(text("select 1")).scalar() == 1
    finally:
        engine.dispose()
