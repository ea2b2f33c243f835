"""Where a page of an OpenAI-style list starts after ``after``: a time-ordered id is placed
whether or not its item still exists; another missing id is refused, never the list again."""

from __future__ import annotations

import uuid

import pytest

from textnlp.errors import InvalidParameter
from textnlp.services.list_cursor import created_ms, page_start, time_ordered_hex


def test_a_time_ordered_id_says_when_it_was_made_and_a_random_one_does_not() -> None:
    made = time_ordered_hex(now_ns=1_765_000_000_123_456_789)
    assert created_ms(made) == 1_765_000_000_123 and uuid.UUID(made).version == 7
    assert created_ms(uuid.uuid4().hex) is None
    assert time_ordered_hex(now_ns=2_000_000) > time_ordered_hex(now_ns=1_000_000)


def test_a_deleted_cursor_is_placed_where_it_was_in_either_order() -> None:
    keys = [(30, "c"), (20, "b2"), (10, "a")]  # newest first
    assert page_start(keys, None, descending=True) == 0
    assert page_start(keys, "b2", descending=True) == 2
    assert page_start(keys, "b1", descending=True, placed=(20, "b1")) == 2  # gone, after b2
    assert page_start(keys, "b3", descending=True, placed=(20, "b3")) == 1
    assert page_start(keys, "z", descending=True, placed=(5, "z")) == 3  # the last page's
    oldest_first = keys[::-1]
    assert page_start(oldest_first, "b1", descending=False, placed=(20, "b1")) == 1


def test_a_missing_cursor_that_cannot_be_placed_is_refused() -> None:
    with pytest.raises(InvalidParameter) as refused:
        page_start([(1, "a")], "batch_gone", descending=True)
    assert refused.value.details["parameter"] == "after"
