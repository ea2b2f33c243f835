"""Jobs: the spend a running job holds against its owner's cap (``reserved_usd``): the worst
case of its priced requests in flight and the cost of those answered but not yet stored.

Revision ID: 0012_job_spend_reserved
Revises: 0011_jobs_notified_at (the jobs branch)
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_job_spend_reserved"
down_revision: str | Sequence[str] | None = "0011_jobs_notified_at"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("reserved_usd", sa.Float(), nullable=False, server_default=sa.text("0"))
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("reserved_usd")
