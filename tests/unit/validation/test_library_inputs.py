"""The validation functions of the library refuse what is no text, naming the argument
(``InvalidParameter``), instead of failing inside a tokenizer or scoring a string character by
character; ``Recipe`` built in code refuses a bad recipe as a file does (``RecipeError``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import textnlp
from textnlp.errors import InvalidParameter, RecipeError
from textnlp.validation import (
    exact_duplicates,
    find_leakage,
    find_near_duplicates,
    find_pii,
    mask_pii,
    similarity,
    text_quality,
)

OFF: dict[str, Any] = {"embeddings": False, "bertscore": False}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: similarity([None], ["a"], **OFF), r"candidates\[0\] must be a string"),
        (lambda: similarity("abc", "abc", **OFF), "candidates must be a list of strings"),
        (lambda: similarity(["a\ud800"], ["a"], **OFF), r"candidates\[0\] is not valid Unicode"),
        (lambda: similarity(["a"], [1], **OFF), r"references\[0\] must be a string"),  # type: ignore[list-item]
        (lambda: text_quality(None), "text must be a string, not NoneType"),
        (lambda: text_quality(5), "text must be a string, not int"),  # type: ignore[arg-type]
        (lambda: find_pii(b"a@b.co"), "text must be a string, not bytes"),  # type: ignore[arg-type]
        (lambda: mask_pii("x\udc80"), "text is not valid Unicode"),
        (lambda: exact_duplicates("ab"), "texts must be a list of strings"),
        (lambda: find_near_duplicates(["a", None]), r"texts\[1\] must be a string"),
        (lambda: find_leakage(["a"], "a"), "references must be a list of strings"),
    ],
)
def test_what_is_no_text_is_refused_by_name(call: Callable[[], Any], message: str) -> None:
    # (The calls' wrong types are the point: a caller without a type checker makes them.)
    with pytest.raises(InvalidParameter, match=message):
        call()


def test_a_recipe_built_in_code_is_checked_as_a_file_is() -> None:
    with pytest.raises(RecipeError, match=r"^recipe 'x': columns\.a: Input tag 'nope'"):
        textnlp.Recipe(id="x", columns={"a": {"type": "nope"}})
    made = textnlp.Recipe(id="ok", columns={"a": {"type": "category", "values": ["x"]}}, output="a")
    assert made.output == "a"


def test_scores_of_identical_texts_keep_to_their_documented_ranges() -> None:
    # float rounding gave BLEU 100.00000000000004, cosine 1.0000002, a diversity below 0.
    from textnlp.validation.diversity import semantic_diversity
    from textnlp.validation.embedding import Embedder

    texts = ["The same review of the same lamp."] * 10
    report = similarity(texts[:3], texts[:3])
    for pair in report.pairs:
        assert pair.bleu == 100.0 and pair.chrf == 100.0
        assert pair.cosine is not None and pair.cosine <= 1.0
        assert pair.bertscore_f1 is not None and pair.bertscore_f1 <= 1.0
    assert report.corpus.bleu == 100.0
    diversity = semantic_diversity(Embedder.shared().encode(texts))
    assert diversity is not None and 0.0 <= diversity < 1e-6
