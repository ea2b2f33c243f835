"""Jobs: ``notified_at``, when the notice of the job's end (webhook, SNS) was claimed by the one
worker that sends it. A job cancelled while queued, or while it waited for its next attempt, was
never told of (no attempt saw the cancel); the marker lets the first worker to receive its
message tell it, and a duplicate delivery tell it no second time. Jobs that had ended before
this migration count as told.

Revision ID: 0011_jobs_notified_at
Revises: 0010_jobs_finished_at (the jobs branch)
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_jobs_notified_at"
down_revision: str | Sequence[str] | None = "0010_jobs_finished_at"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE jobs SET notified_at = COALESCE(finished_at, created_at) "
        "WHERE state IN ('succeeded', 'failed', 'cancelled')"
    )


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("notified_at")
