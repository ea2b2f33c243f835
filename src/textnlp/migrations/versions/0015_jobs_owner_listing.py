"""Jobs: an index on ``(owner_id, created_at, id)``, the order an owner's jobs are listed in
(``JobStore.list_for``: the jobs list, ``GET /v1/batches`` a chunk at a time after a place).
With the index on ``owner_id`` alone each page sorted all of the owner's jobs: a batch listing
of an owner with many jobs read the table once per chunk.

Revision ID: 0015_jobs_owner_listing
Revises: 0013_job_holds (the jobs branch)
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015_jobs_owner_listing"
down_revision: str | Sequence[str] | None = "0013_job_holds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_jobs_owner_listing", "jobs", ["owner_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_jobs_owner_listing", table_name="jobs")
