"""Auth through HTTP on SQLite and PostgreSQL: login, rotation, reuse, logout, keys, roles."""

from __future__ import annotations

import re
import time

import jwt
import pytest

from tests.support.api import PASSWORD, Api, without_reuse_grace

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
KEYS = "/api/v1/auth/api-keys"
MODELS = "/api/v1/models/list"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(response: object, status: int, kind: str | None = None) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()["error"]  # type: ignore[attr-defined]
    assert isinstance(body["message"], str)
    if kind is not None:
        assert body["type"] == kind
    return body  # type: ignore[no-any-return]


def test_login_answers_bearer_tokens(api: Api) -> None:
    body = api.login("alice")
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == api.settings.auth.access_ttl_s
    assert api.client.get(MODELS, headers=bearer(body["access_token"])).status_code == 200


def test_bad_password_and_unknown_user_answer_the_same(api: Api) -> None:
    wrong = api.client.post(LOGIN, json={"username": "alice", "password": "nope-nope"})
    unknown = api.client.post(LOGIN, json={"username": "mallory", "password": "nope-nope"})
    assert assert_error(wrong, 401, "authentication_error") == assert_error(unknown, 401)
    assert "WWW-Authenticate" in wrong.headers


def test_refresh_rotates_and_reuse_revokes_the_family(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = api.login("alice")
    second = api.client.post(REFRESH, json={"refresh_token": first["refresh_token"]}).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert api.client.get(MODELS, headers=bearer(second["access_token"])).status_code == 200
    # The rotated-out token comes back past the grace (none here): a thief or a replay. The
    # whole family dies.
    without_reuse_grace(api, monkeypatch)
    replay = api.client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert_error(replay, 401, "authentication_error")
    assert_error(api.client.get(MODELS, headers=bearer(second["access_token"])), 401)
    assert_error(api.client.post(REFRESH, json={"refresh_token": second["refresh_token"]}), 401)
    # Another login of the same user is untouched.
    other = api.login("alice")
    assert api.client.get(MODELS, headers=bearer(other["access_token"])).status_code == 200


def test_a_token_presented_again_just_after_its_rotation_is_refused_alone(api: Api) -> None:
    """The loser of two refreshes sent at once (two tabs, a retry): its token was rotated a
    moment ago, within ``auth.refresh_reuse_grace_s``. Refused, and the winner's session lives."""
    first = api.login("alice")
    second = api.client.post(REFRESH, json={"refresh_token": first["refresh_token"]}).json()
    late = api.client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert "a moment ago" in str(assert_error(late, 401, "authentication_error")["message"])
    assert api.client.get(MODELS, headers=bearer(second["access_token"])).status_code == 200
    third = api.client.post(REFRESH, json={"refresh_token": second["refresh_token"]})
    assert third.status_code == 200, third.text
    # Only the token rotated last is forgiven: the first, two rotations back, is a leak.
    replay = api.client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert "session is closed" in str(assert_error(replay, 401)["message"])
    assert_error(api.client.get(MODELS, headers=bearer(third.json()["access_token"])), 401)


def test_logout_revokes_the_access_token_and_its_family(api: Api) -> None:
    tokens = api.login("bob")
    assert api.client.post(LOGOUT, headers=bearer(tokens["access_token"])).status_code == 200
    assert_error(api.client.get(MODELS, headers=bearer(tokens["access_token"])), 401)
    assert_error(api.client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]}), 401)


def test_refresh_token_is_never_an_access_token(api: Api) -> None:
    tokens = api.login("alice")
    assert_error(api.client.get(MODELS, headers=bearer(tokens["refresh_token"])), 401)
    assert_error(api.client.post(REFRESH, json={"refresh_token": tokens["access_token"]}), 401)


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_forged_tokens_are_refused(api: Api) -> None:
    claims = jwt.decode(api.login("alice")["access_token"], options={"verify_signature": False})
    secret = api.settings.auth.jwt_secret.get_secret_value()
    forged = {
        "alg none": jwt.encode({**claims, "role": "admin"}, None, algorithm="none"),
        "wrong key": jwt.encode(claims, "another-key-of-enough-length-0123456789", "HS256"),
        "expired": jwt.encode({**claims, "exp": int(time.time()) - 60}, secret, "HS256"),
        "wrong audience": jwt.encode({**claims, "aud": "someone-else"}, secret, "HS256"),
        "wrong issuer": jwt.encode({**claims, "iss": "evil"}, secret, "HS256"),
        "other algorithm": jwt.encode(claims, secret, "HS512"),
    }
    for name, token in forged.items():
        response = api.client.get(MODELS, headers=bearer(token))
        assert response.status_code == 401, name


def test_missing_and_garbage_credentials(api: Api) -> None:
    assert_error(api.client.get(MODELS), 401, "authentication_error")
    assert_error(api.client.get(MODELS, headers=bearer("not.a.jwt")), 401)
    assert_error(api.client.get(MODELS, headers={"Authorization": "Basic YWxpY2U6eA=="}), 401)
    assert_error(api.client.get(MODELS, headers=bearer("tnlp_0123456789abcdef_nope")), 401)


def test_api_keys_are_shown_once_work_and_are_owned(api: Api) -> None:
    created = api.client.post(KEYS, json={"name": "ci"}, headers=api.headers("alice"))
    assert created.status_code == 201
    key = created.json()["key"]
    assert api.client.get(MODELS, headers={"X-API-Key": key}).status_code == 200
    assert api.client.get(MODELS, headers=bearer(key)).status_code == 200
    listed = api.client.get(KEYS, headers=api.headers("alice")).json()["data"]
    assert key not in str(listed)
    key_id = created.json()["id"]
    # Bob cannot see or revoke Alice's key: it does not exist for him.
    assert key_id not in str(api.client.get(KEYS, headers=api.headers("bob")).json())
    assert_error(api.client.delete(f"{KEYS}/{key_id}", headers=api.headers("bob")), 404)
    assert api.client.get(MODELS, headers={"X-API-Key": key}).status_code == 200
    assert api.client.delete(f"{KEYS}/{key_id}", headers=api.headers("alice")).status_code == 200
    assert_error(api.client.get(MODELS, headers={"X-API-Key": key}), 401)


def test_admin_routes_are_for_admins(api: Api) -> None:
    for method, path in [("GET", "/api/v1/admin/metrics"), ("POST", "/api/v1/admin/cache/clear")]:
        assert_error(
            api.client.request(method, path, headers=api.headers("alice")), 403, "permission_denied"
        )
        assert_error(api.client.request(method, path), 401)
        assert api.client.request(method, path, headers=api.headers("admin")).status_code == 200


def test_duplicate_user_is_a_conflict_and_writes_nothing(api: Api) -> None:
    from textnlp.errors import Conflict

    auth = api.client.app.state.auth  # type: ignore[attr-defined]
    try:
        auth.create_user("alice", "another password")
    except Conflict:
        pass
    else:  # pragma: no cover - the assertion below explains
        raise AssertionError("a second alice was created")
    api.login("alice", PASSWORD)  # the original password still works


@pytest.mark.parametrize(
    ("username", "password", "refusal"),
    [
        ("Alice", "a good password", "user 'alice' already exists"),
        ("aIice", "a good password", "'aIice' looks like the existing user 'alice'"),
        ("AL1CE", "a good password", "'AL1CE' looks like the existing user 'alice'"),
        ("mallory\n", "a good password", "a username is 1-64 ASCII letters"),
        ("mallory", "short", "a password has 8 to 1024 characters"),
        ("mallory", "p" * 1025, "a password has 8 to 1024 characters"),  # no login could send it
        # Latin-1 bytes piped into `users create --password-stdin`: a traceback in the hasher
        ("mallory", "caf\udce9password", "a password is text: this one is not valid UTF-8"),
    ],
    ids=[
        "alice-by-case",
        "alice-with-a-capital-i",
        "alice-with-a-one",
        "final-newline",
        "short-password",
        "password-over-the-login-bound",
        "password-not-utf8",
    ],  # fmt: skip
)
def test_a_user_no_login_could_tell_apart_or_use_is_refused(
    api: Api, username: str, password: str, refusal: str
) -> None:
    from textnlp.errors import TextNLPError

    auth = api.client.app.state.auth  # type: ignore[attr-defined]
    with pytest.raises(TextNLPError, match=re.escape(refusal)):
        auth.create_user(username, password)


def test_the_longest_password_a_user_may_have_logs_in(api: Api) -> None:
    auth = api.client.app.state.auth  # type: ignore[attr-defined]
    assert auth.create_user("mallory", "p" * 1024).username == "mallory"
    assert api.login("mallory", "p" * 1024)["access_token"]


def test_a_new_password_or_an_operators_logout_ends_every_session(api: Api) -> None:
    """Tokens, refresh tokens and the console's sessions issued before end; API keys stay."""
    auth = api.client.app.state.auth  # type: ignore[attr-defined]
    auth.create_user("rotated", PASSWORD)
    before = api.login("rotated", PASSWORD)
    bearer = {"Authorization": f"Bearer {before['access_token']}"}
    key = api.client.post("/api/v1/auth/api-keys", json={"name": "k"}, headers=bearer).json()
    auth.set_password("rotated", "a brand new password")  # within the login's second too
    ended = api.client.get("/api/v1/models/list", headers=bearer)
    assert ended.status_code == 401 and "session ended" in ended.text
    refreshed = api.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": before["refresh_token"]}
    )
    assert refreshed.status_code == 401
    assert (
        api.client.post(
            "/api/v1/auth/login", json={"username": "rotated", "password": PASSWORD}
        ).status_code
        == 401
    )
    after = api.login("rotated", "a brand new password")
    fresh = {"Authorization": f"Bearer {after['access_token']}"}
    assert api.client.get("/api/v1/models/list", headers=fresh).status_code == 200
    assert (
        api.client.get("/api/v1/models/list", headers={"X-API-Key": key["key"]}).status_code == 200
    )
    auth.end_sessions("rotated")
    assert api.client.get("/api/v1/models/list", headers=fresh).status_code == 401
    assert (
        api.client.get("/api/v1/models/list", headers={"X-API-Key": key["key"]}).status_code == 200
    )


def test_a_refresh_racing_the_end_of_the_sessions_issues_nothing_that_lasts(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The end commits after the refresh read the user and before it issued its pair: the pair
    carries the old epoch and is refused (a token issued in the change's second outlived it)."""
    auth = api.client.app.state.auth  # type: ignore[attr-defined]
    auth.create_user("racer", PASSWORD)
    before = api.login("racer", PASSWORD)
    issue = auth.tokens.issue_pair

    def issue_after_the_end(*args: object, **kwargs: object) -> object:
        auth.end_sessions("racer")
        return issue(*args, **kwargs)

    monkeypatch.setattr(auth.tokens, "issue_pair", issue_after_the_end)
    answer = api.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": before["refresh_token"]}
    )
    monkeypatch.undo()
    if answer.status_code == 200:  # issued: neither token of the pair may be used
        bearer = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        assert api.client.get("/api/v1/models/list", headers=bearer).status_code == 401
        again = {"refresh_token": answer.json()["refresh_token"]}
        assert api.client.post("/api/v1/auth/refresh", json=again).status_code == 401
    else:
        assert answer.status_code == 401


def test_a_disabled_user_is_refused_until_enabled_and_the_last_admin_stays(api: Api) -> None:
    from textnlp.errors import Conflict

    auth = api.client.app.state.auth  # type: ignore[attr-defined]
    auth.create_user("paused", PASSWORD)
    headers = {"Authorization": f"Bearer {api.login('paused', PASSWORD)['access_token']}"}
    assert auth.set_active("paused", False).active is False
    assert api.client.get("/api/v1/models/list", headers=headers).status_code == 401
    assert auth.set_active("paused", True).active is True
    assert api.client.get("/api/v1/models/list", headers=headers).status_code == 200
    assert [u.username for u in auth.users() if u.is_admin and u.active] == ["admin"]
    for change in (lambda: auth.set_active("admin", False), lambda: auth.set_role("admin", "user")):
        with pytest.raises(Conflict, match="last active admin"):
            change()
    assert auth.user("admin").is_admin and auth.user("admin").active  # nothing was written
    auth.set_role("paused", "admin")
    assert auth.set_role("admin", "user").role == "user"  # another admin exists now
    auth.set_role("admin", "admin")
    auth.set_role("paused", "user")


@pytest.mark.parametrize(
    "name", ["line\nbreak", "tab\there", "evil\u202etxt.exe", "c1\x85", "trailing newline\n"]
)
def test_a_key_name_is_printable_text(api: Api, name: str) -> None:
    refused = api.client.post(
        "/api/v1/auth/api-keys", json={"name": name}, headers=api.headers("bob")
    )
    assert refused.status_code == 422, refused.text
    assert "printable text" in refused.json()["error"]["message"]
    listed = api.client.get("/api/v1/auth/api-keys", headers=api.headers("bob")).json()
    assert name not in str(listed)


@pytest.mark.parametrize("name", [" ", "   ", "\u3000"])
def test_a_key_name_is_not_blank(api: Api, name: str) -> None:
    refused = api.client.post(
        "/api/v1/auth/api-keys", json={"name": name}, headers=api.headers("bob")
    )
    assert refused.status_code == 422 and "not blank" in refused.json()["error"]["message"]


def test_logging_out_with_an_api_key_is_forbidden_not_unauthenticated(api: Api) -> None:
    # The key is good, the route is not for it: 401 (with WWW-Authenticate) told clients to
    # log in again.
    key = api.client.post(KEYS, json={"name": "logout-k"}, headers=api.headers("bob")).json()
    refused = api.client.post(LOGOUT, headers={"Authorization": f"Bearer {key['key']}"})
    assert refused.status_code == 403 and "www-authenticate" not in refused.headers
    assert refused.json()["error"]["type"] == "permission_denied"
    listed = api.client.get(KEYS, headers={"Authorization": f"Bearer {key['key']}"})
    assert listed.status_code == 200  # the key still works
