"""Running aggregates of the validations served by the API (``GET /validate/metrics``).

One row per (kind, metric): count, sum, min and max, updated in place, so the table stays
small however many validations run.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Float, Integer, String, select
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
        for metric, value in values.items():
            if value is None:
                continue
            row = self.session.get(ValidationStatRow, (kind, metric), with_for_update=True)
            if row is None:
                self.session.add(
                    ValidationStatRow(
                        kind=kind, metric=metric, count=1, total=value, minimum=value, maximum=value
                    )
                )
            else:
                row.count += 1
                row.total += value
                row.minimum = min(row.minimum, value)
                row.maximum = max(row.maximum, value)
        self.session.flush()

    def all(self) -> list[ValidationStatRow]:
        return list(
            self.session.scalars(
                select(ValidationStatRow).order_by(ValidationStatRow.kind, ValidationStatRow.metric)
            )
        )
