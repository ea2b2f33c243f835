"""Running aggregates of the validations served by the API (``GET /validate/metrics``).

One row per (kind, metric): count, sum, min and max, updated in place, so the table stays
small however many validations run. Each value is one ``INSERT ... ON CONFLICT DO UPDATE``:
requests recording a metric's first value at once (two API replicas, a fresh deployment) both
count, where a read-then-insert made one of them a primary-key violation.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Float, Integer, String, case, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from textnlp.adapters.db.base import Base


class ValidationStatRow(Base):
    __tablename__ = "validation_stats"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    metric: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[float] = mapped_column(Float, default=0.0)
    minimum: Mapped[float] = mapped_column(Float)
    maximum: Mapped[float] = mapped_column(Float)


class ValidationStatsRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record(self, kind: str, values: Mapping[str, float | None]) -> None:
        postgres = self.session.get_bind().dialect.name == "postgresql"
        insert = pg_insert if postgres else sqlite_insert
        table = ValidationStatRow.__table__.c
        for metric, value in values.items():
            if value is None:
                continue
            statement = insert(ValidationStatRow).values(
                kind=kind, metric=metric, count=1, total=value, minimum=value, maximum=value
            )
            new = statement.excluded
            self.session.execute(
                statement.on_conflict_do_update(
                    index_elements=["kind", "metric"],
                    set_={
                        "count": table.count + 1,
                        "total": table.total + new.total,
                        "minimum": case(
                            (new.minimum < table.minimum, new.minimum), else_=table.minimum
                        ),
                        "maximum": case(
                            (new.maximum > table.maximum, new.maximum), else_=table.maximum
                        ),
                    },
                )
            )

    def all(self) -> list[ValidationStatRow]:
        return list(
            self.session.scalars(
                select(ValidationStatRow).order_by(ValidationStatRow.kind, ValidationStatRow.metric)
            )
        )
