"""Validation aggregates per user (``validation_owner_stats``): ``GET /validate/metrics``
answered every caller with everyone's aggregates, from which the difference before and after
another user's validation is that validation's measures. A user is now shown their own; the
table of everyone's (``validation_stats``) stays as it is, for administrators and for the
previous release's code while a deployment rolls. Validations made before this revision count
in everyone's aggregates only.

Revision ID: 0014_validation_owner_stats
Revises: 0009_auth_races (the auth branch)
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_validation_owner_stats"
down_revision: str | Sequence[str] | None = "0009_auth_races"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "validation_owner_stats",
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.Column("minimum", sa.Float(), nullable=False),
        sa.Column("maximum", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(
            "owner_id", "kind", "metric", name=op.f("pk_validation_owner_stats")
        ),
    )


def downgrade() -> None:
    op.drop_table("validation_owner_stats")
