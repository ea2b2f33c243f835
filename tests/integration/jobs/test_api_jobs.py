"""The job routes on a real app (TestClient, SQLite), with an in-process worker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.api import Api, make_settings, start_api
from tests.support.job_backends import MODELS_YAML, register
from tests.support.platform import run_worker
from textnlp.config import Settings

BATCH = "/api/v1/generate/batch"
STATUS = "/api/v1/generate/status"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    register()
    home = tmp_path_factory.mktemp("jobs-api")
    models = home / "models.yaml"
    models.write_text(MODELS_YAML)
    settings = make_settings(
        home,
        models_file=models,
        generation={"response_cache": False, "max_count": 1000},
        queue={"chunk_size": 8},
    )
    yield from start_api(settings)


def work(settings: Settings) -> None:
    run_worker(settings)


def body(**kw: object) -> dict[str, object]:
    return {"template": "qa-pairs", "count": 12, "model": "fake-fast", "format": "jsonl", **kw}


def test_submit_status_results(api: Api) -> None:
    alice = api.headers("alice")
    answer = api.client.post(BATCH, json=body(), headers=alice)
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert job["state"] == "queued" and job["progress"] == {"done": 0, "total": 12, "failed": 0}
    assert api.client.get(f"{STATUS}/{job['id']}/results", headers=alice).status_code == 409
    work(api.settings)
    done = api.client.get(f"{STATUS}/{job['id']}", headers=alice).json()
    assert done["state"] == "succeeded" and done["progress"]["done"] == 12
    assert done["result"]["url"].endswith(f"/status/{job['id']}/results")
    assert done["timings"]["elapsed_s"] is not None
    download = api.client.get(f"{STATUS}/{job['id']}/results", headers=alice)
    assert download.status_code == 200
    assert len(download.content.decode().splitlines()) == 12 - done["progress"]["failed"]
    bob = api.headers("bob")
    assert api.client.get(f"{STATUS}/{job['id']}", headers=bob).status_code == 404
    assert api.client.get(f"{STATUS}/{job['id']}", headers=api.headers("admin")).status_code == 200
    assert api.client.get(f"{STATUS}/{job['id']}").status_code == 401


def test_idempotency_key_header(api: Api) -> None:
    alice = {**api.headers("alice"), "Idempotency-Key": "abc-1"}
    first = api.client.post(BATCH, json=body(count=3), headers=alice)
    again = api.client.post(BATCH, json=body(count=3), headers=alice)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    other = api.client.post(BATCH, json=body(count=4), headers=alice)
    assert other.status_code == 422 and "different request" in other.text


def test_prompt_file_upload_and_cancel(api: Api) -> None:
    alice = api.headers("alice")
    upload = api.client.put(
        f"{BATCH}/uploads/prompts.csv",
        content=b"prompt,label\nSay hi,a\nSay bye,b\n",
        headers=alice,
    )
    assert upload.status_code == 201, upload.text
    key = upload.json()["key"]
    job = api.client.post(
        BATCH, json={"prompt_file": key, "model": "fake-fast"}, headers=alice
    ).json()
    assert job["progress"]["total"] == 2
    cancelled = api.client.delete(f"{STATUS}/{job['id']}", headers=alice)
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    results = api.client.get(f"{STATUS}/{job['id']}/results", headers=alice)
    assert results.status_code == 409 and "cancelled" in results.text
    again = api.client.post(f"{STATUS}/{job['id']}/cancel", headers=alice)
    assert again.status_code == 200
    bob = api.headers("bob")
    stolen = api.client.post(BATCH, json={"prompt_file": key, "model": "fake-fast"}, headers=bob)
    assert stolen.status_code == 404


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (body(template="nope"), 404),
        (body(model="nope"), 404),
        (body(count=100_000), 422),
        (body(count=0), 422),
        ({"model": "fake-fast"}, 422),
        (body(prompts=["x"]), 422),
        (body(format="xml"), 422),
        (body(surprise=1), 422),
    ],
)
def test_bad_input(api: Api, payload: dict[str, object], code: int) -> None:
    answer = api.client.post(BATCH, json=payload, headers=api.headers("alice"))
    assert answer.status_code == code, answer.text
    assert "error" in answer.json()


@pytest.mark.parametrize("recipe", ["Persona-QA", "/etc/passwd", 7])
def test_a_bad_recipe_id_is_said_of_the_recipe_field(api: Api, recipe: object) -> None:
    # The client sent "recipe" and read of a "template" it never sent.
    payload = {"recipe": recipe, "count": 1, "model": "fake-fast"}
    answer = api.client.post(BATCH, json=payload, headers=api.headers("alice"))
    assert answer.status_code == 422, answer.text
    message = answer.json()["error"]["message"]
    assert "recipe: " in message and "is no catalogue id" in message
    assert "template" not in message


def test_bad_uploads_and_unknown_jobs(api: Api) -> None:
    alice = api.headers("alice")
    empty = api.client.put(f"{BATCH}/uploads/p.jsonl", content=b"", headers=alice)
    assert empty.status_code == 422
    broken = api.client.put(f"{BATCH}/uploads/p.jsonl", content=b"{nope\n", headers=alice)
    assert broken.status_code == 422 and "line 1" in broken.text
    assert api.client.get(f"{STATUS}/{'0' * 32}", headers=alice).status_code == 404
    assert api.client.post(f"{STATUS}/nope/cancel", headers=alice).status_code == 404
