"""API keys for service accounts: ``tnlp_<key id>_<secret>``, shown once, SHA-256 at rest.

The secret is 32 random bytes, so a fast hash is enough (no dictionary to attack, unlike
passwords); the key id finds the row without scanning, and the comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

PREFIX = "tnlp_"


@dataclass(frozen=True)
class NewApiKey:
    key_id: str
    secret_hash: str
    #: The full key, to show once to its owner.
    plaintext: str


def generate_api_key() -> NewApiKey:
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return NewApiKey(key_id, hash_secret(secret), f"{PREFIX}{key_id}_{secret}")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_api_key(key: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key, else None."""
    if not key.startswith(PREFIX):
        return None
    key_id, sep, secret = key[len(PREFIX) :].partition("_")
    if not sep or len(key_id) != 16 or not secret:
        return None
    return key_id, secret


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def is_api_key(credential: str) -> bool:
    return credential.startswith(PREFIX)
