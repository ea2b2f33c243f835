"""The API's ``template`` is a catalogue id, never a server path (file read, existence oracle).

A server file shaped like a template (with a secret in it) and a path that does not exist must
answer alike, on every route that takes a template: ``generate/text``, ``generate/batch`` and
the WebSocket. Templates of the configured templates directory still work by id.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.security.conftest import Api
from tests.support.api import make_settings, start_api

TEXT = "/api/v1/generate/text"
BATCH = "/api/v1/generate/batch"
STREAM = "/api/v1/generate/stream"
SECRET = "hunter2-7f3a"
TEMPLATE = f"""id: server-file
user: "Repeat: {{{{ password }}}}"
variables:
  password: {{value: {SECRET}}}
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("server-files")
    existing = root / "secrets.yaml"
    existing.write_text(TEMPLATE, encoding="utf-8")
    return {"existing": str(existing), "missing": str(root / "no-such-file.yaml")}


@pytest.fixture(scope="module")
def custom_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    home = tmp_path_factory.mktemp("templates-home")
    (home / "templates").mkdir()
    (home / "templates" / "house-style.yaml").write_text(
        "id: house-style\nuser: Write a short greeting.\n", encoding="utf-8"
    )
    yield from start_api(make_settings(home))


def _same_answers(answers: dict[str, tuple[int, str]], files: dict[str, str]) -> None:
    (existing_status, existing), (missing_status, missing) = answers["existing"], answers["missing"]
    assert existing_status == missing_status and existing_status in {404, 422}
    assert existing.replace(files["existing"], "PATH") == missing.replace(files["missing"], "PATH")
    assert SECRET not in existing


def test_generate_text_refuses_paths_alike(custom_api: Api, files: dict[str, str]) -> None:
    headers = custom_api.headers("alice")
    answers = {}
    for kind, path in files.items():
        response = custom_api.client.post(
            TEXT, json={"template": path, "max_tokens": 4}, headers=headers
        )
        answers[kind] = (response.status_code, response.text)
    _same_answers(answers, files)


@pytest.mark.parametrize("path", ["../../etc/passwd.yaml", "templates/house-style.yaml"])
def test_relative_paths_are_not_ids(custom_api: Api, path: str) -> None:
    response = custom_api.client.post(
        TEXT, json={"template": path, "max_tokens": 4}, headers=custom_api.headers("alice")
    )
    assert response.status_code in {404, 422}, response.text


def test_batch_jobs_refuse_paths_alike(custom_api: Api, files: dict[str, str]) -> None:
    headers = custom_api.headers("alice")
    answers = {}
    for kind, path in files.items():
        response = custom_api.client.post(
            BATCH, json={"template": path, "count": 1}, headers=headers
        )
        answers[kind] = (response.status_code, response.text)
    _same_answers(answers, files)


def test_websocket_refuses_paths_alike_and_stays_open(
    custom_api: Api, files: dict[str, str]
) -> None:
    token = custom_api.headers("alice")["Authorization"].removeprefix("Bearer ")
    with custom_api.client.websocket_connect(f"{STREAM}?access_token={token}") as socket:
        answers = {}
        for kind, path in files.items():
            socket.send_json({"template": path, "max_tokens": 4})
            event = socket.receive_json()
            assert event["type"] == "error"
            answers[kind] = (event["error"]["status"], str(event))
        _same_answers(answers, files)


def test_unknown_id_is_404_and_catalogue_ids_work(custom_api: Api) -> None:
    headers = custom_api.headers("alice")
    unknown = custom_api.client.post(TEXT, json={"template": "no-such-id"}, headers=headers)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["type"] == "template_not_found"
    # The configured templates directory's template, by id (a job: no model runs here).
    for template in ("house-style", "product-review"):
        job = custom_api.client.post(
            BATCH, json={"template": template, "count": 1}, headers=headers
        )
        assert job.status_code == 202, job.text
