"""Cross-user isolation on every route that takes an id, derived from the OpenAPI schema.

Alice owns a job, an upload and an API key; Bob, an ordinary user, sends every operation of
the schema whose path names an id with Alice's ids. Each must answer 404 or 403 (someone
else's thing does not exist for you), and Alice's things must be unchanged afterwards. A new
route with an id parameter fails ``test_every_id_parameter_is_classified`` until it is given
an owner's id here (or a reason it is not owned), so no route escapes the suite.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from tests.security.conftest import Api

BATCH = "/api/v1/generate/batch"
KEYS = "/api/v1/auth/api-keys"

#: Path parameters that name something a user owns -> the name of Alice's thing below.
OWNED = {"job_id": "job_id", "key_id": "key_id", "file_id": "file_id", "batch_id": "batch_id"}
#: Path parameters that are not anyone's, and why.
NOT_OWNED = {
    "model_id": "the model catalogue is the same for every user",
    "name": "an upload's name is resolved under the caller's own prefix (a new file of theirs)",
}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    params: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.path}"


def id_operations(api: Api) -> list[Operation]:
    schema: dict[str, Any] = api.client.app.openapi()  # type: ignore[attr-defined]
    found = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            names = tuple(
                p["name"] for p in operation.get("parameters", []) if p.get("in") == "path"
            )
            if names:
                found.append(Operation(method, path, names))
    return found


@dataclass
class AliceThings:
    job_id: str
    key_id: str
    upload_key: str
    file_id: str
    batch_id: str


@pytest.fixture(scope="module")
def alice(api: Api) -> AliceThings:
    headers = api.headers("alice")
    upload = api.client.put(
        f"{BATCH}/uploads/prompts.jsonl", content=b'{"prompt": "hi"}\n', headers=headers
    )
    assert upload.status_code == 201, upload.text
    job = api.client.post(
        BATCH,
        json={"prompts": ["Say hi."], "params": {"max_tokens": 4}},
        headers={**headers, "Idempotency-Key": "alice-key-1"},
    )
    assert job.status_code == 202, job.text
    key = api.client.post(KEYS, json={"name": "alice's key"}, headers=headers)
    assert key.status_code in {200, 201}, key.text
    request = {
        "custom_id": "a",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "smollm2-135m", "messages": [{"role": "user", "content": "Hi"}]},
    }
    file = api.client.post(
        "/v1/files",
        files={"file": ("batch.jsonl", json.dumps(request).encode())},
        data={"purpose": "batch"},
        headers=headers,
    )
    assert file.status_code == 200, file.text
    batch = api.client.post(
        "/v1/batches",
        json={
            "input_file_id": file.json()["id"],
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        },
        headers=headers,
    )
    assert batch.status_code == 200, batch.text
    return AliceThings(
        job.json()["id"],
        key.json()["id"],
        upload.json()["key"],
        file.json()["id"],
        batch.json()["id"],
    )


def test_every_id_parameter_is_classified(api: Api) -> None:
    unknown = {
        f"{op.label}: {name}"
        for op in id_operations(api)
        for name in op.params
        if name not in OWNED and name not in NOT_OWNED
    }
    assert not unknown, f"classify these id parameters in {__name__}: {sorted(unknown)}"


def test_bob_cannot_touch_alice_things_on_any_id_route(api: Api, alice: AliceThings) -> None:
    # The schema's list is known only once an app exists: one test walks it and reports every
    # operation that let Bob in.
    bob = api.headers("bob")
    checked, leaks = [], []
    for op in id_operations(api):
        owned = [name for name in op.params if name in OWNED]
        if not owned:
            continue
        path = op.path
        for name in op.params:
            value = getattr(alice, OWNED[name]) if name in OWNED else "smollm2-135m"
            path = path.replace("{" + name + "}", value)
        response = api.client.request(op.method, path, headers=bob, json=_body_for(op))
        checked.append(op.label)
        if response.status_code not in {403, 404}:
            leaks.append(f"{op.label} -> {response.status_code} {response.text[:200]}")
    assert len(checked) >= 5, checked  # jobs (status, results, cancel x2) and keys at least
    assert not leaks, "\n".join(leaks)
    # Nothing of Alice's changed: her job is not cancelled, her key still works.
    headers = api.headers("alice")
    status = api.client.get(f"/api/v1/generate/status/{alice.job_id}", headers=headers).json()
    assert status["state"] != "cancelled"
    listed = api.client.get(KEYS, headers=headers).json()["data"]
    assert any(k["id"] == alice.key_id and not k["revoked"] for k in listed)


def _body_for(op: Operation) -> Any:
    return None if op.method in {"get", "delete"} else {}


def test_bob_cannot_submit_alice_upload_as_his_prompt_file(api: Api, alice: AliceThings) -> None:
    response = api.client.post(
        BATCH, json={"prompt_file": alice.upload_key}, headers=api.headers("bob")
    )
    assert response.status_code in {403, 404}, response.text
    assert alice.upload_key not in response.text or "no prompt file" in response.text


def test_an_idempotency_key_is_per_user(api: Api, alice: AliceThings) -> None:
    # Bob replays Alice's Idempotency-Key: he gets a job of his own, never hers.
    response = api.client.post(
        BATCH,
        json={"prompts": ["Say hi."], "params": {"max_tokens": 4}},
        headers={**api.headers("bob"), "Idempotency-Key": "alice-key-1"},
    )
    assert response.status_code == 202, response.text
    assert response.json()["id"] != alice.job_id


def test_bob_lists_only_his_own_jobs_and_keys(api: Api, alice: AliceThings) -> None:
    bob = api.headers("bob")
    assert alice.job_id not in {j["id"] for j in api.client.get(BATCH, headers=bob).json()}
    assert alice.key_id not in {k["id"] for k in api.client.get(KEYS, headers=bob).json()["data"]}


def _aggregates(api: Api, username: str) -> dict[tuple[str, str], dict[str, Any]]:
    answer = api.client.get("/api/v1/validate/metrics", headers=api.headers(username))
    assert answer.status_code == 200, answer.text
    return {(a["kind"], a["metric"]): a for a in answer.json()["aggregates"]}


def test_bob_learns_nothing_of_alice_validations(api: Api) -> None:
    # Everyone's aggregates read before and after Alice's one text were its exact measures:
    # its length, and that personal data was found in it.
    before = _aggregates(api, "bob")
    everyone_before = _aggregates(api, "admin")
    text = "Alice's note: call +1 415 555 0100 or mail alice@example.com before the surgery."
    for path, body in (
        ("/api/v1/validate/quality", {"texts": [text], "language": False}),
        ("/api/v1/validate/similarity", {"candidates": [text], "references": ["a reference"]}),
    ):
        answer = api.client.post(path, json=body, headers=api.headers("alice"))
        assert answer.status_code == 200, answer.text
    assert _aggregates(api, "bob") == before
    # Alice sees her own; an administrator, everyone's (hers included).
    mine = _aggregates(api, "alice")
    assert mine[("quality", "n_chars")]["max"] == len(text)
    assert mine[("quality", "pii_findings")]["max"] >= 2
    assert ("similarity", "bleu") in mine
    everyone = _aggregates(api, "admin")
    pii = ("quality", "pii_findings")
    assert everyone[pii]["count"] == everyone_before.get(pii, {"count": 0})["count"] + 1
