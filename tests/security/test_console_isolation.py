"""Cross-user isolation on every console route that takes an id, walked from the console's own
routers (its pages are not in the OpenAPI schema, so ``test_isolation`` does not see them).

Bob, logged in to the console with a valid session and CSRF token of his own, sends every
console route whose path names an id with Alice's: each must answer 403 or 404, and Alice's
job and key must be unchanged afterwards. A new console route with an id parameter fails
``test_every_console_id_parameter_is_classified`` until it is classified here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from tests.security.conftest import Api
from tests.support.console import csrf_of, log_in
from textnlp.api.console import PAGE_ROUTERS
from textnlp.api.console.csrf import CSRF_FIELD, CSRF_HEADER
from textnlp.api.console.session import CONSOLE_PATH

#: Path parameters that name something a user owns -> Alice's thing of that kind.
OWNED = {"job_id", "key_id"}
#: Path parameters that are not anyone's, and why.
NOT_OWNED = {"source_id": "a catalogue entry (built-in or configured): the same for everyone"}
_PARAMETER = re.compile(r"{(\w+)(:\w+)?}")


@dataclass(frozen=True)
class ConsoleRoute:
    method: str
    path: str
    params: tuple[str, ...]


def console_routes() -> list[ConsoleRoute]:
    found = []
    for router in PAGE_ROUTERS:
        for route in router.routes:
            path = CONSOLE_PATH + route.path  # type: ignore[attr-defined]
            for method in sorted(route.methods):  # type: ignore[attr-defined]
                names = tuple(match[0] for match in _PARAMETER.findall(path))
                found.append(ConsoleRoute(method, path, names))
    return found


def test_every_console_id_parameter_is_classified() -> None:
    unknown = {
        f"{route.method} {route.path}: {name}"
        for route in console_routes()
        for name in route.params
        if name not in OWNED and name not in NOT_OWNED
    }
    assert not unknown, f"classify these id parameters in {__name__}: {sorted(unknown)}"


@pytest.mark.timeout(300)
def test_bob_cannot_touch_alice_things_on_any_console_route(api: Api) -> None:
    alice = api.headers("alice")
    job = api.client.post(
        "/api/v1/generate/batch",
        json={"prompts": ["Say hi."], "params": {"max_tokens": 4}},
        headers=alice,
    )
    assert job.status_code == 202, job.text
    key = api.client.post("/api/v1/auth/api-keys", json={"name": "alice's"}, headers=alice)
    assert key.status_code == 201, key.text
    things = {"job_id": job.json()["id"], "key_id": key.json()["id"]}
    with TestClient(api.client.app, raise_server_exceptions=False) as bob:
        assert log_in(bob, "bob").status_code == 303
        token = csrf_of(bob, f"{CONSOLE_PATH}/keys")
        checked, leaks = [], []
        for route in console_routes():
            if not any(name in OWNED for name in route.params):
                continue
            path = route.path
            for name in route.params:
                path = path.replace("{" + name + "}", things.get(name, "x"))
            answer = bob.request(
                route.method,
                path,
                headers={CSRF_HEADER: token},
                data={CSRF_FIELD: token} if route.method == "POST" else None,
                follow_redirects=False,
            )
            checked.append(f"{route.method} {route.path}")
            if answer.status_code not in {403, 404}:
                leaks.append(f"{route.method} {path} -> {answer.status_code} {answer.text[:200]}")
        # The live progress stream takes the job as a query parameter.
        events = bob.get(f"{CONSOLE_PATH}/jobs/events", params={"job": things["job_id"]})
        if events.status_code not in {403, 404}:
            leaks.append(f"GET /console/jobs/events?job=... -> {events.status_code}")
    assert len(checked) >= 6, checked  # job page, cancel, download, records, report; key revoke
    assert not leaks, "\n".join(leaks)
    status = api.client.get(f"/api/v1/generate/status/{things['job_id']}", headers=alice).json()
    assert status["state"] != "cancelled"
    keys = api.client.get("/api/v1/auth/api-keys", headers=alice).json()["data"]
    assert any(k["id"] == things["key_id"] and not k["revoked"] for k in keys)
