"""Authentication: argon2id passwords, JWT access/refresh tokens, API keys, rate limits.

``tokens`` is pure (stdlib + PyJWT) so the Lambda authorizer can use it; everything that needs
the database (users, revocations, keys) lives in ``service``.
"""
