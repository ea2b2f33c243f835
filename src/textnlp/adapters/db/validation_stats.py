"""Running aggregates of the validations served by the API (``GET /validate/metrics``).

One row per (kind, metric): count, sum, min and max, updated in place, so the table stays
small however many validations run. Each value is one ``INSERT ... ON CONFLICT DO UPDATE``:
requests recording a metric's first value at once (two API replicas, a fresh deployment) both
count, where a read-then-insert made one of them a primary-key violation.

Two tables, the same rows: ``validation_stats`` holds everyone's (what an administrator is
shown), ``validation_owner_stats`` each user's own (what the user is shown). Everyone's
aggregates were once every caller's answer, and a user who read them before and after another
user's validation of one text learnt that text's exact measures (its length, its count of
personal data found) from the difference. A table of its own, rather than an owner column in
the key of the first, lets the previous release's ``ON CONFLICT (kind, metric)`` run on the
migrated schema while a deployment rolls.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Float, Integer, String, case, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from textnlp.adapters.db.base import Base


class ValidationStatRow(Base):
    """Everyone's aggregate of one metric."""

    __tablename__ = "validation_stats"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    metric: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[float] = mapped_column(Float, default=0.0)
    minimum: Mapped[float] = mapped_column(Float)
    maximum: Mapped[float] = mapped_column(Float)


class OwnerValidationStatRow(Base):
    """One user's aggregate of one metric (``0014_validation_owner_stats``)."""

    __tablename__ = "validation_owner_stats"

    owner_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    metric: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[float] = mapped_column(Float, default=0.0)
    minimum: Mapped[float] = mapped_column(Float)
    maximum: Mapped[float] = mapped_column(Float)


StatRow = ValidationStatRow | OwnerValidationStatRow


class ValidationStatsRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record(
        self, kind: str, values: Mapping[str, float | None], owner_id: str | None = None
    ) -> None:
        """Count ``values`` in everyone's aggregates, and in ``owner_id``'s when given."""
        for metric, value in values.items():
            if value is None:
                continue
            self._add(ValidationStatRow, {"kind": kind, "metric": metric}, value)
            if owner_id is not None:
                key = {"owner_id": owner_id, "kind": kind, "metric": metric}
                self._add(OwnerValidationStatRow, key, value)

    def _add(self, row: type[StatRow], key: dict[str, Any], value: float) -> None:
        postgres = self.session.get_bind().dialect.name == "postgresql"
        insert = pg_insert if postgres else sqlite_insert
        table = row.__table__.c
        statement = insert(row).values(**key, count=1, total=value, minimum=value, maximum=value)
        new = statement.excluded
        self.session.execute(
            statement.on_conflict_do_update(
                index_elements=list(key),
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
        """Everyone's aggregates."""
        return list(
            self.session.scalars(
                select(ValidationStatRow).order_by(ValidationStatRow.kind, ValidationStatRow.metric)
            )
        )

    def of_owner(self, owner_id: str) -> list[OwnerValidationStatRow]:
        """``owner_id``'s own aggregates."""
        rows = OwnerValidationStatRow
        return list(
            self.session.scalars(
                select(rows).where(rows.owner_id == owner_id).order_by(rows.kind, rows.metric)
            )
        )
