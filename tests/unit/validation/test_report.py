"""The dataset report without the embedding model; HTML and JSON output."""

from __future__ import annotations

import json
from pathlib import Path

from textnlp.validation import Gate, render_html, validate_dataset
from textnlp.validation.models import DatasetReport

REVIEWS = [
    {
        "text": "The earbuds sound great and the battery lasts all day on a single charge.",
        "variables": {"rating": 5},
    },
    {
        "text": "The earbuds sound great and the battery lasts all day on a single charge today.",
        "variables": {"rating": 5},
    },
    {
        "text": "Terrible tent, it leaked on the first night. Email me at joe@example.com",
        "variables": {"rating": 1},
    },
    {"text": "", "variables": {"rating": 3}},
    {
        "text": "A decent mystery novel with a predictable ending but likeable characters.",
        "variables": {"rating": 3},
    },
]


def _report(**kwargs: object) -> DatasetReport:
    return validate_dataset(REVIEWS, embeddings=False, **kwargs)  # type: ignore[arg-type]


def test_report_counts_problems() -> None:
    report = _report(near_dup_threshold=0.6)
    assert report.count == 5
    assert report.near_duplicates.clusters == 1 and report.near_duplicates.top[0].indices == [0, 1]
    assert report.exact_duplicates.clusters == 0
    assert report.pii.records == 1 and report.pii.by_kind == {"email": 1}
    assert report.quality.empty == 1
    assert report.labels[0].name == "rating" and report.labels[0].distribution == {
        "1": 1,
        "3": 2,
        "5": 2,
    }
    assert report.diversity.semantic is None
    assert "pii" in report.examples and "[EMAIL]" in report.examples["pii"][0].text
    assert not report.passed  # 20% PII and 20% empty break the default gate


def test_gate_rules_in_report() -> None:
    permissive = Gate(max_pii_rate=1, max_empty_rate=1, max_near_duplicate_rate=1)
    report = _report(gate=permissive)
    assert report.passed
    assert report.summary_rows()[-1] == ("gate", "passed", "pass")


def test_leakage_against_reference() -> None:
    report = _report(reference=[REVIEWS[4]["text"], "something unrelated entirely here"])
    assert report.leakage is not None
    assert [m.index for m in report.leakage.matches] == [4]
    assert report.leakage.matches[0].reference_index == 0


def test_json_schema_check() -> None:
    rows = [{"text": '{"question": "Why?", "answer": "Yes"}'}, {"text": "not json"}]
    report = validate_dataset(
        rows, embeddings=False, json_schema={"type": "object", "required": ["answer"]}
    )
    assert report.quality.json_invalid == 1 and report.quality.json_invalid_rate == 0.5


def test_html_and_json_render(tmp_path: Path) -> None:
    report = _report(near_dup_threshold=0.6)
    page = render_html(report)
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    assert "<script" not in page and "<link" not in page
    assert 'src="http' not in page and 'href="http' not in page
    assert "Near-duplicate clusters" in page
    data = json.loads(report.model_dump_json())
    assert DatasetReport.model_validate(data) == report


def test_the_templates_schema_checks_the_output_not_a_field_inside_it() -> None:
    """``--field data.answer`` of a qa-pairs dataset: the answer is text, not the template's
    JSON object (the README's example failed its gate on valid records)."""
    rows = [
        {
            "text": '{"question": "Why is that?", "answer": "Because."}',
            "data": {"question": "Why is that?", "answer": "Because."},
            "provenance": {"template_id": "qa-pairs"},
        }
    ] * 2
    whole = validate_dataset(rows, embeddings=False)
    assert whole.quality.json_invalid_rate == 0.0  # the template's schema, on the output
    answers = validate_dataset(rows, field="data.answer", embeddings=False)
    assert answers.quality.json_invalid_rate is None  # skipped, not 100% invalid
