"""Auth changes racing each other, as two API replicas or two ``textnlp users`` processes
sharing one database would run them: on SQLite and on the real PostgreSQL.

Each race is made, not hoped for: a hook on the app's engine holds every contender just before
the statement where the race is decided (``meet_before``), so that without serialisation each
would have passed its check before any other wrote. Where the code serialises the contenders,
the first waits there alone until the meeting gives up (``MEETING_S``) and goes on; the others
run after it.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import pytest
from sqlalchemy import event

from tests.support.api import PASSWORD, Api
from textnlp.errors import AuthError, Conflict

#: How long a contender waits for the others at the meeting point before going on alone.
MEETING_S = 3.0


@contextmanager
def meet_before(engine: Any, statement: str, parties: int) -> Iterator[None]:
    """Hold each connection about to run a statement starting with ``statement`` until
    ``parties`` of them are there (or ``MEETING_S`` passed)."""
    barrier = threading.Barrier(parties)

    def hold(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        if sql.lstrip().upper().startswith(statement.upper()):
            # Broken: serialised, the others wait for this one's transaction.
            with suppress(threading.BrokenBarrierError):
                barrier.wait(MEETING_S)

    event.listen(engine, "before_cursor_execute", hold)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", hold)


def race(*calls: Callable[[], object]) -> list[object]:
    """Run ``calls`` at once, each in a thread of its own; what each returned or raised."""
    results: list[object] = [None] * len(calls)

    def run(index: int) -> None:
        try:
            results[index] = calls[index]()
        except Exception as exc:  # the outcome under test
            results[index] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def _auth(api: Api) -> Any:
    return api.client.app.state.auth  # type: ignore[attr-defined]


def _engine(api: Api) -> Any:
    return _auth(api).sessions.kw["bind"]


@pytest.mark.parametrize(
    ("first", "second"),
    [("Case2", "case2"), ("lookalike", "IookaIike")],
    ids=["by-case", "lookalike"],
)
def test_of_two_names_created_at_once_that_no_login_could_tell_apart_one_is_refused(
    api: Api, first: str, second: str
) -> None:
    auth = _auth(api)
    with meet_before(_engine(api), "INSERT INTO users", 2):
        results = race(
            lambda: auth.create_user(first, PASSWORD), lambda: auth.create_user(second, PASSWORD)
        )
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 1, results
    assert isinstance(refused[0], Conflict), repr(refused[0])
    names = {u.username for u in auth.users()}
    assert len(names & {first, second}) == 1


def test_the_database_refuses_a_second_name_by_case_itself(api: Api) -> None:
    """The unique index on lower(username) holds where no check ran before the insert."""
    from sqlalchemy.exc import IntegrityError

    from textnlp.adapters.db.users import UserRow

    auth = _auth(api)
    auth.create_user("Indexed", PASSWORD)
    with pytest.raises(IntegrityError), auth.sessions.begin() as session:
        session.add(UserRow(id=str(uuid.uuid4()), username="INDEXED", password_hash="x"))
        session.flush()
    assert [u.username for u in auth.users() if u.username.lower() == "indexed"] == ["Indexed"]


def test_two_operators_disabling_or_demoting_the_last_two_admins_leave_one(api: Api) -> None:
    auth = _auth(api)
    auth.create_user("second-admin", PASSWORD, "admin")

    def admins() -> set[str]:
        return {u.username for u in auth.users() if u.is_admin and u.active}

    assert admins() == {"admin", "second-admin"}
    with meet_before(_engine(api), "UPDATE users SET", 2):
        results = race(
            lambda: auth.set_active("admin", False), lambda: auth.set_role("second-admin", "user")
        )
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 1, results
    assert isinstance(refused[0], Conflict) and "last active admin" in str(refused[0])
    assert len(admins()) == 1
    # Back to the module's users: admin an active admin, second-admin a plain user.
    auth.set_active("admin", True)
    auth.set_role("admin", "admin")
    auth.set_role("second-admin", "user")
    assert admins() == {"admin"}


def test_two_logouts_of_one_token_at_once_both_succeed(api: Api) -> None:
    auth = _auth(api)
    token = api.login("alice")["access_token"]
    claims = auth.authenticate(token).claims
    with meet_before(_engine(api), "INSERT INTO revoked_tokens", 2):
        results = race(lambda: auth.logout(claims), lambda: auth.logout(claims))
    assert results == [None, None]
    bearer = {"Authorization": f"Bearer {token}"}
    assert api.client.get("/api/v1/models/list", headers=bearer).status_code == 401


def test_of_two_refreshes_with_one_token_at_once_one_wins_and_keeps_the_session(
    api: Api,
) -> None:
    auth = _auth(api)
    refresh_token = api.login("bob")["refresh_token"]
    with meet_before(_engine(api), "UPDATE token_families", 2):
        results = race(lambda: auth.refresh(refresh_token), lambda: auth.refresh(refresh_token))
    won = [r for r in results if not isinstance(r, Exception)]
    lost = [r for r in results if isinstance(r, Exception)]
    assert len(won) == 1 and len(lost) == 1, results
    assert isinstance(lost[0], AuthError)
    pair = won[0]
    bearer = {"Authorization": f"Bearer {pair.access_token}"}  # type: ignore[attr-defined]
    assert api.client.get("/api/v1/models/list", headers=bearer).status_code == 200
    assert auth.refresh(pair.refresh_token).access_token  # type: ignore[attr-defined]
