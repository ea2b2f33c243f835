"""Users: a spending cap of their own and the cost of their direct generations.

Revision ID: 0005_user_spending
Revises: 0002_auth
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_user_spending"
down_revision: str | Sequence[str] | None = "0002_auth"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("spending_cap_usd", sa.Float(), nullable=True))
        batch.add_column(
            sa.Column("spent_usd", sa.Float(), nullable=False, server_default=sa.text("0"))
        )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("spent_usd")
        batch.drop_column("spending_cap_usd")
