"""Seeded synthetic datasets in the generated format, with every problem the report counts.

Shared by the report's identity test (its golden reports were made from these by the report as
it was before it streamed its rows) and ``bench/validate_memory.py``. Deterministic: the same
arguments give the same records on every machine.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

_OPENINGS = [
    "I bought this {product} last month",
    "My partner gave me the {product} for my birthday",
    "After two weeks with the {product}",
    "This {product} arrived quickly",
    "I was not sure about the {product} at first",
    "Compared with my old one, the {product}",
]
_BODIES = [
    "and the build quality feels solid in the hand",
    "but the battery barely lasts a full day of use",
    "and setting it up took less than five minutes",
    "although the instructions were confusing and badly translated",
    "and it works exactly as the description promised",
    "but it stopped working after a few days of light use",
    "and the price seems fair for what you get",
    "though the delivery was late by almost a week",
    "and it is much quieter than I expected",
    "but the colour looks different from the photos",
]
_CLOSINGS = [
    "I would recommend it to a friend.",
    "I returned it and asked for a refund.",
    "Overall a decent purchase.",
    "Five stars from me, no regrets.",
    "Not worth the money in my opinion.",
    "I will probably buy another one for my parents.",
    "Customer service answered within a day.",
]
_WORDS = [
    "quick",
    "product",
    "works",
    "well",
    "great",
    "battery",
    "sound",
    "quality",
    "price",
    "delivery",
    "box",
    "coffee",
    "grinder",
    "tent",
    "rain",
    "night",
    "camping",
    "book",
    "story",
    "plot",
    "ending",
    "cream",
    "skin",
    "dry",
    "love",
    "hate",
    "return",
    "refund",
    "would",
    "buy",
    "again",
    "never",
    "recommend",
    "friend",
    "daily",
    "use",
    "easy",
    "handle",
    "cable",
    "charger",
    "screen",
]
_PII = [
    "Write to me at jane.doe{n}@example.com if you want photos.",
    "Call me on +44 20 7946 0{n:03d} for details.",
    "I paid with card 4111 1111 1111 1111 and it went through.",
    "Refund it to GB82 WEST 1234 5698 7654 32 please.",
    "The router at 192.168.{n}.1 kept dropping.",
    "My SSN 123-45-{n:04d} was asked for, which is odd.",
]
_CATEGORIES = {
    "electronics": "wireless earbuds",
    "kitchen": "coffee grinder",
    "outdoor": "camping tent",
    "books": "mystery novel",
    "beauty": "face moisturiser",
}
_ASPECTS = ["the price", "the build quality", "the delivery", "how easy it is to use", "durability"]
_ODD_TEXTS = [
    "",
    "   ",
    "\u200b",
    "great great great great great great great great great great great great",
    "the tent is good the tent is good the tent is good and the rain stayed out",
    "ｆｕｌｌ－ｗｉｄｔｈ ｄｉｇｉｔｓ ０７９４６ ０１２３ and a zero\u200bwidth space",
    "这个耳机的音质很好，电池也很耐用。我会推荐给朋友。",
    "Téléphone très bien reçu, la batterie tient deux jours entiers.",
]


def review_text(rng: random.Random, product: str) -> str:
    """A review of two to four sentences, about 20 to 70 words."""
    sentences = []
    for _ in range(rng.randint(1, 3)):
        opening = rng.choice(_OPENINGS).format(product=product)
        sentences.append(f"{opening} {rng.choice(_BODIES)}, {' '.join(rng.choices(_WORDS, k=6))}.")
    sentences.append(rng.choice(_CLOSINGS))
    return " ".join(sentences)


def _provenance(rng: random.Random, template: str, version: str, index: int) -> dict[str, Any]:
    return {
        "template_id": template,
        "template_version": version,
        "model": "embedded:smollm2",
        "params": {"max_tokens": 160, "temperature": 0.8, "top_p": 0.95, "seed": index},
        "seed": index,
        "prompt_tokens": rng.randint(60, 90),
        "completion_tokens": rng.randint(20, 160),
        "finish_reason": "length" if rng.random() < 0.05 else "stop",
        "latency_s": round(rng.uniform(0.2, 3.0), 3),
        "attempts": 1,
        "cached": False,
        "created_at": f"2026-12-05T10:{index // 60 % 60:02d}:{index % 60:02d}Z",
        "cost_usd": None,
    }


def _variant(rng: random.Random, text: str) -> str:
    """A near copy: one word replaced or dropped, or case and punctuation changed."""
    words = text.split()
    kind = rng.randrange(3)
    if not words:
        return text
    if kind == 0:
        words[rng.randrange(len(words))] = rng.choice(_WORDS)
    elif kind == 1 and len(words) > 3:
        del words[rng.randrange(len(words))]
    else:
        words[0] = words[0].upper()
        words[-1] = words[-1].rstrip(".") + "!"
    return " ".join(words)


def review_records(n: int, *, seed: int = 0, labels: bool = True) -> list[dict[str, Any]]:
    """``n`` product reviews as ``generate`` writes them (template ``product-review`` 1.1).

    About 3% exact copies (some re-cased or re-spaced), 5% near copies, 2% with personal data,
    1% odd texts (empty, invisible, repetitive, full-width, CJK), 5% cut at ``max_tokens``.
    ``labels`` adds a numeric (``score``) and a free-text (``title``) label to the template's.
    """
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    for index in range(n):
        category = rng.choice(list(_CATEGORIES))
        rating = rng.choice([1, 2, 3, 3, 4, 4, 4, 5, 5, 5])
        roll = rng.random()
        if records and roll < 0.03:
            text = rng.choice(records)["text"]
            text = rng.choice([text, text.upper(), f"  {text}  ", text.replace(" ", "  ")])
        elif records and roll < 0.08:
            text = _variant(rng, rng.choice(records)["text"])
        elif roll < 0.10:
            text = f"{review_text(rng, _CATEGORIES[category])} {rng.choice(_PII).format(n=index)}"
        elif roll < 0.11:
            text = rng.choice(_ODD_TEXTS)
        else:
            text = review_text(rng, _CATEGORIES[category])
        variables: dict[str, Any] = {
            "category": category,
            "product": _CATEGORIES[category],
            "rating": rating,
            "sentiment": "positive" if rating >= 4 else "mixed" if rating == 3 else "negative",
            "aspect": rng.choice(_ASPECTS),
            "words": rng.randint(40, 80),
        }
        if labels:
            variables["score"] = round(rng.uniform(0, 1), 4)
            variables["title"] = " ".join(rng.choices(_WORDS, k=3))
            variables["contact"] = rng.choice(["a@example.com", "b@example.com", "none"])
        records.append(
            {
                "index": index,
                "status": "ok",
                "text": text,
                "data": None,
                "variables": variables,
                "error": None,
                "provenance": _provenance(rng, "product-review", "1.1", index),
            }
        )
    return records


_TOPICS = ["geography", "the solar system", "cooking", "world history", "computers"]


def qa_records(n: int, *, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` records of the JSON template ``qa-pairs`` 1.0: mostly valid, some missing a key,
    wrapped in prose, not JSON at all, too short (a schema error quoting the value, which may
    be personal data) or duplicated."""
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    for index in range(n):
        topic = rng.choice(_TOPICS)
        question = f"What is {' '.join(rng.choices(_WORDS, k=4))} in {topic}?"
        answer = " ".join(rng.choices(_WORDS, k=rng.randint(1, 12)))
        data: dict[str, Any] | None = {"question": question, "answer": answer}
        roll = rng.random()
        if roll < 0.04:
            data = {"question": question}
        elif roll < 0.05:
            data = {"question": "Why?", "answer": answer}  # too short
        elif roll < 0.06:  # not a string: the error quotes it, personal data and all
            data = {"question": question, "answer": ["write to jo@example.com"]}
        elif roll < 0.08:
            data = {"question": question, "answer": answer, "extra": [1, 2, {"deep": True}]}
        form = rng.random()  # how the answer is written
        if form < 0.06 and records:
            text = records[-1]["text"]
            data = records[-1]["data"]
        elif form < 0.10:
            text = f"Sure! Here it is: {json.dumps(data)} Hope this helps."
        elif form < 0.12:
            text, data = f"The answer is {answer}.", None
        else:
            text = json.dumps(data)
        records.append(
            {
                "index": index,
                "status": "ok",
                "text": text,
                "data": data,
                "variables": {"topic": topic, "difficulty": rng.choice(["easy", "medium", "hard"])},
                "error": None,
                "provenance": _provenance(rng, "qa-pairs", "1.0", index),
            }
        )
    return records


def cluster_records(n: int, *, seed: int = 0) -> list[str]:
    """``n`` texts, a third of them near copies of one long text (one LSH bucket of more than
    64 members), the rest reviews."""
    rng = random.Random(seed)
    base = " ".join(rng.choices(_WORDS, k=120))
    return [_variant(rng, base) if i % 3 == 0 else review_text(rng, "kettle") for i in range(n)]


def flat_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records as one flat row each (CSV, Parquet): ``variables.*`` and a few provenance
    columns."""
    rows = []
    for record in records:
        row: dict[str, Any] = {"index": record["index"], "text": record["text"]}
        row.update({f"variables.{k}": v for k, v in record["variables"].items()})
        row["provenance.finish_reason"] = record["provenance"]["finish_reason"]
        rows.append(row)
    return rows


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    import csv

    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_parquet(path: Path, rows: list[dict[str, Any]]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Small row groups: a reader that goes group by group meets several of them.
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=64)
    return path
