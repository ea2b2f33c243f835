"""The Python clients' job list reaches past the API's default page of 50 jobs (``limit``)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from tests.support.api import Api, start_api_with_models
from tests.support.job_backends import MODELS_YAML
from textnlp.client import AsyncTextNLPClient

JOBS = 53  # more than the API's default page


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    for api in start_api_with_models(tmp_path_factory.mktemp("jobs-list"), MODELS_YAML):
        alice = api.headers("alice")
        for i in range(JOBS):
            body = {"prompts": [f"Say {i}"], "model": "fake-fast"}
            answer = api.client.post("/api/v1/generate/batch", json=body, headers=alice)
            assert answer.status_code == 202, answer.text
        yield api


def test_the_sync_client_lists_as_many_jobs_as_asked(api: Api) -> None:
    with api.python_client("alice") as client:
        assert len(client.list_jobs()) == 50
        every = client.list_jobs(limit=100)
        assert len(every) == JOBS
        assert len({job["id"] for job in every}) == JOBS
        assert [job["id"] for job in client.list_jobs(limit=2)] == [j["id"] for j in every[:2]]


def test_the_async_client_lists_as_many_jobs_as_asked(api: Api) -> None:
    token = api.session("alice")["access_token"]

    async def listed() -> tuple[int, int]:
        transport = httpx.ASGITransport(app=api.client.app)
        async with AsyncTextNLPClient("http://testserver", api_key=token, transport=transport) as c:
            return len(await c.list_jobs()), len(await c.list_jobs(limit=100))

    assert asyncio.run(listed()) == (50, JOBS)
