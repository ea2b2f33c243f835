"""Users: names unique whatever their case, in the database itself. The application checked
``lower(username)`` before inserting, but two replicas (or two ``textnlp users create``) could
both pass the check before either inserted; the unique index on ``lower(username)`` refuses
the second.

A database that already holds two names differing only in case (made by that race) cannot take
the index: the upgrade stops and names them, for an operator to disable and rename one first.

Revision ID: 0009_username_lower_unique
Revises: 0007_user_session_epoch (the auth branch)
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_username_lower_unique"
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
        raise RuntimeError(
            "users whose names differ only in case: "
            + ", ".join(names)
            + "; rename or delete all but one of each before upgrading"
        )
    op.create_index(INDEX, "users", [sa.text("lower(username)")], unique=True)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="users")
