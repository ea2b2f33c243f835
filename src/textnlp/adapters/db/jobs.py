"""Tables of batch jobs: jobs, their records (the checkpoint), the outbox, queue messages and
idempotency keys. Alembic revision ``0003_jobs`` creates them; ``0004_job_cost`` adds the
jobs' cost, ``0013_job_holds`` what a job's runs hold against its owner's cap,
``0015_jobs_owner_listing`` the index an owner's jobs are listed by.

Records are keyed by (job id, record index) and inserted with ``ON CONFLICT DO NOTHING``: a
record is a pure function of (job seed, index), so whichever worker stores it first wins and a
redelivered job only generates the indices that are missing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from textnlp.adapters.db.base import Base


class JobRow(Base):
    __tablename__ = "jobs"
    #: An owner's jobs newest first, a page after a place (``JobStore.list_for``; 0015).
    __table_args__ = (Index("ix_jobs_owner_listing", "owner_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    #: The submitted request (``JobSpec`` as JSON).
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    queue: Mapped[str] = mapped_column(String(128))
    total: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer, default=0)
    failed_records: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    result_key: Mapped[str | None] = mapped_column(String(512), default=None)
    report_key: Mapped[str | None] = mapped_column(String(512), default=None)
    worker: Mapped[str | None] = mapped_column(String(128), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    #: Indexed for the retention purge, which takes the jobs that ended first (migration 0010).
    finished_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=None, index=True
    )
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    #: When a worker claimed the notice of the job's end (``JobStore.claim_notice``): it is sent
    #: once, whichever worker ends the job or receives its message after a cancel (migration 0011).
    notified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    #: Estimated cost in US dollars of the stored records (None while none had a price); it
    #: grows in the transaction that stores each chunk, by the records that chunk added.
    cost_usd: Mapped[float | None] = mapped_column(Float, default=None)


class JobHoldRow(Base):
    """What one run of a job holds against its owner's spending cap (migration 0013): the worst
    case of its priced requests in flight and the cost of those answered but not yet stored
    (a store moves it to the job's ``cost_usd``), under a lease its worker renews while the run
    goes on. A worker that dies stops renewing, and its hold stops counting when the lease runs
    out, whether or not the job is picked up again; two runs of one job (a duplicate delivery)
    never erase each other's. The worst case of a provider batch the run submitted or took over
    is held apart (``batch_usd``), for as long as the provider may run it: the batch runs on,
    and is paid, whatever becomes of the run, until the job's next run holds it again
    (``adapters.db.spending``)."""

    __tablename__ = "job_holds"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    job_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("jobs.id", ondelete="CASCADE"), index=True
    )
    #: The job's owner: their spend sums their holds without reading the jobs.
    owner_id: Mapped[str] = mapped_column(String(64), index=True)
    amount_usd: Mapped[float] = mapped_column(Float, default=0.0)
    #: The lease: ``amount_usd`` counts until then.
    held_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    batch_usd: Mapped[float] = mapped_column(Float, default=0.0)
    #: ``batch_usd`` counts until then (None: no batch held).
    batch_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class JobRecordRow(Base):
    __tablename__ = "job_records"

    job_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    ok: Mapped[bool] = mapped_column(Boolean)
    #: The ``Record`` as JSON.
    payload: Mapped[str] = mapped_column(Text)


class OutboxRow(Base):
    """A message to send, written in the transaction that stores its job."""

    __tablename__ = "job_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(32), ForeignKey("jobs.id", ondelete="CASCADE"))
    queue: Mapped[str] = mapped_column(String(128))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    #: The trace of the request that wrote it, sent beside the body (see ``QueueMessage``).
    trace_header: Mapped[str | None] = mapped_column(String(256), default=None)

    __table_args__ = (Index("ix_job_outbox_pending", "sent_at", "id"),)


class QueueMessageRow(Base):
    """A message of the database queue (the local profile's SQS)."""

    __tablename__ = "queue_messages"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, index=True)
    queue: Mapped[str] = mapped_column(String(128))
    body: Mapped[str] = mapped_column(Text)
    group_id: Mapped[str] = mapped_column(String(128))
    dedup_id: Mapped[str] = mapped_column(String(128))
    receive_count: Mapped[int] = mapped_column(Integer, default=0)
    #: Epoch milliseconds from which the message may be received.
    visible_at: Mapped[int] = mapped_column(BigInteger)
    receipt: Mapped[str | None] = mapped_column(String(32), default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    trace_header: Mapped[str | None] = mapped_column(String(256), default=None)

    __table_args__ = (Index("ix_queue_messages_ready", "queue", "visible_at", "seq"),)


class IdempotencyKeyRow(Base):
    __tablename__ = "job_idempotency_keys"

    owner_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[str] = mapped_column(String(32), ForeignKey("jobs.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
