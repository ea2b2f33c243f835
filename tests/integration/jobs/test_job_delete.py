"""Deleting a job through the API on the real PostgreSQL, with local storage and an in-process
worker: an ended job goes with its records, outbox messages and files; an active one is
cancelled, as the route always did; another user's job and a deleted one answer 404."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.support.api import Api, make_settings, postgres_schema_url, start_api
from tests.support.job_backends import MODELS_YAML, register
from tests.support.platform import run_worker
from textnlp.adapters.db.base import make_engine
from textnlp.bootstrap import Platform

BATCH = "/api/v1/generate/batch"
STATUS = "/api/v1/generate/status"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    register()
    home = tmp_path_factory.mktemp("jobs-delete")
    models = home / "models.yaml"
    models.write_text(MODELS_YAML)
    for url in postgres_schema_url():
        settings = make_settings(
            home,
            url,
            models_file=models,
            generation={"response_cache": False},
            queue={"chunk_size": 4},
        )
        yield from start_api(settings)


def rows(api: Api, job_id: str) -> dict[str, int]:
    """The job's rows in each table that holds some."""
    engine = make_engine(api.settings.database_url)
    try:
        with engine.connect() as connection:
            return {
                table: int(
                    connection.execute(
                        text(f"SELECT count(*) FROM {table} WHERE {column} = :id"), {"id": job_id}
                    ).scalar_one()
                )
                for table, column in [
                    ("jobs", "id"),
                    ("job_records", "job_id"),
                    ("job_outbox", "job_id"),
                    ("job_idempotency_keys", "job_id"),
                ]
            }
    finally:
        engine.dispose()


def stored(api: Api, job_id: str) -> list[str]:
    """The job's objects in storage: under its folder, and its validation report."""
    root = Path(api.settings.storage_root)
    found = [p for p in (root / "generated" / "batch-jobs" / job_id).rglob("*") if p.is_file()]
    report = root / "validation" / "results" / f"{job_id}.json"
    return sorted(str(p.relative_to(root)) for p in [*found, report] if p.is_file())


def submit(api: Api, user: str = "alice", key: str | None = None, **extra: object) -> str:
    headers = {**api.headers(user), **({"Idempotency-Key": key} if key else {})}
    body = {"template": "qa-pairs", "count": 6, "model": "fake-fast", **extra}
    answer = api.client.post(BATCH, json=body, headers=headers)
    assert answer.status_code == 202, answer.text
    job_id: str = answer.json()["id"]
    return job_id


def test_deleting_an_ended_job_removes_its_rows_and_files(api: Api) -> None:
    alice = api.headers("alice")
    job_id = submit(api, key="delete-me", validation={})
    run_worker(api.settings)
    job = api.client.get(f"{STATUS}/{job_id}", headers=alice).json()
    assert job["state"] in {"succeeded", "failed"} and job["result"] is not None, job
    before = rows(api, job_id)
    assert before["jobs"] == 1 and before["job_records"] == 6 and before["job_outbox"] >= 1
    files = stored(api, job_id)
    assert any(f.endswith("records.jsonl") for f in files), files
    assert any(f.startswith("validation/results/") for f in files), files

    answer = api.client.delete(f"{STATUS}/{job_id}", headers=alice)
    assert answer.status_code == 204, answer.text
    assert answer.content == b""
    assert rows(api, job_id) == dict.fromkeys(before, 0)
    assert stored(api, job_id) == []
    assert api.client.get(f"{STATUS}/{job_id}", headers=alice).status_code == 404
    assert api.client.delete(f"{STATUS}/{job_id}", headers=alice).status_code == 404  # twice
    # The job's idempotency key went with it: the same request is a new job.
    assert submit(api, key="delete-me", validation={}) != job_id


def test_an_active_job_is_cancelled_then_deleted_and_its_upload_stays(api: Api) -> None:
    alice = api.headers("alice")
    upload = api.client.put(f"{BATCH}/uploads/p.jsonl", content=b'"Say hi"\n', headers=alice)
    assert upload.status_code == 201, upload.text
    key = upload.json()["key"]
    job = api.client.post(BATCH, json={"prompt_file": key, "model": "fake-fast"}, headers=alice)
    job_id = job.json()["id"]

    cancelled = api.client.delete(f"{STATUS}/{job_id}", headers=alice)  # queued: cancelled
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert rows(api, job_id)["jobs"] == 1
    deleted = api.client.delete(f"{STATUS}/{job_id}", headers=alice)  # ended: deleted
    assert deleted.status_code == 204, deleted.text
    assert rows(api, job_id)["jobs"] == 0
    uploads = api.client.get(f"{BATCH}/uploads", headers=alice).json()["uploads"]
    assert key in [u["key"] for u in uploads]  # the user's own file is theirs to delete
    # Its message, still queued, finds no job: dropped, not dead-lettered, no row made again.
    run_worker(api.settings)
    with Platform(api.settings) as platform:
        queues = platform.queues
        dead = [
            m
            for q in (queues.generation, queues.batch, queues.validation)
            for m in q.dead_letters(10)
        ]
    assert [m for m in dead if job_id in m.body] == []
    assert rows(api, job_id)["jobs"] == 0


def test_another_users_job_is_not_found_and_stays(api: Api) -> None:
    job_id = submit(api)
    assert api.client.post(f"{STATUS}/{job_id}/cancel", headers=api.headers("alice")).is_success
    other = api.client.delete(f"{STATUS}/{job_id}", headers=api.headers("bob"))
    assert other.status_code == 404
    assert other.json() == api.client.get(f"{STATUS}/{job_id}", headers=api.headers("bob")).json()
    assert rows(api, job_id)["jobs"] == 1
    admin = api.client.delete(f"{STATUS}/{job_id}", headers=api.headers("admin"))
    assert admin.status_code == 204


def test_a_deleted_jobs_cost_stays_spent(api: Api) -> None:
    job_id = submit(api)
    api.client.post(f"{STATUS}/{job_id}/cancel", headers=api.headers("alice"))
    engine = make_engine(api.settings.database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text("UPDATE jobs SET cost_usd = 1.25 WHERE id = :id"), {"id": job_id}
            )
        with Platform(api.settings) as platform:
            owner = platform.job_store.get(job_id)
            assert owner is not None
            before = platform.spending.store.spend(owner.owner_id).spent_usd
            assert (
                api.client.delete(f"{STATUS}/{job_id}", headers=api.headers("alice")).status_code
                == 204
            )
            after = platform.spending.store.spend(owner.owner_id).spent_usd
    finally:
        engine.dispose()
    assert after == pytest.approx(before)  # deleting a job gives no budget back


def test_a_purge_goes_batch_by_batch_through_the_old_ended_jobs(api: Api) -> None:
    alice = api.headers("alice")
    old = [submit(api) for _ in range(5)]
    recent = submit(api)
    for job_id in [*old, recent]:
        assert api.client.post(f"{STATUS}/{job_id}/cancel", headers=alice).is_success
    active = submit(api)
    engine = make_engine(api.settings.database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE jobs SET finished_at = now() - interval '31 days' WHERE id = ANY(:ids)"
                ),
                {"ids": old},
            )
            # The other tests' ended jobs are recent: the purge leaves them.
    finally:
        engine.dispose()
    with Platform(api.settings) as platform:
        assert platform.jobs.purge(timedelta(days=30), batch=2) == 5  # batches of 2, 2 and 1
        assert platform.jobs.purge(timedelta(days=30), batch=2) == 0
    assert all(rows(api, job_id)["jobs"] == 0 for job_id in old)
    assert rows(api, recent)["jobs"] == 1 and rows(api, active)["jobs"] == 1
    assert api.client.get(f"{STATUS}/{active}", headers=alice).json()["state"] == "queued"
    api.client.post(f"{STATUS}/{active}/cancel", headers=alice)


def test_the_python_client_deletes_an_ended_job_and_is_told_of_a_cancel(api: Api) -> None:
    from textnlp.client import ApiError

    job_id = submit(api)
    with api.python_client("alice") as client:
        cancelled = client.delete_job(job_id)  # queued: the route cancels it
        assert cancelled is not None and cancelled["state"] == "cancelled"
        assert client.delete_job(job_id) is None  # ended: deleted
        with pytest.raises(ApiError) as gone:
            client.delete_job(job_id)
    assert gone.value.status == 404
