"""Where a page of an OpenAI-style list starts: after the item that ``after`` names.

OpenAI documents ``after`` as "an object ID that defines your place in the list", and its
SDK's auto-pagination sends the last id of the page before. That item may have been deleted
since: the page must then start where it was, never again from the top (the SDK would
return every item of the pages before twice).

- An id that says when it was made (an upload's ``file-<hex>``, a batch's ``batch_<job id>``,
  time-ordered since ``time_ordered_hex``: a UUIDv7's layout, its first 48 bits the time in
  milliseconds) is placed by its sort key, ``(created_at, id)``, whether or not its item still
  exists; its ``created_at`` is those milliseconds (an upload's: their second), as its item
  was given.
- Any other id that names no listed item (an older upload's or job's random id, a made-up
  one) is refused, 400 with ``param: after``: the SDK raises it, and the caller lists again
  from the start, knowingly.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from textnlp.errors import InvalidParameter

#: An item's place in a list: (created_at in unix seconds, id).
SortKey = tuple[int, str]


def time_ordered_hex(now_ns: int | None = None) -> str:
    """32 hex digits laid out as a UUIDv7: 48 bits of milliseconds, version 7, 74 random bits."""
    ms = (time.time_ns() if now_ns is None else now_ns) // 1_000_000
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | secrets.randbits(12) << 64
    value |= 0b10 << 62 | secrets.randbits(62)
    return f"{value:032x}"


def created_ms(hex_id: str) -> int | None:
    """When a ``time_ordered_hex`` id was made (unix ms); None for another id (a UUIDv4's)."""
    if len(hex_id) != 32 or hex_id[12] != "7" or hex_id[16] not in "89ab":
        return None
    try:
        return int(hex_id[:12], 16)
    except ValueError:
        return None


def unplaced(after: str) -> InvalidParameter:
    """The refusal of an ``after`` that names no listed item and cannot be placed."""
    return InvalidParameter(
        f"after: {after[:100]!r} is not in the list (deleted since it was listed, or never "
        "one of yours); list again without after",
        parameter="after",
    )


def created_time(hex_id: str) -> datetime | None:
    """``created_ms`` as an aware UTC datetime, to the millisecond (no float rounding); None
    past the last date a datetime holds (48 bits of milliseconds reach year 10889: a made-up
    id, which cannot be placed)."""
    ms = created_ms(hex_id)
    if ms is None:
        return None
    try:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    except OverflowError:
        return None


def page_start(
    keys: Sequence[SortKey],
    after: str | None,
    *,
    descending: bool,
    placed: SortKey | None = None,
) -> int:
    """The index in ``keys`` (the listed items' sort keys, in list order) of the first item
    after ``after``; ``placed`` is ``after``'s own sort key where its id tells it (its item
    may be gone). ``InvalidParameter`` when ``after`` can be neither found nor placed."""
    if after is None:
        return 0
    for index, (_, item_id) in enumerate(keys):
        if item_id == after:
            return index + 1
    if placed is None:
        raise unplaced(after)
    after_it = (key < placed if descending else key > placed for key in keys)
    return next((index for index, later in enumerate(after_it) if later), len(keys))
