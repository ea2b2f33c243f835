"""Passwords (argon2id, OWASP parameters), API keys, token buckets."""

from __future__ import annotations

from argon2 import PasswordHasher

from textnlp.adapters.buckets import Lane, MemoryBuckets
from textnlp.auth import api_keys, passwords


def test_passwords_are_argon2id_with_owasp_parameters() -> None:
    stored = passwords.hash_password("s3cret-password")
    assert stored.startswith("$argon2id$")
    assert "m=19456,t=2,p=1" in stored
    assert passwords.verify_password(stored, "s3cret-password")
    assert not passwords.verify_password(stored, "S3cret-password")
    assert not passwords.verify_password("not a hash", "x")
    assert not passwords.needs_rehash(stored)
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("p")
    assert passwords.needs_rehash(weak)


def test_api_keys_are_random_parsed_and_hashed() -> None:
    one, two = api_keys.generate_api_key(), api_keys.generate_api_key()
    assert one.plaintext != two.plaintext and one.plaintext.startswith("tnlp_")
    parsed = api_keys.parse_api_key(one.plaintext)
    assert parsed is not None and parsed[0] == one.key_id
    assert one.plaintext not in one.secret_hash
    assert api_keys.secret_matches(parsed[1], one.secret_hash)
    assert not api_keys.secret_matches(parsed[1] + "x", one.secret_hash)
    for bad in ["tnlp_", "tnlp_short_x", "sk-123", "tnlp_0123456789abcdef_"]:
        assert api_keys.parse_api_key(bad) is None


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_a_burst_then_refills() -> None:
    clock = Clock()
    limiter = MemoryBuckets(clock)
    assert [limiter.take("u", [Lane(2.0, 3)]) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.take("u", [Lane(2.0, 3)])
    assert 0.49 < wait <= 0.5
    assert limiter.take("other", [Lane(2.0, 3)]) == 0.0  # buckets are per key
    clock.now += 0.5
    assert limiter.take("u", [Lane(2.0, 3)]) == 0.0
    clock.now += 100
    assert [limiter.take("u", [Lane(2.0, 3)]) for _ in range(4)][-1] > 0  # never above the burst
