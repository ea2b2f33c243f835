"""A worker's stored records count in ``TokensGenerated``, on the real PostgreSQL."""

from __future__ import annotations

import uuid

from sqlalchemy import Engine

from textnlp.adapters.db.job_store import JobStore, NewJob


def test_a_workers_stored_records_count_their_tokens(pg_engine: Engine) -> None:
    """``TokensGenerated`` (the dashboard's tokens) counted the API's answers only: a job's
    records, the platform's main work, were missing. Cached records generated nothing."""
    import io
    import json

    from tests.support.records import stored_record
    from textnlp.observability.emf import EmfEmitter
    from textnlp.observability.metrics import Metrics
    from textnlp.services.job_runs import JobRuns

    stream = io.StringIO()
    store = JobStore(pg_engine)
    runs = JobRuns(None, store, None, Metrics(EmfEmitter("Custom", "textnlp-generation", stream)))  # type: ignore[arg-type]
    job_id = uuid.uuid4().hex
    store.create(NewJob(job_id, "owner", {"template": "t", "count": 3}, "batch", 3, "{}"))
    records = [
        stored_record(0, model="smollm2-135m", completion_tokens=40),
        stored_record(1, model="smollm2-135m", completion_tokens=2),
        stored_record(2, model="smollm2-135m", completion_tokens=99, cached=True),
    ]
    assert runs.save_chunk(job_id, records) == 3
    points = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(p["Model"], p["TokensGenerated"]) for p in points] == [
        ("smollm2-135m", 40.0),
        ("smollm2-135m", 2.0),
    ]
    assert points[0]["ServiceName"] == "textnlp-generation"
