"""Users: a session epoch in place of ``sessions_after``. A token carries the epoch it was
issued in and counts only while it is the user's; ending the sessions moves the epoch on. A
timestamp in whole seconds let a token issued in the same second (a refresh racing the change)
survive it.

Users whose sessions had been ended start at epoch 1, so that their tokens from before (which
carry no epoch: 0) end too, as they had; others keep theirs.

``sessions_after`` stays (``schema.LEGACY_COLUMNS``): the previous release's tasks read it
while a deployment rolls (this migration first dropped it, and their every login was a 500).
A database migrated by that first version has no ``sessions_after``; downgrading it adds one.

Revision ID: 0007_user_session_epoch
Revises: 0006_user_sessions_after
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_user_session_epoch"
down_revision: str | Sequence[str] | None = "0006_user_sessions_after"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("session_epoch", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
    op.execute("UPDATE users SET session_epoch = 1 WHERE sessions_after > 0")


def downgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("users")}
    if "sessions_after" not in columns:
        with op.batch_alter_table("users") as batch:
            batch.add_column(
                sa.Column(
                    "sessions_after", sa.Integer(), nullable=False, server_default=sa.text("0")
                )
            )
    # Every token issued before the downgrade ends where an epoch had moved on.
    op.execute(
        "UPDATE users SET sessions_after = CAST(strftime('%s', 'now') AS INTEGER) "
        "WHERE session_epoch > 0"
        if op.get_bind().dialect.name == "sqlite"
        else "UPDATE users SET sessions_after = CAST(EXTRACT(EPOCH FROM now()) AS INTEGER) "
        "WHERE session_epoch > 0"
    )
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_epoch")
