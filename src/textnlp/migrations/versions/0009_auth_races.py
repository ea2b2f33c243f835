"""Users: names unique whatever their case, in the database itself. The application checked
``lower(username)`` before inserting, but two replicas (or two ``textnlp users create``) could
both pass the check before either inserted; the unique index on ``lower(username)`` refuses
the second.
A database that already holds two names differing only in case (made by that race) cannot take
the index: the upgrade stops (``Conflict``: one line from ``textnlp db upgrade``) and names
them, for an operator to rename or delete all but one. SQLite's reflection cannot see an index
on an expression: a later ``batch_alter_table("users")`` would rebuild the table without it,
and must create it again.

Refresh-token families: the token of the last rotation and when it happened
(``previous_jti``, ``rotated_at``), so that the loser of two concurrent refreshes with the
same token is told apart from a leaked token replayed later (``auth.refresh_reuse_grace_s``).

Revision ID: 0009_auth_races
Revises: 0007_user_session_epoch (the auth branch)
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from textnlp.errors import Conflict

revision: str = "0009_auth_races"
down_revision: str | Sequence[str] | None = "0007_user_session_epoch"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "uq_users_username_lower"


def upgrade() -> None:
    clashes = op.get_bind().execute(
        sa.text(
            "SELECT username FROM users WHERE lower(username) IN "
            "(SELECT lower(username) FROM users GROUP BY lower(username) HAVING count(*) > 1) "
            "ORDER BY lower(username), username"
        )
    )
    names = [str(name) for (name,) in clashes]
    if names:
        raise Conflict(
            "users whose names differ only in case: "
            + ", ".join(names)
            + "; rename or delete all but one of each before upgrading"
        )
    op.create_index(INDEX, "users", [sa.text("lower(username)")], unique=True)
    with op.batch_alter_table("token_families") as batch:
        batch.add_column(sa.Column("previous_jti", sa.String(32), nullable=True))
        batch.add_column(sa.Column("rotated_at", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_index(INDEX, table_name="users")
    with op.batch_alter_table("token_families") as batch:
        batch.drop_column("rotated_at")
        batch.drop_column("previous_jti")
