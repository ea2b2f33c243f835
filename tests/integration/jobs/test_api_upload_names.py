"""The upload route and the Python clients' job methods with hostile names and job ids: file
names are escaped (never a 422 naming the storage key), job ids are checked before a request
(``<id>/results`` or ``x/../<id>`` would be another route or another job)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from tests.support.api import Api, start_api_with_models
from tests.support.job_backends import MODELS_YAML
from textnlp.client import ApiError, AsyncTextNLPClient, TextNLPClient

UPLOADS = "/api/v1/generate/batch/uploads"
PROMPTS = b'{"prompt": "Say hi"}\n'
#: ``x%2Fy.jsonl`` is in the end-to-end test: Starlette's TestClient decodes a path twice.
HOSTILE = ["café.jsonl", "100%.jsonl", "a:b.jsonl", "a#b.jsonl", "a?b.jsonl"]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    yield from start_api_with_models(tmp_path_factory.mktemp("jobs-uploads"), MODELS_YAML)


@pytest.fixture
def client(api: Api) -> Iterator[TextNLPClient]:
    with api.python_client("alice") as client:
        yield client


@pytest.mark.parametrize("name", ["café.jsonl", "100%.jsonl", "a:b.jsonl"])
def test_the_route_takes_any_file_name(api: Api, name: str) -> None:
    answer = api.client.put(
        f"{UPLOADS}/{quote(name, safe='')}", content=PROMPTS, headers=api.headers("alice")
    )
    assert answer.status_code == 201, answer.text
    key = answer.json()["key"]
    job = api.client.post(
        "/api/v1/generate/batch",
        json={"prompt_file": key, "model": "fake-fast"},
        headers=api.headers("alice"),
    )
    assert job.status_code == 202, job.text


def test_a_name_with_a_slash_reaches_no_upload(api: Api) -> None:
    alice = api.headers("alice")
    storage = api.client.app.state.jobs.storage  # type: ignore[attr-defined]
    before = storage.list("prompts/user-uploads/")
    for path in ["a%2Fb.jsonl", "a/b.jsonl", "..%2Fp.jsonl"]:
        answer = api.client.put(f"{UPLOADS}/{path}", content=PROMPTS, headers=alice)
        assert answer.status_code == 404, answer.text  # the route takes no '/'
        assert "user-uploads" not in answer.text
    assert storage.list("prompts/user-uploads/") == before


def test_errors_never_name_the_storage_key(api: Api) -> None:
    alice = api.headers("alice")
    for name in ["café.txt", "100%", "a:b.jsonl"]:
        answer = api.client.put(f"{UPLOADS}/{quote(name, safe='')}", content=b"{x", headers=alice)
        assert answer.status_code == 422, answer.text
        assert "user-uploads" not in answer.text and "storage key" not in answer.text


def test_a_missing_upload_of_ones_own_is_no_prompt_file_as_anothers_is(api: Api) -> None:
    alice = api.headers("alice")
    user = api.client.app.state.auth.user("alice").id  # type: ignore[attr-defined]
    for owner in (user, "someone-else"):
        key = f"prompts/user-uploads/{owner}/never-uploaded.jsonl"
        job = {"prompt_file": key, "model": "fake-fast"}
        answer = api.client.post("/api/v1/generate/batch", json=job, headers=alice)
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["message"] == f"no prompt file {key!r}"


def test_the_client_escapes_upload_names(api: Api, client: TextNLPClient) -> None:
    keys = {name: client.upload_prompts(name, PROMPTS) for name in HOSTILE}
    assert len(set(keys.values())) == len(HOSTILE)  # each its own name, not "a" or "x/y"
    assert keys["a#b.jsonl"].endswith("-a=23b.jsonl")
    assert keys["100%.jsonl"].endswith("-100=25.jsonl")
    assert client.upload_prompts("p.jsonl", PROMPTS) == client.upload_prompts("p.jsonl", PROMPTS)
    with pytest.raises(ApiError) as refused:
        client.upload_prompts("a/b.jsonl", PROMPTS)
    assert refused.value.status == 422 and "without '/'" in refused.value.message
    with pytest.raises(ApiError) as dots:
        client.upload_prompts("..", PROMPTS)  # not a step up to PUT /generate/batch
    assert dots.value.status == 422 and ".jsonl or .csv" in dots.value.message


def test_the_client_lists_and_deletes_uploads(client: TextNLPClient) -> None:
    key = client.upload_prompts("gone #1.jsonl", PROMPTS)
    names = {u["key"]: u["name"] for u in client.list_uploads()["uploads"]}
    client.delete_upload(names[key])
    assert key not in {u["key"] for u in client.list_uploads()["uploads"]}
    with pytest.raises(ApiError) as gone:
        client.delete_upload(names[key])
    assert gone.value.status == 404
    with pytest.raises(ApiError) as empty:  # unsent: DELETE .../uploads/ is redirected
        client.delete_upload("")
    assert empty.value.status == 422
    with pytest.raises(ApiError) as redirected:  # a redirect is no success
        client.request("GET", "/generate/batch/uploads/")
    assert redirected.value.status == 307 and "unexpected redirect" in redirected.value.message


def test_the_client_sends_only_job_ids(api: Api, client: TextNLPClient) -> None:
    key = client.upload_prompts("p.jsonl", PROMPTS)
    job = client.submit_batch({"prompt_file": key, "model": "fake-fast"})
    for hostile in [f"{job['id']}/results", f"zzz/../{job['id']}", "nope", f"{job['id']}?x=1"]:
        with pytest.raises(ApiError) as refused:
            client.job_status(hostile)
        assert refused.value.status == 404 and "not a job id" in refused.value.message
        with pytest.raises(ApiError):
            client.cancel_job(hostile)
        with pytest.raises(ApiError):
            client.download_results(hostile, io.BytesIO())
    assert client.job_status(job["id"])["id"] == job["id"]
    assert client.cancel_job(job["id"])["state"] == "cancelled"


async def test_the_async_client_escapes_names_and_checks_job_ids(api: Api) -> None:
    token = api.session("alice")["access_token"]
    transport = httpx.ASGITransport(app=api.client.app)
    async with AsyncTextNLPClient(
        "http://testserver", api_key=token, transport=transport
    ) as client:
        key = await client.upload_prompts("a#b.jsonl", PROMPTS)
        assert key.endswith("-a=23b.jsonl")
        listed = {u["key"]: u["name"] for u in (await client.list_uploads())["uploads"]}
        other = await client.upload_prompts("other.jsonl", PROMPTS)
        await client.delete_upload(key.rsplit("/", 1)[-1])
        left = {u["key"] for u in (await client.list_uploads())["uploads"]}
        assert key in listed and key not in left and other in left
        key = await client.upload_prompts("a#b.jsonl", PROMPTS)  # for the job below
        job = await client.submit_batch({"prompt_file": key, "model": "fake-fast"})
        with pytest.raises(ApiError) as refused:
            await client.job_status(f"{job['id']}/results")
        assert refused.value.status == 404 and "not a job id" in refused.value.message
        with pytest.raises(ApiError):
            await client.download_results(f"zzz/../{job['id']}", io.BytesIO())
        assert (await client.job_status(job["id"]))["id"] == job["id"]
