"""The worst few records of each problem, for people to look at (personal data masked).

A report shows a handful of records, so what it says of them (the masked text, the JSON error,
the kinds of personal data, the longest repeated span) is measured again here from their texts
rather than kept for every record (``measures.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from textnlp.validation.dedup import DuplicateGroups
from textnlp.validation.measures import NO, YES, Measures
from textnlp.validation.models import Example
from textnlp.validation.pii import find_pii, mask_pii
from textnlp.validation.quality import REPLACEMENT_CHARACTER, check_json, repetition
from textnlp.validation.text import preview, words

WORST = 5


def shown_text(text: str) -> str:
    """``text`` as the report may show it: personal data masked (``[EMAIL]``) wherever it is."""
    return mask_pii(text)


def examples_of(
    measures: Measures,
    exact: DuplicateGroups,
    near: DuplicateGroups,
    schema: dict[str, Any] | None,
) -> dict[str, list[Example]]:
    """The worst few records of each problem (``schema``: the one the JSON check applied)."""
    texts = measures.texts
    out: dict[str, list[Example]] = {}

    def add(problem: str, picked: list[Example]) -> None:
        if picked:
            out[problem] = picked[:WORST]

    def first(name: str, value: int) -> list[int]:
        """The first records whose ``name`` column holds ``value``."""
        found: list[int] = np.flatnonzero(measures.column(name) == value)[:WORST].tolist()
        return found

    def shown(i: int) -> str:
        return preview(shown_text(texts[i]))

    add("empty", [Example(index=i, text="", detail="empty text") for i in first("empty", YES)])
    add(
        "truncated",
        [
            Example(index=i, text=shown(i), detail="finish_reason=length")
            for i in first("truncated", YES)
        ],
    )
    add(
        "invalid_json",
        [
            # A schema error quotes the value it refused, which may be personal data.
            Example(
                index=i,
                text=shown(i),
                detail=mask_pii(check_json(texts[i], schema)[1] or "invalid"),
            )
            for i in first("json_valid", NO)
        ],
    )
    add(
        "replacement_char",
        [
            Example(
                index=i,
                text=shown(i),
                detail=f"{texts[i].count(REPLACEMENT_CHARACTER)} x U+FFFD (bytes not UTF-8)",
            )
            for i in first("replacement", YES)
        ],
    )
    ratio = measures.column("repeated_ngram_ratio")
    add(
        "repetition",
        [
            Example(
                index=i,
                text=shown(i),
                value=float(ratio[i]),
                detail=f"longest repeated span {repetition(words(texts[i]))[1]} words",
            )
            # Stable: of equal ratios, the first records.
            for i in np.argsort(-ratio, kind="stable")[:WORST].tolist()
            if ratio[i] > 0
        ],
    )
    add(
        "pii",
        [
            Example(
                index=i,
                text=shown(i),
                detail=", ".join(sorted({f.kind for f in find_pii(texts[i])})),
            )
            for i in first("pii", YES)
        ],
    )

    def groups(found: list[list[int]], what: str) -> list[Example]:
        """One example per group of duplicates: its first record, and the group's size."""
        return [
            Example(
                index=g[0],
                text=shown(g[0]),
                value=len(g),
                detail=f"{len(g)} {what}: {g[:10]}",
            )
            for g in found[:WORST]
        ]

    add("exact_duplicates", groups(exact.groups, "copies"))
    add("near_duplicates", groups(near.groups, "similar records"))
    return out
