"""``generate``'s run with no record: an error of the one tree, printed by the CLI's one
renderer (``cli.main.fail``), exit 1 as the README says (a job so ended is ``failed``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from textnlp.cli.generate import _say_why_records_failed, print_summary
from textnlp.cli.main import exit_code
from textnlp.errors import DatasetFailed
from textnlp.generation.pipeline import DatasetSummary


def summary(written: int) -> DatasetSummary:
    return DatasetSummary(
        output=Path("o.jsonl"),
        model="fake-fast",
        template="wants-json",
        requested=2,
        written=written,
        failed=2 - written,
        first_failure=(0, "invalid output: schema violation"),
    )


def test_every_record_failed_is_an_error_that_exits_1() -> None:
    with pytest.raises(DatasetFailed) as raised:
        _say_why_records_failed(summary(written=0))
    assert raised.value.message == (
        "every record failed (2); the first, record 0: invalid output: schema violation; "
        "o.jsonl was not written"
    )
    assert exit_code(raised.value) == 1


def test_a_run_whose_every_record_failed_names_no_dataset(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The summary said "dataset: o.jsonl" of a file the run did not write."""
    print_summary(summary(written=0))
    assert "dataset:" not in capsys.readouterr().out
    print_summary(summary(written=1))
    assert "dataset: o.jsonl" in capsys.readouterr().out


def test_some_records_failing_is_a_warning(capsys: pytest.CaptureFixture[str]) -> None:
    _say_why_records_failed(summary(written=1))
    assert capsys.readouterr().err.startswith("warning: 1 of 2 records failed; the first")
