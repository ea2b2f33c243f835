"""Batch jobs: jobs, job records (checkpoints), outbox, queue messages, idempotency keys.

Revision ID: 0003_jobs
Revises: 0001_base
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_jobs"
down_revision: str | Sequence[str] | None = "0001_base"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("queue", sa.String(128), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("failed_records", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("result_key", sa.String(512), nullable=True),
        sa.Column("report_key", sa.String(512), nullable=True),
        sa.Column("worker", sa.String(128), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("heartbeat_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
    )
    op.create_index("ix_jobs_owner_id", "jobs", ["owner_id"])
    op.create_table(
        "job_records",
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], ondelete="CASCADE", name="fk_job_records_job_id_jobs"
        ),
        sa.PrimaryKeyConstraint("job_id", "index", name="pk_job_records"),
    )
    op.create_table(
        "job_outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("queue", sa.String(128), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], ondelete="CASCADE", name="fk_job_outbox_job_id_jobs"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_job_outbox"),
    )
    op.create_index("ix_job_outbox_pending", "job_outbox", ["sent_at", "id"])
    op.create_table(
        "queue_messages",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("queue", sa.String(128), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("group_id", sa.String(128), nullable=False),
        sa.Column("dedup_id", sa.String(128), nullable=False),
        sa.Column("receive_count", sa.Integer(), nullable=False),
        sa.Column("visible_at", sa.BigInteger(), nullable=False),
        sa.Column("receipt", sa.String(32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_queue_messages"),
    )
    op.create_index("ix_queue_messages_seq", "queue_messages", ["seq"])
    op.create_index("ix_queue_messages_ready", "queue_messages", ["queue", "visible_at", "seq"])
    op.create_table(
        "job_idempotency_keys",
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            ondelete="CASCADE",
            name="fk_job_idempotency_keys_job_id_jobs",
        ),
        sa.PrimaryKeyConstraint("owner_id", "key", name="pk_job_idempotency_keys"),
    )


def downgrade() -> None:
    op.drop_table("job_idempotency_keys")
    op.drop_index("ix_queue_messages_ready", table_name="queue_messages")
    op.drop_index("ix_queue_messages_seq", table_name="queue_messages")
    op.drop_table("queue_messages")
    op.drop_index("ix_job_outbox_pending", table_name="job_outbox")
    op.drop_table("job_outbox")
    op.drop_table("job_records")
    op.drop_index("ix_jobs_owner_id", table_name="jobs")
    op.drop_table("jobs")
