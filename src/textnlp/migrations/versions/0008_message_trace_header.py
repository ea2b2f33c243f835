"""Queue messages carry the trace of the request that sent them: the outbox keeps it until the
message is sent (as SQS's ``AWSTraceHeader``), and the database queue beside the body.

Revision ID: 0008_message_trace_header
Revises: 0004_job_cost (the jobs branch)
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_message_trace_header"
down_revision: str | Sequence[str] | None = "0004_job_cost"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("job_outbox", "queue_messages")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("trace_header", sa.String(256), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("trace_header")
