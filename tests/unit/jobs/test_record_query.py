"""The dataset viewer's record filters (``services.job_records.RecordQuery``): what matches, and
that the raw-payload pre-check never drops a record that matches."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from textnlp.domain import Record
from textnlp.domain.generation import GenerationParams
from textnlp.domain.records import Provenance
from textnlp.services.job_records import RecordQuery


def record(text: str, *, status: str = "ok", error: str | None = None, **variables: Any) -> Record:
    return Record(
        index=3,
        status=status,  # type: ignore[arg-type]
        text=text,
        variables=variables,
        error=error,
        provenance=Provenance(
            template_id="t",
            template_version="1",
            model="m",
            params=GenerationParams(),
            seed=1,
            prompt_tokens=1,
            completion_tokens=1,
            finish_reason="stop",
            latency_s=0.1,
            created_at="2026-12-04T00:00:00+00:00",
        ),
    )


RECORDS = [
    record("Crème brûlée, STRASSE and ß", sentiment="Positive", stars=4, ok=True),
    record('She said "hi"\nand left\\', sentiment="negative", stars=1.5, ok=False),
    record("", status="failed", error="Timeout: backend x timed out", sentiment="neutral"),
    record("meh", status="rejected", error="filter quality: 2 < 3", score=None),
]
QUERIES = [
    {"search": "crème BRÛLÉE"},
    {"search": "strasse"},
    {"search": "ss"},
    {"search": 'said "hi"\nand'},
    {"search": "left\\"},
    {"search": "nothing"},
    {"label": "sentiment=positive"},
    {"label": "SENTIMENT = Negative"},
    {"label": "negative"},
    {"label": "stars=4"},
    {"label": "stars=1.5"},
    {"label": "1.5"},
    {"label": "ok=true"},
    {"label": "false"},
    {"label": "score=null"},
    {"label": "sentiment"},
    {"reason": "TIMED OUT"},
    {"reason": "2 < 3"},
    {"status": "failed"},
    {"status": "rejected", "reason": "quality"},
    {"status": "ok", "label": "stars=4", "search": "brûlée"},
]


@pytest.mark.parametrize("fields", QUERIES, ids=[str(q) for q in QUERIES])
def test_the_payload_check_keeps_every_match(fields: dict[str, str]) -> None:
    query = RecordQuery.model_validate(fields)
    for r in RECORDS:
        if query.matches(r):
            assert query.may_match(r.model_dump_json()), r.text


def test_what_matches() -> None:
    def hits(**fields: str) -> list[int]:
        query = RecordQuery.model_validate(fields)
        return [i for i, r in enumerate(RECORDS) if query.matches(r)]

    assert hits(search="crème BRÛLÉE") == [0]
    assert hits(search="STRASSE") == [0]  # ß folds to ss
    assert hits(label="sentiment=positive") == [0]
    assert hits(label="negative") == [1]
    assert hits(label="stars=1.5") == [1]
    assert hits(label="ok=TRUE") == [0]
    assert hits(label="score=null") == [3]
    assert hits(label="sentiment") == []  # a name alone is no label
    assert hits(reason="timed out") == [2]
    assert hits(status="failed") == [2]
    assert hits(status="rejected") == [3]
    assert hits() == [0, 1, 2, 3]


def test_blank_fields_are_no_filter() -> None:
    query = RecordQuery.model_validate({"status": "", "label": " ", "reason": "", "search": ""})
    assert query == RecordQuery() and query.params() == {}
    assert not query.on_payload and query.ok_column is None
    assert RecordQuery(status="all") == RecordQuery()  # type: ignore[arg-type]


def test_which_filters_the_database_applies() -> None:
    assert RecordQuery(status="ok").ok_column is True
    assert not RecordQuery(status="ok").on_payload
    assert RecordQuery(status="failed").ok_column is False
    assert RecordQuery(status="failed").on_payload
    assert RecordQuery(reason="x").ok_column is False
    assert RecordQuery(search="x").ok_column is None


def test_bad_filters() -> None:
    with pytest.raises(ValidationError):
        RecordQuery(status="great")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        RecordQuery(search="x" * 201)
