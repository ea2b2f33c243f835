"""The durable local queue: rows of ``queue_messages`` in the SQLite/PostgreSQL database.

It behaves like SQS: a receive claims a visible message by moving its ``visible_at`` past the
visibility timeout and giving it a new receipt; ``extend``/``release``/``delete`` only act when
the caller's receipt is still the current one, so a worker whose delivery expired cannot touch
the message's next delivery. A message received ``max_receives`` times moves to the
dead-letter queue (a queue name in the same table) on its next receive; ``hand_back`` takes
the receive back (the count goes down by one), so a worker that stops does not use one up.

Claims are compare-and-set on ``receive_count``, which is safe on both databases; PostgreSQL
also selects candidates with ``FOR UPDATE SKIP LOCKED`` so that concurrent workers do not queue
behind each other's row locks.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy import Engine, and_, case, delete, select, update
from sqlalchemy.orm import Session

from textnlp.adapters.db.jobs import QueueMessageRow
from textnlp.adapters.queue.base import QueueMessage

#: How long a dead-lettered message is left alone after ``dead_letters`` returned it.
DLQ_REVIEW_S = 3600


def _now_ms() -> int:
    return int(time.time() * 1000)


class DatabaseQueue:
    """One named queue in the ``queue_messages`` table, with its dead-letter queue."""

    def __init__(
        self,
        engine: Engine,
        name: str,
        *,
        dead_letter_queue: str,
        max_receives: int = 3,
        visibility_timeout_s: int = 3600,
        poll_interval_s: float = 0.2,
    ) -> None:
        self.engine = engine
        self.name = name
        self.dead_letter_queue = dead_letter_queue
        self.max_receives = max_receives
        self.visibility_timeout_s = visibility_timeout_s
        self.poll_interval_s = poll_interval_s
        self._skip_locked = engine.dialect.name == "postgresql"

    def send(
        self, body: str, *, group_id: str, dedup_id: str, trace_header: str | None = None
    ) -> str:
        with Session(self.engine) as session, session.begin():
            return self._send(
                session,
                self.name,
                body,
                group_id=group_id,
                dedup_id=dedup_id,
                trace_header=trace_header,
            )

    def _send(
        self,
        session: Session,
        queue: str,
        body: str,
        *,
        group_id: str,
        dedup_id: str,
        trace_header: str | None = None,
    ) -> str:
        existing = session.scalar(
            select(QueueMessageRow.id).where(
                QueueMessageRow.queue == queue, QueueMessageRow.dedup_id == dedup_id
            )
        )
        if existing is not None:  # like SQS FIFO deduplication, while the first is queued
            return existing
        message_id = uuid.uuid4().hex
        session.add(
            QueueMessageRow(
                id=message_id,
                seq=time.time_ns() // 1000,
                queue=queue,
                body=body,
                group_id=group_id,
                dedup_id=dedup_id,
                receive_count=0,
                visible_at=_now_ms(),
                trace_header=trace_header,
            )
        )
        return message_id

    def receive(self, max_messages: int = 1, wait_s: float = 0.0) -> list[QueueMessage]:
        deadline = time.monotonic() + wait_s
        while True:
            messages = self._receive_once(max_messages)
            if messages or time.monotonic() >= deadline:
                return messages
            time.sleep(min(self.poll_interval_s, max(0.0, deadline - time.monotonic())))

    def _receive_once(self, max_messages: int) -> list[QueueMessage]:
        received: list[QueueMessage] = []
        with Session(self.engine) as session, session.begin():
            now = _now_ms()
            query = (
                select(QueueMessageRow)
                .where(QueueMessageRow.queue == self.name, QueueMessageRow.visible_at <= now)
                .order_by(QueueMessageRow.seq)
                .limit(max_messages * 4)
            )
            if self._skip_locked:
                query = query.with_for_update(skip_locked=True)
            for row in session.scalars(query).all():
                if len(received) >= max_messages:
                    break
                if row.receive_count >= self.max_receives:
                    self._claim(session, row, now, queue=self.dead_letter_queue, visible=now)
                    continue
                receipt = self._claim(session, row, now, visible=now + self._vt_ms())
                if receipt is not None:
                    received.append(
                        QueueMessage(
                            row.id,
                            row.body,
                            receipt,
                            row.receive_count + 1,
                            self.name,
                            trace_header=row.trace_header,
                        )
                    )
        return received

    def _claim(
        self,
        session: Session,
        row: QueueMessageRow,
        now: int,
        *,
        visible: int,
        queue: str | None = None,
    ) -> str | None:
        """Compare-and-set on the receive count; None when another worker got there first."""
        receipt = uuid.uuid4().hex
        values: dict[str, Any] = {"visible_at": visible, "receipt": receipt}
        if queue is None:
            values["receive_count"] = row.receive_count + 1
        else:  # redrive to the DLQ: its own receive count starts again
            values.update(queue=queue, receive_count=0, reason="maximum receives exceeded")
        result = session.execute(
            update(QueueMessageRow)
            .where(
                QueueMessageRow.id == row.id,
                QueueMessageRow.queue == row.queue,
                QueueMessageRow.receive_count == row.receive_count,
                QueueMessageRow.visible_at <= now,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return receipt if _rowcount(result) == 1 else None

    def _vt_ms(self, seconds: int | None = None) -> int:
        return (self.visibility_timeout_s if seconds is None else seconds) * 1000

    def _current(self, message: QueueMessage) -> Any:
        return and_(QueueMessageRow.id == message.id, QueueMessageRow.receipt == message.receipt)

    def extend(self, message: QueueMessage, timeout_s: int) -> None:
        self._update(message, visible_at=_now_ms() + self._vt_ms(timeout_s))

    def release(self, message: QueueMessage, delay_s: int = 0) -> None:
        self._update(message, visible_at=_now_ms() + delay_s * 1000)

    def hand_back(self, message: QueueMessage) -> None:
        # This receive is taken back: the next one counts as this one did.
        self._update(
            message,
            visible_at=_now_ms(),
            receive_count=case(
                (QueueMessageRow.receive_count > 0, QueueMessageRow.receive_count - 1), else_=0
            ),
        )

    def _update(self, message: QueueMessage, **values: Any) -> None:
        with Session(self.engine) as session, session.begin():
            session.execute(update(QueueMessageRow).where(self._current(message)).values(**values))

    def delete(self, message: QueueMessage) -> None:
        with Session(self.engine) as session, session.begin():
            session.execute(delete(QueueMessageRow).where(self._current(message)))

    def dead_letter(self, message: QueueMessage, reason: str) -> None:
        self._update(
            message,
            queue=self.dead_letter_queue,
            receive_count=0,
            visible_at=_now_ms(),
            reason=reason[:2000],
        )

    def dead_letters(self, max_messages: int = 10) -> list[QueueMessage]:
        """Dead-lettered messages; each comes back at most once an hour (they stay queued)."""
        reviewer = DatabaseQueue(
            self.engine,
            self.dead_letter_queue,
            dead_letter_queue=self.dead_letter_queue,
            max_receives=2**31 - 1,
            visibility_timeout_s=DLQ_REVIEW_S,
        )
        return reviewer.receive(max_messages)

    def counts(self) -> dict[str, int]:
        """Messages in this queue and in its dead-letter queue (tests, admin)."""
        with Session(self.engine) as session:
            rows = session.scalars(
                select(QueueMessageRow.queue).where(
                    QueueMessageRow.queue.in_([self.name, self.dead_letter_queue])
                )
            ).all()
        return {"queue": rows.count(self.name), "dead_letter": rows.count(self.dead_letter_queue)}

    def close(self) -> None:
        """The engine belongs to the caller."""


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
