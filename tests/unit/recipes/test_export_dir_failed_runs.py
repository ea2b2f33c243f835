"""A recipe run into an export directory (``DIR/``) that accepts no record, from the library:
it raises why (``CandidatesExhausted``), writes no directory, and leaves an earlier export's
card as it was. Its card was written whatever the run wrote: a directory never written was read
for the card (``DatasetError``: "holds no data/train-*.parquet"), and an earlier export's card
showed the failed run's figures over the earlier run's records.

``CandidatesExhausted`` is public (``textnlp.CandidatesExhausted``, a ``QuotaExceeded``) and
its message names no CLI option (it said ``--max-candidates 3`` to a library caller)."""

from __future__ import annotations

from pathlib import Path

import pytest

import textnlp
from textnlp.generation.writers import read_dataset


def recipe(keep: str) -> textnlp.Recipe:
    """Samplers and a filter only: no model is loaded or called."""
    return textnlp.Recipe(
        id="never",
        output="topic",
        columns={
            "topic": {"type": "category", "values": ["tea", "coffee"]},
            "never": {"type": "filter", "rule": "expression", "expr": keep},
        },
    )


REJECT_ALL = "topic == 'juice'"


def test_a_run_that_accepts_nothing_says_why_and_writes_no_directory(tmp_path: Path) -> None:
    out = tmp_path / "never_ds"
    with pytest.raises(textnlp.CandidatesExhausted) as caught:
        textnlp.generate_dataset(recipe(REJECT_ALL), 2, f"{out}/", max_candidates=3)
    assert caught.value.message.startswith("only 0 of 2 records passed after 3 candidates")
    assert "--" not in caught.value.message and caught.value.details["max_candidates"] == 3
    assert isinstance(caught.value, textnlp.QuotaExceeded)
    assert not out.exists()


def test_a_failed_run_leaves_an_earlier_exports_card_as_it_was(tmp_path: Path) -> None:
    out = tmp_path / "card_ds"
    first = textnlp.generate_dataset(recipe("true"), 2, f"{out}/")
    assert first.written == 2
    card = (out / "README.md").read_text()
    records = [r.text for r in read_dataset(out)]

    with pytest.raises(textnlp.CandidatesExhausted):
        textnlp.generate_dataset(recipe(REJECT_ALL), 2, f"{out}/", max_candidates=3)
    assert (out / "README.md").read_text() == card
    assert [r.text for r in read_dataset(out)] == records
