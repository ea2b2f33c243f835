"""The session store (refresh-token families, revocations): database tables or DynamoDB."""

from textnlp.adapters.sessions.base import SessionStore
from textnlp.adapters.sessions.factory import open_session_store

__all__ = ["SessionStore", "open_session_store"]
