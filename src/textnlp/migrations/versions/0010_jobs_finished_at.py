"""Jobs: an index on ``finished_at``, for the operator's retention (``textnlp jobs purge``),
which deletes the jobs that ended before a date, the oldest first, a batch at a time: without
it each batch read the whole table.

Revision ID: 0010_jobs_finished_at
Revises: 0008_message_trace_header (the jobs branch)
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010_jobs_finished_at"
down_revision: str | Sequence[str] | None = "0008_message_trace_header"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_jobs_finished_at", "jobs", ["finished_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_finished_at", table_name="jobs")
