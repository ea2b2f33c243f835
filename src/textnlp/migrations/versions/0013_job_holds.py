"""Jobs: what each run of a job holds against its owner's spending cap, under a lease
(``job_holds``). ``jobs.reserved_usd`` (0012) was one figure per job, reset by the job's next
attempt: a worker that died left its holds counted until the job's message came back (the
queue's visibility timeout, an hour in production), and two runs of one job erased each
other's. A run's hold now stops counting when its lease runs out; the worst case of a provider
batch it holds lasts as long as the provider may run the batch.

``jobs.reserved_usd`` stays for the previous release's workers while a deployment rolls (what
they hold meanwhile is not counted by the new release: a few minutes of one deployment); a
later migration drops it.

Revision ID: 0013_job_holds
Revises: 0012_job_spend_reserved (the jobs branch)
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_job_holds"
down_revision: str | Sequence[str] | None = "0012_job_spend_reserved"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_holds",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "job_id",
            sa.String(32),
            sa.ForeignKey("jobs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("amount_usd", sa.Float(), nullable=False),
        sa.Column("held_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("batch_usd", sa.Float(), nullable=False),
        sa.Column("batch_until", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_job_holds_job_id", "job_holds", ["job_id"])
    op.create_index("ix_job_holds_owner_id", "job_holds", ["owner_id"])


def downgrade() -> None:
    op.drop_index("ix_job_holds_owner_id", table_name="job_holds")
    op.drop_index("ix_job_holds_job_id", table_name="job_holds")
    op.drop_table("job_holds")
