"""The validation aggregates on SQLite and the real PostgreSQL: requests recording a metric's
first value at once all count (a read-then-insert made all but one a primary-key violation,
a 500 from ``POST /validate/quality`` on a fresh deployment), and min/max/sum stay right."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from textnlp.adapters.db.validation_stats import ValidationStatsRepository


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> Engine:
    name = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    value: Engine = request.getfixturevalue(name)
    with value.begin() as connection:
        connection.execute(text("DELETE FROM validation_stats"))
    return value


def test_first_values_recorded_at_once_all_count(engine: Engine) -> None:
    values = [0.5, 2.0, -1.0, 3.5, 1.0, 0.0]
    start, failures = threading.Barrier(len(values)), []

    def record(value: float) -> None:
        start.wait()
        try:
            with Session(engine) as session, session.begin():
                ValidationStatsRepository(session).record("quality", {"score": value})
        except Exception as exc:  # noqa: BLE001 - collected for the assert
            failures.append(exc)

    threads = [threading.Thread(target=record, args=(value,)) for value in values]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []
    with Session(engine) as session:
        (row,) = ValidationStatsRepository(session).all()
    assert (row.count, row.total, row.minimum, row.maximum) == (6, 6.0, -1.0, 3.5)
