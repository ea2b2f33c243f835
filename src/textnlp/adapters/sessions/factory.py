"""Build the session store of the settings (the only place that knows the implementations)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textnlp.adapters.sessions.base import SessionStore
from textnlp.config import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import sessionmaker

    from textnlp.adapters.db.users import User


def dynamodb_client(settings: Settings) -> Any:
    import boto3
    from botocore.config import Config

    # Every authenticated request reads the store: short timeouts, so an outage answers 503
    # quickly instead of holding the API's threads.
    return boto3.client(
        "dynamodb",
        region_name=settings.aws.region,
        endpoint_url=settings.aws.endpoint_url,
        config=Config(
            connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3}
        ),
    )


def open_session_store(
    settings: Settings, sessions: sessionmaker[Any], *, client: Any = None
) -> SessionStore:
    """The database's tables, or the DynamoDB table ``auth.session_table`` (users are read
    from the database either way)."""
    auth = settings.auth
    if auth.session_store == "dynamodb":
        from textnlp.adapters.db.users import UserRepository
        from textnlp.adapters.sessions.dynamodb import DynamoDbSessionStore

        def user(user_id: str) -> User | None:
            with sessions() as session:
                return UserRepository(session).get(user_id)

        return DynamoDbSessionStore(client or dynamodb_client(settings), auth.session_table, user)
    from textnlp.adapters.sessions.database import DatabaseSessionStore

    return DatabaseSessionStore(sessions)
