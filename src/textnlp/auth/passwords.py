"""Password hashing with argon2id at OWASP's recommended parameters.

OWASP Password Storage Cheat Sheet: argon2id, m = 19 MiB, t = 2, p = 1 (the minimum it
recommends; raise ``memory_cost`` where the hosts allow). Hashes carry their parameters, so
``needs_rehash`` tells when a stored hash was made with weaker ones.
"""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

OWASP_MEMORY_KIB = 19 * 1024
OWASP_TIME_COST = 2
OWASP_PARALLELISM = 1

# A hash of a random password: verifying against it when the user does not exist keeps the
# time of a failed login the same whether or not the name is known.
_HASHER = PasswordHasher(
    time_cost=OWASP_TIME_COST,
    memory_cost=OWASP_MEMORY_KIB,
    parallelism=OWASP_PARALLELISM,
    hash_len=32,
    salt_len=16,
    type=Type.ID,
)
_DUMMY_HASH: str | None = None


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _HASHER.check_needs_rehash(password_hash)


def burn_verification(password: str) -> None:
    """Spend one verification's time (for unknown users)."""
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = _HASHER.hash("textnlp-dummy-password")
    verify_password(_DUMMY_HASH, password)
