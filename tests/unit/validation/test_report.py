"""The dataset report without the embedding model; HTML and JSON output."""

from __future__ import annotations

import json
from pathlib import Path

from textnlp.generation.templates import parse_template
from textnlp.validation import Gate, render_html, text_quality, validate_dataset
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


def test_json_schema_check_finds_the_object_as_generation_does() -> None:
    # A model's answer whose object sits in an array: generation keeps {"rating": 4} as the
    # record's data, so validate must not call the same answer a schema violation.
    answer = '[{"rating": 4}]'
    schema = {"type": "object", "required": ["rating"]}
    template = parse_template(
        {
            "id": "rate",
            "version": "1",
            "user": "Rate it.",
            "output": {"type": "json", "schema": schema},
        },
        source="test",
    )
    assert template.parse_output(answer) == {"rating": 4}
    report = validate_dataset([{"text": answer}], embeddings=False, json_schema=schema)
    assert report.quality.json_invalid == 0


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
            "provenance": {"template_id": "qa-pairs", "template_version": "1.0"},
        }
    ] * 2
    whole = validate_dataset(rows, embeddings=False)
    assert whole.quality.json_invalid_rate == 0.0  # the template's schema, on the output
    answers = validate_dataset(rows, field="data.answer", embeddings=False)
    assert answers.quality.json_invalid_rate is None  # skipped, not 100% invalid


def test_only_the_catalogue_template_that_made_the_rows_lends_its_schema() -> None:
    # A user's recipe or template may share a catalogue id: its plain text is not checked
    # against the catalogue's JSON schema (it failed every record and the gate).
    def rows(**provenance: object) -> list[dict[str, object]]:
        return [{"text": f"plain text {i}", "provenance": provenance} for i in range(2)]

    made = {"template_id": "qa-pairs", "template_version": "1.0"}
    assert validate_dataset(rows(**made), embeddings=False).quality.json_invalid_rate == 1.0
    for other in (
        {**made, "cells": {"q": {"model": "m", "params": {}, "seed": 1}}},  # a recipe's rows
        {**made, "template_version": "7"},  # a template of that id, another version
        {"template_id": "qa-pairs"},  # no version
    ):
        report = validate_dataset(rows(**other), embeddings=False)
        assert report.quality.json_invalid_rate is None, other
    unchecked = validate_dataset(rows(**made), embeddings=False, json_schema=False)
    assert unchecked.quality.json_invalid_rate is None


def _finished(text: str, finish_reason: str | None) -> dict[str, object]:
    row: dict[str, object] = {"text": text}
    if finish_reason is not None:
        row["provenance"] = {"finish_reason": finish_reason}
    return row


def test_truncated_rate_is_over_the_records_with_a_finish_reason() -> None:
    """Two records cut at max_tokens and two without provenance: 1.0 measured, not 0.5 (which
    passed the default 0.5 gate)."""
    rows = [
        _finished("The first review stopped halfway through a", "length"),
        _finished("The second review stopped halfway as well", "length"),
        _finished("A third review of a lamp that works well.", None),
        _finished("A fourth review of a kettle that boils fast.", None),
    ]
    report = validate_dataset(rows, embeddings=False)
    assert report.quality.truncated == 2 and report.quality.truncated_rate == 1.0
    rule = next(r for r in report.gate.rules if r.rule == "max_truncated_rate")
    assert rule.value == 1.0 and rule.status == "fail"
    mixed = validate_dataset([*rows, _finished("A fifth one, finished.", "stop")], embeddings=False)
    assert mixed.quality.truncated_rate == 2 / 3


def test_truncated_rate_without_any_finish_reason_is_skipped_by_the_gate() -> None:
    report = validate_dataset(["One text here.", "Another text there."], embeddings=False)
    assert report.quality.truncated is None and report.quality.truncated_rate is None
    rule = next(r for r in report.gate.rules if r.rule == "max_truncated_rate")
    assert rule.value is None and rule.status == "skipped"


PERSONAL = "Refund sent, reach jane.roe@example.com or call +44 20 7946 0958 with questions"


def test_personal_data_is_masked_in_every_text_the_report_shows(tmp_path: Path) -> None:
    """The PII examples were masked, the duplicate clusters and other examples were not."""
    rows = [
        PERSONAL,
        PERSONAL,
        PERSONAL + " today",
        '{"contact": "jane.roe@example.com"}',  # the schema error quotes the value
    ]
    report = validate_dataset(
        rows,
        embeddings=False,
        near_dup_threshold=0.5,
        json_schema={"type": "object", "properties": {"contact": {"type": "integer"}}},
    )
    assert report.exact_duplicates.top and report.near_duplicates.top
    assert "[EMAIL]" in report.exact_duplicates.top[0].text
    assert "[PHONE]" in report.near_duplicates.top[0].text
    assert "[EMAIL]" in report.examples["invalid_json"][-1].detail
    assert "exact_duplicates" in report.examples and "near_duplicates" in report.examples
    for raw in ("jane.roe", "7946"):
        assert raw not in report.model_dump_json()
        assert raw not in render_html(report)


def test_personal_data_is_masked_in_the_field_and_label_counts() -> None:
    """A categorical field's values were shown as they were: a ``contact`` label's emails."""
    rows = [
        {"text": f"Review {i}.", "variables": {"contact": contact, "rating": 5}}
        for i, contact in enumerate(["ann@example.com", "bob@example.com", "+1 415 555 0100"])
    ]
    report = validate_dataset(rows, embeddings=False)  # type: ignore[arg-type]
    (contact,) = (s for s in report.labels if s.name == "contact")
    assert contact.distribution == {"[EMAIL]": 2, "[PHONE]": 1}
    assert "example.com" not in report.model_dump_json()
    assert "example.com" not in render_html(report)


def test_summary_rates_share_one_format() -> None:
    rows = [_finished("cut short at the", "length"), _finished("also cut at", "length")]
    summary = {m: v for m, v, _ in validate_dataset(rows, embeddings=False).summary_rows()}
    assert summary["count"] == "2"
    assert summary["truncated_rate"] == "1.0000" and summary["empty_rate"] == "0.0000"
    assert summary["leakage_rate"] == "n/a"


def test_records_with_replacement_characters_are_counted() -> None:
    """U+FFFD is what a decoder leaves of bytes that were not UTF-8 (half an emoji a model
    sampled): the report counts and shows such records; the gate checks them when asked."""
    broken = "Great sushi \ufffd\ufffd and ramen, would come back."
    texts = ["The ramen was rich and the staff were friendly.", broken, "Clean room, quiet street."]
    assert text_quality(broken, readability=False, language=False).replacement_chars == 2
    report = validate_dataset(texts, embeddings=False)
    assert (report.quality.replacement_char, report.quality.replacement_char_rate) == (1, 1 / 3)
    assert report.metrics()["replacement_char_rate"] == 1 / 3
    (example,) = report.examples["replacement_char"]
    assert example.index == 1 and example.detail.startswith("2 x U+FFFD")
    assert report.passed and "max_replacement_char_rate" not in {r.rule for r in report.gate.rules}
    strict = validate_dataset(texts, embeddings=False, gate={"max_replacement_char_rate": 0.0})
    assert not strict.passed
    assert {r.rule: r.status for r in strict.gate.rules}["max_replacement_char_rate"] == "fail"
