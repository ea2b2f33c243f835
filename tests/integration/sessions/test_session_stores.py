"""One behaviour, every session store: the database's tables (SQLite and PostgreSQL) and the
DynamoDB table (moto's server): families, rotation, reuse, revocation, expiry.

Real parts: a migrated SQLite file, the machine's PostgreSQL (a schema of its own), moto's
server on 127.0.0.1 for DynamoDB.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.support.api import postgres_schema_url
from tests.support.sessions import create_session_table, dynamodb, items
from textnlp.adapters.db.base import make_engine, make_sessionmaker
from textnlp.adapters.db.schema import prepare_schema, upgrade_database
from textnlp.adapters.db.tokens import TokenFamilyRow
from textnlp.adapters.db.users import User, UserRepository
from textnlp.adapters.sessions import SessionStore, open_session_store
from textnlp.config import load_settings
from textnlp.errors import ServiceUnavailable

HOUR = 3600.0


@dataclass
class Subject:
    store: SessionStore
    alice: User
    bob: User
    dynamodb: Any = None
    table: str = ""


def _users(url: str) -> tuple[Any, User, User]:
    """A sessionmaker on ``url`` (migrated) holding two users."""
    engine = make_engine(url)
    prepare_schema(engine)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        repo = UserRepository(session)
        alice = repo.create(f"alice-{uuid.uuid4().hex[:6]}", "hash")
        bob = repo.create(f"bob-{uuid.uuid4().hex[:6]}", "hash")
    return sessions, alice, bob


def _sqlite_subject(tmp_path: Path) -> tuple[Any, User, User]:
    url = f"sqlite:///{tmp_path / 'sessions.db'}"
    upgrade_database(url)
    return _users(url)


def _dynamodb_subject(endpoint: str, tmp_path: Path) -> Subject:
    sessions, alice, bob = _sqlite_subject(tmp_path)  # users stay in the database
    client = dynamodb(endpoint)
    table = create_session_table(client)
    settings = load_settings(
        auth={"session_store": "dynamodb", "session_table": table},
        aws={"region": "us-east-1", "endpoint_url": endpoint},
    )
    return Subject(open_session_store(settings, sessions), alice, bob, client, table)


@pytest.fixture(params=["sqlite", "postgres", "dynamodb"])
def subject(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Subject]:
    """Each store, with two users in the database."""
    if request.param == "postgres":
        for url in postgres_schema_url():
            sessions, alice, bob = _users(url)
            yield Subject(open_session_store(load_settings(), sessions), alice, bob)
            sessions.kw["bind"].dispose()  # the engine, before its schema is dropped
    elif request.param == "sqlite":
        sessions, alice, bob = _sqlite_subject(tmp_path)
        yield Subject(open_session_store(load_settings(), sessions), alice, bob)
    else:
        yield _dynamodb_subject(request.getfixturevalue("aws_env"), tmp_path)


def later(hours: float = 1.0) -> float:
    return time.time() + hours * HOUR


def test_a_new_family_holds_its_user(subject: Subject) -> None:
    store, alice = subject.store, subject.alice
    store.start_family("f1", alice.id, "r1", later())
    assert store.access_holder(alice.id, "f1", "a1") == alice
    # Another user's token naming this family, or an unknown family, holds nobody.
    assert store.access_holder(subject.bob.id, "f1", "a1") is None
    assert store.access_holder(alice.id, "no-such-family", "a1") is None


def test_rotation_moves_the_family_and_a_stale_token_is_refused(subject: Subject) -> None:
    store, alice = subject.store, subject.alice
    store.start_family("f2", alice.id, "r1", later())
    assert store.rotate("f2", "r1", "r2", later(2))
    assert not store.rotate("f2", "r1", "r3", later(2))  # r1 was used
    assert store.rotate("f2", "r2", "r3", later(2))
    assert store.access_holder(alice.id, "f2", "a3") == alice
    assert not store.rotate("unknown", "r1", "r2", later())


def test_a_family_knows_the_token_it_last_rotated_from_and_when(subject: Subject) -> None:
    store, alice = subject.store, subject.alice
    before = time.time() - 1
    store.start_family("g1", alice.id, "r1", later())
    assert not store.rotated_from("g1", "r1", before)  # not rotated yet
    assert store.rotate("g1", "r1", "r2", later())
    assert store.rotated_from("g1", "r1", before)
    assert not store.rotated_from("g1", "r1", time.time() + 5)  # rotated before ``since``
    assert not store.rotated_from("g1", "r2", before)  # the current token
    assert not store.rotated_from("unknown", "r1", before)
    assert store.rotate("g1", "r2", "r3", later())
    assert not store.rotated_from("g1", "r1", before)  # only the last rotation counts
    assert store.rotated_from("g1", "r2", before)
    store.revoke_family("g1")
    assert not store.rotated_from("g1", "r2", before)


def test_a_session_is_its_familys_current_refresh_token(subject: Subject) -> None:
    store, alice = subject.store, subject.alice
    store.start_family("s1", alice.id, "r1", later())
    assert store.session_holder(alice.id, "s1", "r1") == alice
    assert store.session_holder(subject.bob.id, "s1", "r1") is None  # not bob's family
    assert store.rotate("s1", "r1", "r2", later())
    assert store.session_holder(alice.id, "s1", "r1") is None  # rotated past
    assert store.session_holder(alice.id, "s1", "r2") == alice
    store.revoke_family("s1")
    assert store.session_holder(alice.id, "s1", "r2") is None
    assert store.session_holder(alice.id, "no-such-family", "r1") is None


def test_concurrent_rotations_with_one_token_have_one_winner(subject: Subject) -> None:
    store, alice = subject.store, subject.alice
    store.start_family("f3", alice.id, "r1", later())
    contenders = 6
    barrier = threading.Barrier(contenders)
    results: list[bool] = []
    lock = threading.Lock()

    def refresh(n: int) -> None:
        barrier.wait()
        won = store.rotate("f3", "r1", f"next-{n}", later(2))
        with lock:
            results.append(won)

    threads = [threading.Thread(target=refresh, args=(n,)) for n in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == [False] * (contenders - 1) + [True]
    # The family moved to the winner's token, and only that one rotates on.
    onwards = [n for n in range(contenders) if store.rotate("f3", f"next-{n}", f"r-{n}", later())]
    assert len(onwards) == 1


def test_a_revoked_family_holds_nobody_and_cannot_rotate(subject: Subject) -> None:
    store, alice = subject.store, subject.alice
    store.start_family("f4", alice.id, "r1", later())
    store.revoke_family("f4")
    assert store.access_holder(alice.id, "f4", "a1") is None
    assert not store.rotate("f4", "r1", "r2", later())
    store.revoke_family("f4")  # again: no error
    store.revoke_family("never-started")  # unknown: no error, nothing created
    assert store.access_holder(alice.id, "never-started", "a1") is None


def test_a_revoked_access_token_is_refused_and_only_it(subject: Subject) -> None:
    store, alice = subject.store, subject.alice
    store.start_family("f5", alice.id, "r1", later())
    store.revoke_jti("a1", later(0.25))
    store.revoke_jti("a1", later(0.25))  # a second logout of the same token
    assert store.access_holder(alice.id, "f5", "a1") is None
    assert store.access_holder(alice.id, "f5", "a2") == alice


def test_an_expired_family_holds_nobody(subject: Subject) -> None:
    store, alice = subject.store, subject.alice
    store.start_family("f6", alice.id, "r1", time.time() - 5)
    store.start_family("f7", alice.id, "r1", later())
    assert store.access_holder(alice.id, "f6", "a1") is None
    store.purge_expired()
    assert store.access_holder(alice.id, "f6", "a1") is None
    assert store.access_holder(alice.id, "f7", "a1") == alice


def test_database_purge_forgets_what_expired(tmp_path: Path) -> None:
    sessions, alice, _ = _sqlite_subject(tmp_path)
    store = open_session_store(load_settings(), sessions)
    store.start_family("old", alice.id, "r1", time.time() - 5)
    store.purge_expired()
    with sessions() as session:
        left = session.scalar(
            select(func.count()).select_from(TokenFamilyRow).where(TokenFamilyRow.id == "old")
        )
    assert left == 0


def test_dynamodb_items_carry_their_ttl_and_nothing_else_is_written(
    aws_env: str, tmp_path: Path
) -> None:
    subject = _dynamodb_subject(aws_env, tmp_path)
    store, client, table = subject.store, subject.dynamodb, subject.table
    expiry = later()
    store.start_family("f8", subject.alice.id, "r1", expiry)
    store.revoke_jti("a1", expiry)
    store.revoke_family("never-started")
    stored = {item["pk"]["S"]: item for item in items(client, table)}
    assert set(stored) == {"family#f8", "jti#a1"}
    assert all(int(item["expires_at"]["N"]) == int(expiry) for item in stored.values())
    assert stored["family#f8"]["user_id"] == {"S": subject.alice.id}
    ttl = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}


def test_an_unreachable_dynamodb_is_service_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import free_port

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    sessions, alice, _ = _sqlite_subject(tmp_path)
    settings = load_settings(
        auth={"session_store": "dynamodb", "session_table": "sessions"},
        aws={"region": "us-east-1", "endpoint_url": f"http://127.0.0.1:{free_port()}"},
    )
    store = open_session_store(settings, sessions)
    with pytest.raises(ServiceUnavailable) as caught:
        store.access_holder(alice.id, "f", "a")
    assert caught.value.details["dependency"] == "sessions"
    with pytest.raises(ServiceUnavailable):
        store.start_family("f", alice.id, "r", later())


def test_logins_forget_expired_families_without_any_logout(tmp_path: Path) -> None:
    """Expired families were purged at logouts only: API clients that let their tokens expire
    grew the table without bound."""
    from textnlp.auth.service import AuthService
    from textnlp.auth.tokens import TokenService

    sessions, alice, _ = _sqlite_subject(tmp_path)
    settings = load_settings(home=tmp_path)
    auth = AuthService(sessions, TokenService(settings.auth))
    auth.create_user("carol", "a-long-password-1")
    auth.store.start_family("old", alice.id, "r1", time.time() - 5)
    auth.login("carol", "a-long-password-1")
    with sessions() as session:
        families = set(session.scalars(select(TokenFamilyRow.id)))
    assert "old" not in families and len(families) == 1  # carol's own session stays


def test_a_purge_that_fails_fails_no_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The purge ran before the credentials were checked, outside any error handling: a lock
    on the revocation tables made every login a 503."""
    from textnlp.auth.service import AuthService
    from textnlp.auth.tokens import TokenService

    sessions, _, _ = _sqlite_subject(tmp_path)
    auth = AuthService(sessions, TokenService(load_settings(home=tmp_path).auth))
    auth.create_user("carol", "a-long-password-1")

    def locked(now: float | None = None) -> None:
        raise ServiceUnavailable("the database did not answer in time", dependency="database")

    monkeypatch.setattr(auth.store, "purge_expired", locked)
    assert auth.login("carol", "a-long-password-1").access_token
