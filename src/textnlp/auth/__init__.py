"""Authentication: argon2id passwords, JWT access/refresh tokens, API keys, rate limits.

``tokens``, ``jwt_rules`` and ``session_items`` (the session table's items and liveness rule)
are pure (stdlib + PyJWT) so the Lambda authorizer can use them; the use cases over the
database and the session store (users, sessions, keys) live in ``service``.
"""
