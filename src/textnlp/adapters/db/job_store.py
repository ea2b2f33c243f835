"""SQL for batch jobs: the job rows, record checkpoints, outbox and idempotency keys.

Services call these methods and never write SQL themselves. Each method is one short
transaction, so the API, the worker and the outbox relay can share the database safely. A
database that cannot be reached raises ``ServiceUnavailable`` from any of them (the engine's
hook, ``adapters.db.base``); each method is safe to call again once it is back.

A job's ``attempts`` are the attempts that count towards its limit (``queue.max_receives``):
``start`` counts one, ``uncount_attempt`` takes it back when the attempt ended without failing.

An ended job can be deleted (``delete``, ``purge_ended``): its row, records, outbox messages and
idempotency keys go in one transaction that holds the job's row first. A worker still busy
with it then finds no job: ``save_records`` stores nothing, ``heartbeat`` answers None,
``finish``, ``hand_over`` and ``keep_partial_result`` change nothing; none of them makes the
row again. A job whose provider batch may still run is not deleted (``delete`` refuses it,
``purge_ended`` skips it) until the batch is cancelled or over.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, case, delete, false, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from textnlp.adapters.db.clock import db_clock
from textnlp.adapters.db.jobs import (
    IdempotencyKeyRow,
    JobHoldRow,
    JobRecordRow,
    JobRow,
    OutboxRow,
)
from textnlp.adapters.db.users import UserRow
from textnlp.domain import Record
from textnlp.domain.jobs import TERMINAL_STATES
from textnlp.errors import Conflict


def utcnow() -> datetime:
    return datetime.now(UTC)


def settled(row: JobRow, live_since: datetime) -> bool:
    """Whether the job has ended and nothing more of it will be stored: it succeeded (every
    record is in), its file is published, or its worker let it go or last heartbeated before
    ``live_since`` (a cancelled job's worker stores the chunk it was filling, and its cost,
    at its next checkpoint; a crashed one heartbeats no more)."""
    if row.state not in TERMINAL_STATES:
        return False
    if row.state == "succeeded" or row.result_key or row.heartbeat_at is None:
        return True
    heartbeat = row.heartbeat_at
    if heartbeat.tzinfo is None:  # SQLite keeps no zone: the store writes UTC
        heartbeat = heartbeat.replace(tzinfo=UTC)
    return heartbeat < live_since


def _is(column: Any, value: Any) -> Any:
    """``column`` equals ``value``, NULL matching None (SQL's ``=`` never matches NULL)."""
    return column.is_(None) if value is None else column == value


@dataclass(frozen=True)
class NewJob:
    id: str
    owner_id: str
    spec: dict[str, Any]
    queue: str
    total: int
    body: str
    #: The submitting request's trace, for its message (``observability.spans.trace_header``).
    trace_header: str | None = None
    #: When it was made (a time-ordered id's own time: a list can place a deleted id); now if None.
    created_at: datetime | None = None


@dataclass(frozen=True)
class PendingMessage:
    outbox_id: int
    job_id: str
    queue: str
    body: str
    trace_header: str | None = None


def _pending(row: OutboxRow) -> PendingMessage:
    return PendingMessage(row.id, row.job_id, row.queue, row.body, row.trace_header)


class IdempotencyMismatch(Exception):
    """The key was used before with another request body (internal; mapped by the service)."""


def _batch_may_run() -> Any:
    """A hold of a provider batch the provider may still run (and be paid for): held until
    its worker collects or cancels it, or its time at the provider is over. The database's
    clock (``clock``) is the one the holds' times were written on."""
    return (JobHoldRow.batch_usd > 0.0) & (JobHoldRow.batch_until > db_clock())


def _end_holds(session: Session, job_id: str, *, keep_batch: bool) -> None:
    """The job ended: its runs hold nothing against its owner's cap any more, but, with
    ``keep_batch``, the worst case of a provider batch that may still run on (a job that
    failed with its batch submitted, or was cancelled while no worker ran it and its batch
    could not be cancelled), which the provider is paid whatever becomes of the job: it stays
    held for as long as it was held (``SpendingStore.hold``). A job that succeeded collected
    its batches."""
    running = _batch_may_run()
    mine = JobHoldRow.job_id == job_id
    if keep_batch:
        session.execute(
            update(JobHoldRow)
            .where(mine, running)
            .values(amount_usd=0.0, held_until=db_clock())
            .execution_options(synchronize_session=False)
        )
        mine = mine & ~running
    session.execute(delete(JobHoldRow).where(mine).execution_options(synchronize_session=False))


class JobStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        self._postgres = engine.dialect.name == "postgresql"

    # -- submit ----------------------------------------------------------------------------
    def create(
        self,
        job: NewJob,
        *,
        idempotency: tuple[str, str] | None = None,
        check_prompt_file: Callable[[], None] | None = None,
    ) -> JobRow:
        """Store the job, its outbox message and its idempotency key in one transaction.

        ``idempotency`` is (key, request hash). With a key already used by the same body the
        existing job comes back (nothing is stored); another body raises IdempotencyMismatch.
        ``check_prompt_file`` runs first in the transaction, under the owner's uploads lock
        (``delete_prompt_file``'s): what it raises stores nothing.
        """
        if idempotency is not None:
            existing = self.idempotent(job.owner_id, *idempotency)
            if existing is not None:
                return existing
        now = job.created_at or utcnow()
        try:
            with self.sessions.begin() as session:
                if check_prompt_file is not None:
                    self._lock_uploads(session, job.owner_id)
                    check_prompt_file()
                row = JobRow(
                    id=job.id,
                    owner_id=job.owner_id,
                    state="queued",
                    spec=job.spec,
                    queue=job.queue,
                    total=job.total,
                    done=0,
                    failed_records=0,
                    attempts=0,
                    created_at=now,
                )
                session.add(row)
                session.flush()
                session.add(
                    OutboxRow(
                        job_id=job.id,
                        queue=job.queue,
                        body=job.body,
                        created_at=now,
                        trace_header=job.trace_header,
                    )
                )
                if idempotency is not None:
                    session.add(
                        IdempotencyKeyRow(
                            owner_id=job.owner_id,
                            key=idempotency[0],
                            request_hash=idempotency[1],
                            job_id=job.id,
                            created_at=now,
                        )
                    )
        except IntegrityError:
            if idempotency is None:
                raise
            existing = self.idempotent(job.owner_id, *idempotency)  # lost a race on the key
            if existing is None:
                raise
            return existing
        return row

    def idempotent(self, owner_id: str, key: str, request_hash: str) -> JobRow | None:
        """The job stored under the key (None: unused key); another body: IdempotencyMismatch."""
        with self.sessions() as session:
            known = session.get(IdempotencyKeyRow, (owner_id, key))
            if known is None:
                return None
            if known.request_hash != request_hash:
                raise IdempotencyMismatch(key)
            return session.get(JobRow, known.job_id)

    # -- outbox ----------------------------------------------------------------------------
    def pending_messages(self, limit: int = 100, job_id: str | None = None) -> list[PendingMessage]:
        with self.sessions() as session:
            query = select(OutboxRow).where(OutboxRow.sent_at.is_(None)).order_by(OutboxRow.id)
            if job_id is not None:
                query = query.where(OutboxRow.job_id == job_id)
            rows = session.scalars(query.limit(limit)).all()
            return [_pending(row) for row in rows]

    def mark_sent(self, outbox_id: int) -> None:
        with self.sessions.begin() as session:
            session.execute(
                update(OutboxRow).where(OutboxRow.id == outbox_id).values(sent_at=utcnow())
            )

    def send_pending(
        self,
        send: Callable[[PendingMessage], bool],
        limit: int = 100,
        job_id: str | None = None,
    ) -> int:
        """Hand each unsent outbox message to ``send`` (False: stop, the queue is down) and
        mark those it sent. On PostgreSQL the rows are held meanwhile (``FOR UPDATE SKIP
        LOCKED``), so two publishers (the API after a submit, every worker's loop) never send
        one message twice to a standard queue, where two deliveries are two workers running
        one job; a crash before the commit leaves them unsent, to be sent again. SQLite (one
        machine's processes) sends and marks one at a time: a transaction held across a send
        to the local queue, a write of its own, could not write afterwards."""
        if not self._postgres:
            sent = 0
            for message in self.pending_messages(limit, job_id=job_id):
                if not send(message):
                    break
                self.mark_sent(message.outbox_id)
                sent += 1
            return sent
        sent = 0
        with self.sessions.begin() as session:
            query = select(OutboxRow).where(OutboxRow.sent_at.is_(None)).order_by(OutboxRow.id)
            if job_id is not None:
                query = query.where(OutboxRow.job_id == job_id)
            query = query.limit(limit).with_for_update(skip_locked=True)
            for row in session.scalars(query).all():
                if not send(_pending(row)):
                    break
                row.sent_at = utcnow()
                sent += 1
        return sent

    # -- reads -----------------------------------------------------------------------------
    def get(self, job_id: str) -> JobRow | None:
        with self.sessions() as session:
            return session.get(JobRow, job_id)

    def list_for(
        self,
        owner_id: str | None,
        limit: int = 50,
        *,
        before: tuple[datetime, str] | None = None,
        prompt_prefix: str | None = None,
    ) -> list[JobRow]:
        """Newest first; ``before``: only the jobs after that (created_at, id) in that order;
        ``prompt_prefix``: only the jobs whose prompt file's key starts with it (an owner's
        OpenAI batches among their other jobs, left in the database rather than read)."""
        with self.sessions() as session:
            query = select(JobRow).order_by(JobRow.created_at.desc(), JobRow.id.desc()).limit(limit)
            if owner_id is not None:
                query = query.where(JobRow.owner_id == owner_id)
            if prompt_prefix is not None:
                prompt_file = JobRow.spec["prompt_file"].as_string()
                query = query.where(prompt_file.startswith(prompt_prefix, autoescape=True))
            if before is not None:
                made, job_id = before
                query = query.where(
                    or_(
                        JobRow.created_at < made,
                        and_(JobRow.created_at == made, JobRow.id < job_id),
                    )
                )
            return list(session.scalars(query).all())

    def delete_prompt_file(self, owner_id: str, key: str, delete: Callable[[], None]) -> list[str]:
        """Call ``delete`` unless an unfinished job of the owner's reads the prompt file
        ``key``; returns those jobs' ids (then nothing is deleted).

        Under the owner's uploads lock, as a submit's ``check_prompt_file``: a job stored
        between the check and the delete would fail for want of its file.
        """
        with self.sessions.begin() as session:
            self._lock_uploads(session, owner_id)
            query = select(JobRow).where(
                JobRow.owner_id == owner_id, JobRow.state.not_in(TERMINAL_STATES)
            )
            readers = [
                row.id for row in session.scalars(query) if row.spec.get("prompt_file") == key
            ]
            if not readers:
                delete()
            return readers

    def _lock_uploads(self, session: Session, owner_id: str) -> None:
        """Held to the transaction's end: PostgreSQL's advisory lock on the owner; SQLite's
        database write lock (a write statement takes it, even one that changes no row)."""
        if self._postgres:
            digest = hashlib.blake2b(f"uploads:{owner_id}".encode(), digest_size=8).digest()
            session.execute(select(func.pg_advisory_xact_lock(int.from_bytes(digest, signed=True))))
        else:
            noop = update(JobRow).where(JobRow.owner_id == owner_id, false())
            session.execute(noop.values(owner_id=JobRow.owner_id))

    # -- state changes ---------------------------------------------------------------------
    def start(self, job_id: str, worker: str) -> JobRow | None:
        """queued/running -> running (a new attempt); None when the job is finished or gone.
        An ended job's runs hold nothing against its owner's cap any more but a provider batch
        still running (``_end_holds``: one cancelled while no worker ran the job was not
        cancelled at the provider)."""
        now = utcnow()
        with self.sessions.begin() as session:
            row = session.get(JobRow, job_id, with_for_update=self._postgres)
            if row is None:
                return row
            if row.state in TERMINAL_STATES:
                _end_holds(session, job_id, keep_batch=row.state != "succeeded")
                return row
            row.state = "running"
            row.attempts += 1
            row.worker = worker
            row.started_at = row.started_at or now
            row.heartbeat_at = now
            return row

    def claim_notice(self, job_id: str) -> bool:
        """Whether the caller is the one to send the notice of the job's end: True once per
        ended job (False while it runs, once claimed, or when it is gone).

        The claim also drops the spec's ``webhook_secret``: it signs this one notice (the
        claimer read it with the row), and kept it would lie in every backup and snapshot of
        the table, with which anyone could forge notices to the job owner's receiver."""
        with self.sessions.begin() as session:
            result = session.execute(
                update(JobRow)
                .where(
                    JobRow.id == job_id,
                    JobRow.state.in_(list(TERMINAL_STATES)),
                    JobRow.notified_at.is_(None),
                )
                .values(notified_at=utcnow())
            )
            claimed = int(getattr(result, "rowcount", 0) or 0) == 1
            row = session.get(JobRow, job_id) if claimed else None
            if row is not None and "webhook_secret" in row.spec:
                row.spec = {k: v for k, v in row.spec.items() if k != "webhook_secret"}
            return claimed

    def uncount_attempt(self, job_id: str) -> None:
        """The attempt ``start`` counted ended without failing (its worker stopped, or waited
        out an outage and gave the job back): it does not count towards the job's limit."""
        with self.sessions.begin() as session:
            session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.state == "running", JobRow.attempts > 0)
                .values(attempts=JobRow.attempts - 1)
            )

    def heartbeat(self, job_id: str) -> str | None:
        """Note the worker is alive; returns the job's state (``cancelled`` tells it to stop)."""
        with self.sessions.begin() as session:
            session.execute(update(JobRow).where(JobRow.id == job_id).values(heartbeat_at=utcnow()))
            return session.scalar(select(JobRow.state).where(JobRow.id == job_id))

    def note_error(self, job_id: str, error: str) -> None:
        """An attempt failed; the job stays running until its last attempt."""
        with self.sessions.begin() as session:
            session.execute(update(JobRow).where(JobRow.id == job_id).values(error=error[:4000]))

    def finish(
        self,
        job_id: str,
        state: str,
        *,
        error: str | None = None,
        result_key: str | None = None,
        report_key: str | None = None,
        only_from: Sequence[str] = ("queued", "running"),
    ) -> bool:
        """Move a live job to a terminal state; False when it was not live any more. An ended
        job holds nothing against its owner's cap but a provider batch that may still run on
        (``_end_holds``), except a cancelled one, whose worker may still be settling its
        requests in flight (its run's end releases the rest)."""
        values: dict[str, Any] = {"state": state, "finished_at": utcnow()}
        if error is not None:
            values["error"] = error[:4000]
        if result_key is not None:
            values["result_key"] = result_key
        if report_key is not None:
            values["report_key"] = report_key
        with self.sessions.begin() as session:
            result = session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.state.in_(list(only_from)))
                .values(**values)
            )
            ended = int(getattr(result, "rowcount", 0) or 0) == 1
            if ended and state != "cancelled":
                _end_holds(session, job_id, keep_batch=state != "succeeded")
            return ended

    def keep_partial_result(
        self, job_id: str, result_key: str, *, beat: datetime | None
    ) -> tuple[bool, str | None]:
        """A cancelled or failed job's file of the records it made, in place of the file it
        had, unless a record was stored since ``beat``, the job's heartbeat read before the
        file's records were (every store beats, so the file might lack that record): (kept,
        the key of the file replaced). Kept, the heartbeat is cleared: its worker is done."""
        with self.sessions.begin() as session:
            replaced = session.scalar(select(JobRow.result_key).where(JobRow.id == job_id))
            result = session.execute(
                update(JobRow)
                .where(
                    JobRow.id == job_id,
                    JobRow.state.in_(["cancelled", "failed"]),
                    _is(JobRow.heartbeat_at, beat),
                    _is(JobRow.result_key, replaced),  # unchanged since read (SQLite's read)
                )
                .values(result_key=result_key, heartbeat_at=None)
            )
            kept = int(getattr(result, "rowcount", 0) or 0) == 1
            return kept, replaced if kept else None

    def end_holds(self, job_id: str) -> None:
        """Drop what the job's runs hold against its owner's cap, a provider batch's worst case
        included (it was cancelled)."""
        with self.sessions.begin() as session:
            _end_holds(session, job_id, keep_batch=False)

    def count_batch_cost(self, job_id: str, paid_usd: float, *, ended: bool) -> None:
        """Answers of the job's provider batches that the job will never use (they ended
        cancelled, or after the job ended) were paid all the same: their cost goes to the job's
        ``cost_usd`` (its owner's spend); with ``ended`` (no batch of the job runs any more)
        its holds go, in the same transaction, so the spend is never counted in neither."""
        with self.sessions.begin() as session:
            if paid_usd > 0:
                session.execute(
                    update(JobRow)
                    .where(JobRow.id == job_id)
                    .values(cost_usd=func.coalesce(JobRow.cost_usd, 0.0) + paid_usd)
                )
            if ended:
                _end_holds(session, job_id, keep_batch=False)

    def batch_may_run(self, job_id: str) -> bool:
        """Whether the job holds the worst case of a provider batch that may still run."""
        running = select(JobHoldRow.id).where(JobHoldRow.job_id == job_id, _batch_may_run())
        with self.sessions() as session:
            return session.scalar(running.limit(1)) is not None

    def worker_stopped(self, job_id: str) -> None:
        """An ended job's worker is gone: its heartbeat no longer stands for a live worker."""
        with self.sessions.begin() as session:
            session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.state.in_(list(TERMINAL_STATES)))
                .values(heartbeat_at=None)
            )

    def hand_over(
        self,
        job_id: str,
        result_key: str,
        queue: str,
        body: str,
        *,
        trace_header: str | None = None,
    ) -> bool:
        """A running job's result is stored: keep its key and, in the same transaction, put the
        next step's message (validation) in the outbox. False when the job is not running."""
        with self.sessions.begin() as session:
            result = session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.state == "running")
                .values(result_key=result_key, heartbeat_at=utcnow())
            )
            if int(getattr(result, "rowcount", 0) or 0) != 1:
                return False
            session.add(
                OutboxRow(
                    job_id=job_id,
                    queue=queue,
                    body=body,
                    created_at=utcnow(),
                    trace_header=trace_header,
                )
            )
            return True

    # -- records (the checkpoint) ----------------------------------------------------------
    def save_records(
        self, job_id: str, records: Sequence[Record], *, hold_id: str | None = None
    ) -> int:
        """Insert records by (job id, index), ignoring ones already stored; returns new ones.

        In the same transaction the job's ``done`` and ``cost_usd`` grow by the records this
        call inserted (``RETURNING`` names them), so a record stored twice by racing or
        resumed workers is counted once, and the cost is exact after any crash; their cost
        leaves the hold of the run that made them (``hold_id``), which held it until now.
        """
        if not records:
            return 0
        rows = [
            {
                "job_id": job_id,
                "index": r.index,
                "ok": r.status == "ok",
                "payload": r.model_dump_json(),
            }
            for r in records
        ]
        insert = pg_insert if self._postgres else sqlite_insert
        statement = (
            insert(JobRecordRow)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["job_id", "index"])
            .returning(JobRecordRow.index)
        )
        with self.sessions.begin() as session:
            if not self._holds_job(session, job_id):
                return 0  # deleted (by its owner, or a purge): nothing to keep it for
            inserted = set(session.scalars(statement).all())
            added = len(inserted)
            new = [r for r in records if r.index in inserted]
            # Progress counts the records asked for, not a recipe's rejected candidates, and
            # its failures the failed ones, not the rejected (a filter's verdict is no failure).
            slots = sum(1 for r in new if r.fills_a_slot)
            failed = sum(1 for r in new if r.status == "failed")
            values: dict[str, Any] = {
                "done": JobRow.done + slots,
                "failed_records": JobRow.failed_records + failed,
                "heartbeat_at": utcnow(),
            }
            costs = [
                r.provenance.cost_usd
                for r in records
                if r.index in inserted and r.provenance.cost_usd is not None
            ]
            if costs:
                values["cost_usd"] = func.coalesce(JobRow.cost_usd, 0.0) + sum(costs)
            session.execute(update(JobRow).where(JobRow.id == job_id).values(**values))
            if costs and hold_id is not None:
                # Stored, their cost is no longer held (``SpendingStore.settle`` held it).
                held = JobHoldRow.amount_usd - sum(costs)
                session.execute(
                    update(JobHoldRow)
                    .where(JobHoldRow.id == hold_id)
                    .values(amount_usd=case((held > 0.0, held), else_=0.0))
                )
            return added

    def _holds_job(self, session: Session, job_id: str) -> bool:
        """Whether the job exists, held against a delete until the transaction ends:
        PostgreSQL's ``FOR KEY SHARE`` on its row (what a record's foreign key takes anyway:
        concurrent stores and state changes are not held up); SQLite's write lock, taken
        before the read, so the read is not of a snapshot a delete has since replaced."""
        query = select(JobRow.id).where(JobRow.id == job_id)
        if self._postgres:
            query = query.with_for_update(key_share=True)
        else:
            noop = update(JobRow).where(JobRow.id == job_id, false())
            session.execute(noop.values(id=JobRow.id))
        return session.scalar(query) is not None

    def iter_records(self, job_id: str, *, ok_only: bool = True) -> Iterator[Record]:
        """Stored records in index order, fetched in batches (large jobs stay in bounds)."""
        query = (
            select(JobRecordRow.payload)
            .where(JobRecordRow.job_id == job_id)
            .order_by(JobRecordRow.index)
        )
        if ok_only:
            query = query.where(JobRecordRow.ok.is_(True))
        with self.sessions() as session:
            for payload in session.scalars(query.execution_options(yield_per=1000)):
                yield Record.model_validate_json(payload)

    def record_indices(self, job_id: str) -> set[int]:
        query = select(JobRecordRow.index).where(JobRecordRow.job_id == job_id)
        with self.sessions() as session:
            return set(session.scalars(query))

    def count_records(self, job_id: str, *, ok_only: bool = False) -> int:
        query = select(func.count()).where(JobRecordRow.job_id == job_id)
        if ok_only:
            query = query.where(JobRecordRow.ok.is_(True))
        with self.sessions() as session:
            return int(session.scalar(query) or 0)

    # -- records for people (the console's dataset viewer) ---------------------------------
    def page_records(
        self, job_id: str, *, ok: bool | None = None, offset: int = 0, limit: int = 50
    ) -> list[Record]:
        """One page of stored records in index order: ``LIMIT``/``OFFSET`` on the primary key
        (job id, index), so the first page of a 100k-record job reads ``limit`` rows."""
        query = select(JobRecordRow.payload).where(JobRecordRow.job_id == job_id)
        if ok is not None:
            query = query.where(JobRecordRow.ok.is_(ok))
        query = query.order_by(JobRecordRow.index).offset(offset).limit(limit)
        with self.sessions() as session:
            return [Record.model_validate_json(p) for p in session.scalars(query)]

    def scan_records(
        self, job_id: str, *, ok: bool | None = None, after: int = -1, limit: int = 1000
    ) -> list[tuple[int, str]]:
        """Up to ``limit`` stored records after index ``after``, as (index, JSON payload): a
        caller that filters on the payload parses only the records it keeps (keyset paging,
        so each batch starts where the last one ended)."""
        query = select(JobRecordRow.index, JobRecordRow.payload).where(
            JobRecordRow.job_id == job_id, JobRecordRow.index > after
        )
        if ok is not None:
            query = query.where(JobRecordRow.ok.is_(ok))
        query = query.order_by(JobRecordRow.index).limit(limit)
        with self.sessions() as session:
            return [(index, payload) for index, payload in session.execute(query)]

    def has_records(self, job_id: str) -> bool:
        query = select(JobRecordRow.index).where(JobRecordRow.job_id == job_id).limit(1)
        with self.sessions() as session:
            return session.scalar(query) is not None

    # -- deletion --------------------------------------------------------------------------
    def delete(self, job_id: str, *, live_since: datetime) -> JobRow | None:
        """Delete the job if it has ended and its worker is done with it (``settled``); returns
        its row as read (None: no such job). A row still queued or running, or one whose worker
        heartbeated since ``live_since`` and may still store a chunk, comes back untouched.

        A job whose provider batch may still run (its worst case held, ``_batch_may_run``:
        the job was cancelled or failed while no worker polled the batch, and the next delivery
        has not cancelled it yet, or could not) is refused with ``Conflict``: deleted, its
        holds would go with it, so the batch's cost would stop counting against its owner's cap
        while the provider runs it, and no worker would cancel it or collect it any more."""
        with self.sessions.begin() as session:
            self._lock_for_write(session)
            row = session.get(JobRow, job_id, with_for_update=self._postgres)
            if row is None or not settled(row, live_since):
                return row
            running = select(JobHoldRow.id).where(JobHoldRow.job_id == job_id, _batch_may_run())
            if session.scalar(running.limit(1)) is not None:
                raise Conflict(
                    f"job {job_id} is {row.state} but its provider batch may still be running "
                    "at the provider, its worst case held against your spending cap: the "
                    "batch is cancelled first (the job's worker does it as it handles the "
                    "job's end); delete the job once that is done",
                    job_id=job_id,
                    state=row.state,
                )
            self._delete_rows(session, [row])
            return row

    def purge_ended(self, before: datetime, limit: int, *, live_since: datetime) -> list[JobRow]:
        """Delete up to ``limit`` settled jobs that ended before ``before`` (the oldest first),
        in one transaction; returns their rows. Rows another transaction holds (a delete, a
        worker's store) are skipped, to be taken by the next call, and so are jobs whose
        provider batch may still run (as ``delete`` refuses them)."""
        batch_running = select(JobHoldRow.id).where(
            JobHoldRow.job_id == JobRow.id, _batch_may_run()
        )
        query = (
            select(JobRow)
            .where(
                JobRow.state.in_(list(TERMINAL_STATES)),
                JobRow.finished_at < before,
                or_(
                    JobRow.state == "succeeded",
                    JobRow.result_key.is_not(None),
                    JobRow.heartbeat_at.is_(None),
                    JobRow.heartbeat_at < live_since,
                ),
                ~batch_running.exists(),
            )
            .order_by(JobRow.finished_at, JobRow.id)
            .limit(limit)
        )
        if self._postgres:
            query = query.with_for_update(skip_locked=True)
        with self.sessions.begin() as session:
            self._lock_for_write(session)
            rows = list(session.scalars(query).all())
            self._delete_rows(session, rows)
            return rows

    def _lock_for_write(self, session: Session) -> None:
        """On SQLite, the database's write lock before a delete reads its rows: a worker's
        store committed between the read and the delete would lose its cost from the owner's
        spending (PostgreSQL locks the rows read instead)."""
        if not self._postgres:
            session.execute(update(JobRow).where(false()).values(id=JobRow.id))

    def _delete_rows(self, session: Session, rows: Sequence[JobRow]) -> None:
        """Delete the (locked, ended) jobs and everything stored under them. The children are
        deleted by name, not left to ``ON DELETE CASCADE``: a SQLite connection without its
        ``foreign_keys`` pragma would keep them. A job's cost moves to its owner's
        ``spent_usd``: a deleted job's spending stays spent (``SpendingStore.spend``)."""
        ids = [row.id for row in rows]
        if not ids:
            return
        for child in (JobRecordRow, OutboxRow, IdempotencyKeyRow, JobHoldRow):
            session.execute(
                delete(child)
                .where(child.job_id.in_(ids))
                .execution_options(synchronize_session=False)
            )
        session.execute(
            delete(JobRow).where(JobRow.id.in_(ids)).execution_options(synchronize_session=False)
        )
        costs: dict[str, float] = {}
        for row in rows:
            if row.cost_usd:
                costs[row.owner_id] = costs.get(row.owner_id, 0.0) + row.cost_usd
        for owner_id, cost in sorted(costs.items()):
            session.execute(
                update(UserRow)
                .where(UserRow.id == owner_id)
                .values(spent_usd=UserRow.spent_usd + cost)
                .execution_options(synchronize_session=False)
            )
