"""Filter columns of recipes: each rule's pass and reject, hostile input, refusal precision."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from textnlp.generation.recipes.filters import (
    FILTER_RULES,
    DuplicateIndex,
    ExpressionFilter,
    Filter,
    JsonSchemaFilter,
    NearDuplicateFilter,
    RefusalFilter,
)
from textnlp.validation import find_near_duplicates

ADAPTER: TypeAdapter[Any] = TypeAdapter(Filter)


def load(**spec: Any) -> Any:
    return ADAPTER.validate_python({"type": "filter", **spec})


# loading -------------------------------------------------------------------------------------
def test_every_rule_loads_through_the_union() -> None:
    specs: dict[str, dict[str, Any]] = {
        "expression": {"expr": "rating >= 4"},
        "regex": {"column": "a", "pattern": "^ok"},
        "json-schema": {"column": "a", "schema": {"type": "object"}},
        "length": {"column": "a", "min_words": 3},
        "language": {"column": "a", "languages": ["en"]},
        "refusal": {"column": "a"},
        "judge": {"column": "a", "min": 3},
        "finished": {"column": "a"},
        "near-duplicate": {"column": "a"},
    }
    assert set(specs) == set(FILTER_RULES)
    for rule, spec in specs.items():
        loaded = load(rule=rule, **spec)
        assert loaded.rule == rule
        assert loaded.stateful is (rule == "near-duplicate")


@pytest.mark.parametrize(
    "spec",
    [
        {"rule": "nope", "column": "a"},
        {"rule": "regex", "column": "a", "pattern": "x", "surprise": 1},
        {"type": "llm-text", "rule": "refusal", "column": "a"},
        {"rule": "length", "column": "a"},
        {"rule": "length", "column": "a", "min_chars": 10, "max_chars": 5},
        {"rule": "language", "column": "a", "languages": []},
        {"rule": "language", "column": "a", "languages": ["english"]},
        {"rule": "judge", "column": "a", "min": 3, "criteria": []},
        {"rule": "judge", "column": "a", "min": float("nan")},  # every comparison false
        {"rule": "judge", "column": "a", "min": float("inf")},
        {"rule": "near-duplicate", "column": "a", "threshold": 0},
        {"rule": "expression", "expr": "rating >="},
        {"rule": "expression", "expr": "a }}{{ b"},
    ],
)
def test_bad_specs_fail_at_load(spec: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ADAPTER.validate_python({"type": "filter", **spec})


def test_a_filter_expr_in_braces_says_it_takes_none() -> None:
    # It said "expected token ':', got '}'".
    with pytest.raises(ValidationError, match="a bare expression, without {{ }}"):
        ADAPTER.validate_python({"type": "filter", "rule": "expression", "expr": "{{ a > 5 }}"})


def test_references() -> None:
    assert load(rule="refusal", column="answer").references() == {"answer"}
    expression = load(rule="expression", expr="score.helpfulness.score >= 3 and range(3) | list")
    assert expression.references() == {"score"}
    assert load(rule="expression", expr="x if y else z").references() == {"x", "y", "z"}


# expression ----------------------------------------------------------------------------------
def test_expression_pass_reject_and_errors() -> None:
    rule = load(rule="expression", expr="rating >= 4 and answer | length > 3")
    assert rule.check({"rating": 5, "answer": "long enough"}) is None
    assert rule.check({"rating": 2, "answer": "long enough"}) == (
        "expression false: rating >= 4 and answer | length > 3"
    )
    assert rule.check({"answer": "x"}) == "expression error: 'rating' is undefined"
    assert rule.check({"rating": "five", "answer": "x"}).startswith("expression error")
    assert load(rule="expression", expr="missing").check({}).startswith("expression error")


def test_expression_with_an_unknown_filter_anywhere_is_refused_at_load() -> None:
    with pytest.raises(ValidationError, match="expression does not parse: no filter named 'up'"):
        load(rule="expression", expr="(answer | up) if rating else true")


def test_expression_sandbox_refuses_and_bounds() -> None:
    rule = load(rule="expression", expr="answer.__class__.__mro__")
    assert rule.check({"answer": "x"}).startswith("expression error: access to attribute")
    # Refused before the work is done (a hang would end in the suite's per-test timeout).
    assert load(rule="expression", expr="'a' * 10**10").check({}) == (
        "expression error: sequence too long"
    )
    assert load(rule="expression", expr="2 ** 100000000").check({}) == (
        "expression error: number too large"
    )


# regex ---------------------------------------------------------------------------------------
def test_regex_search_and_must_not_match() -> None:
    rule = load(rule="regex", column="answer", pattern=r"\d+ stars?")
    assert rule.check({"answer": "I give it 5 stars."}) is None
    assert rule.check({"answer": "Great."}) == r"answer does not match /\d+ stars?/"
    banned = load(rule="regex", column="answer", pattern="(?i)lorem", must_match=False)
    assert banned.check({"answer": "fine text"}) is None
    assert banned.check({"answer": "Lorem ipsum"}) == "answer matches /(?i)lorem/ at 'Lorem'"


def test_regex_hostile_input() -> None:
    for pattern in [r"^(a+)+$\1", r"(?=x)y", "(", "a" * 5000]:
        with pytest.raises(ValidationError):
            load(rule="regex", column="a", pattern=pattern)
    rule = load(rule="regex", column="a", pattern=r"^(a+)+$")  # RE2 runs it in linear time
    assert rule.check({"a": "a" * 5_000_000 + "!"}) == "a does not match /^(a+)+$/"
    assert rule.check({}) == "column 'a' is missing"
    assert rule.check({"a": None}) == "column 'a' is missing"
    assert rule.check({"a": 12}) == "column 'a' holds int, not text"
    assert rule.check({"a": "\ud800"}) == "column 'a' is not valid Unicode"


# json-schema ---------------------------------------------------------------------------------
SCHEMA = {
    "type": "object",
    "properties": {"rating": {"type": "integer", "minimum": 1, "maximum": 5}},
    "required": ["rating"],
}


def test_json_schema_objects_and_strings() -> None:
    rule = load(rule="json-schema", column="facts", schema=SCHEMA)
    assert isinstance(rule, JsonSchemaFilter)
    assert rule.check({"facts": {"rating": 4}}) is None
    assert rule.check({"facts": '{"rating": 5}'}) is None
    assert rule.check({"facts": {"rating": 9}}) == (
        "facts breaks the schema at rating: 9 is greater than the maximum of 5"
    )
    assert rule.check({"facts": {}}).startswith("facts breaks the schema at value: 'rating'")
    assert rule.check({"facts": "not json"}).startswith("facts is not valid JSON")
    assert rule.check({"facts": "[" * 100_000}).startswith("facts is not valid JSON")
    assert rule.check({"facts": 3}).startswith("facts breaks the schema at value")
    assert rule.check({}) == "column 'facts' is missing"
    assert JsonSchemaFilter(column="x", json_schema=SCHEMA, rule="json-schema").json_schema


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "https://example.com/schema.json"},
        {"properties": {"a": {"$ref": "file:///etc/passwd"}}},
        {"type": "string", "pattern": "(a)\\1"},
        {"type": "nonsense"},
    ],
)
def test_json_schema_refused_at_load(schema: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="invalid JSON Schema"):
        load(rule="json-schema", column="a", schema=schema)


def test_json_schema_internal_references_load() -> None:
    schema = {"$defs": {"n": {"type": "integer"}}, "properties": {"a": {"$ref": "#/$defs/n"}}}
    rule = load(rule="json-schema", column="x", schema=schema)
    assert rule.check({"x": {"a": 1}}) is None
    assert rule.check({"x": {"a": "1"}}).startswith("x breaks the schema at a")


# length --------------------------------------------------------------------------------------
def test_length_bounds() -> None:
    rule = load(rule="length", column="a", min_words=3, max_words=5, max_chars=30)
    assert rule.check({"a": "  one two three  "}) is None
    assert rule.check({"a": "one two"}) == "2 words < min 3"
    assert rule.check({"a": "a b c d e f"}) == "6 words > max 5"
    assert rule.check({"a": "abcdefghij " * 3}) == "32 chars > max 30"
    assert load(rule="length", column="a", min_chars=1).check({"a": "   "}) == "0 chars < min 1"
    assert rule.check({"a": ["list"]}) == "column 'a' holds list, not text"
    huge = load(rule="length", column="a", max_words=10)
    assert huge.check({"a": "word " * 1_000_000}) == "1000000 words > max 10"


# language ------------------------------------------------------------------------------------
def test_language() -> None:
    rule = load(rule="language", column="a", languages=["en"])
    english = "The grinder is quiet, fast and easy to clean. I use it every morning."
    french = "Le moulin est silencieux, rapide et facile à nettoyer. Je l'utilise chaque matin."
    german = "Die Mühle ist leise, schnell und leicht zu reinigen. Ich benutze sie jeden Morgen."
    assert rule.check({"a": english}) is None
    assert rule.check({"a": french}) == "language 'fr' not in ['en']"
    assert rule.check({"a": german}) == "language 'de' not in ['en']"
    assert rule.check({"a": "Oui, merci."}) is None  # too short to tell
    assert rule.check({"a": "1234567890 1234567890 !!!"}) == "no language detected in a"
    assert rule.check({"a": 5}) == "column 'a' holds int, not text"
    several = load(rule="language", column="a", languages=["EN", "fr"])
    assert several.languages == ["en", "fr"]
    assert several.check({"a": french}) is None
    assert rule.check({"a": english * 10_000}) is None


# judge ---------------------------------------------------------------------------------------
SCORES = {
    "helpfulness": {"score": 2, "reason": "vague"},
    "accuracy": {"score": 5, "reason": "right"},
}


def test_judge_each_and_mean() -> None:
    each = load(rule="judge", column="score", min=3)
    assert each.check({"score": SCORES}) == "score helpfulness 2 < 3"
    accuracy = load(rule="judge", column="score", min=3, criteria=["accuracy"])
    assert accuracy.check({"score": SCORES}) is None
    mean = load(rule="judge", column="score", min=3, mode="mean")
    assert mean.check({"score": SCORES}) is None
    assert load(rule="judge", column="score", min=3.6, mode="mean").check({"score": SCORES}) == (
        "mean score 3.5 < 3.6"
    )


def test_judge_odd_values() -> None:
    rule = load(rule="judge", column="score", min=3, criteria=["helpfulness", "style"])
    assert rule.check({"score": {"helpfulness": {"score": 4}}}) == "no score for 'style' in score"
    for bad in ["4", None, True, float("nan"), [4]]:
        value = {"helpfulness": {"score": bad}, "style": {"score": 5}}
        assert rule.check({"score": value}) == "score helpfulness is not a number"
    assert rule.check({"score": {"helpfulness": "oops", "style": 5}}) == (
        "score helpfulness is not a number"
    )
    assert rule.check({"score": "5"}) == "column 'score' holds str, not judge scores"
    assert rule.check({}) == "column 'score' is missing"
    assert load(rule="judge", column="s", min=1).check({"s": {}}) == "no scores in s"


# refusal and meta-text -----------------------------------------------------------------------
ORDINARY = [
    "I can't recommend this coffee grinder enough. It is quiet and fast.",
    "Sorry to hear the parcel was late — here is how to get a refund: open Orders and "
    "click 'Request refund'.",
    "I can't help but smile every time I use this blender.",
    "As an AI researcher, I found the chapter on transformers excellent.",
    "I'm not able to get the app to connect to my wifi, so two stars.",
    "Here's my honest review after three months: the battery still lasts two days.",
    "Certainly not worth the price. The strap broke in a week.",
    "It is not appropriate for children under three because of small parts.",
    "Can you tell me how to reset the router to factory settings?",
    "The agent told me: 'I'm sorry, but I can't process a refund after 30 days.'",
    "I don't have the receipt anymore, can I still return it?",
    "This review was written after two weeks of daily use.",
    "I hope the next version fixes the battery life.",
    "Arrived on time and exactly as described. Five stars.",
    "I cannot believe how comfortable these headphones are.",
    "Note: the charger is sold separately.",
    "I can't create an account on the app, it keeps crashing.",
    "Sure, it's pricey, but here's the thing: it lasts for years.",
    "I'm an AI engineer and this keyboard is perfect for long coding sessions.",
    "See [1] for the warranty terms; the manual [sic] is badly translated.",
    "Unfortunately I can't help with refunds myself, but the billing team can: write to them.",
    "I don't have personal experience with this brand, can anyone recommend it?",
    "I'd be happy to help you track the parcel: please send your order number.",
    "As an assistant manager at a cafe, I need a grinder that survives 200 shots a day.",
    "I won't write a long review, but this kettle is the best I have owned.",
    "As an AI researcher, I found the chapter on transformers excellent.",
    "As a chatbot fan, I expected more from this speaker.",
]

REJECTED = [
    ("As an AI product review assistant, I can help you write a review.", "meta-text"),
    ("Here's a positive review of the coffee grinder:\n\nI love it.", "meta-text"),
    ("I'm sorry, but I can't write a negative review about a real company.", "refusal"),
    ("I cannot fulfill that request.", "refusal"),
    ("As an AI language model, I don't have personal opinions.", "refusal"),
    ("I am just an AI, so I can't taste coffee.", "refusal"),
    ("I don't have personal opinions, but many users say it is good.", "refusal"),
    ("Sure! Here is a review for the wireless earbuds:", "meta-text"),
    ("Great blender, would buy again. I hope this helps!", "meta-text"),
    ("Certainly! The blender is great and easy to clean.", "meta-text"),
    ("Best purchase ever!\n- [Your Name]", "placeholder"),
    ("I bought the [Product Name] last week and it broke.", "placeholder"),
    ("Great speakers. Note: This review is fictional.", "meta-text"),
    ("This review was generated by an AI for illustration.", "meta-text"),
    ("The review below is 50 words long, as requested.", "meta-text"),
    ("I'm not able to assist with that.", "refusal"),
    ("Lovely mug. (Word count: 52)", "meta-text"),
    ("Five stars. Let me know if you need any changes!", "meta-text"),
    ("It is not appropriate for me to write a fake review.", "refusal"),
    ("I apologize, but I cannot provide personal opinions on products.", "refusal"),
    ("Dear {{customer_name}}, thank you for your order.", "placeholder"),
    ("I'd be happy to help you write a review for the blender!", "meta-text"),
    ("Sure thing. Here's a short product description.", "meta-text"),
    ("As a helpful assistant, I will describe the product.", "meta-text"),
    ("[Insert product name here] is the best purchase I made.", "placeholder"),
    # SmolLM2's own refusals, seen in the built-in recipes' runs
    (
        "I'm sorry for the misunderstanding, but as a text-based AI, I don't have the "
        "capability to provide recipes.",
        "refusal",
    ),
    (
        "I'm sorry for any misinterpretation, but as a chatbot designed to help with "
        "decision-making, my primary function is to assist users.",
        "refusal",
    ),
    (
        "I'm sorry for any inconvenience, but as a credit card company's AI assistant, I don't "
        "have the ability to perform specific tasks.",
        "refusal",
    ),
]


@pytest.mark.parametrize("text", ORDINARY)
def test_refusal_filter_keeps_ordinary_text(text: str) -> None:
    assert load(rule="refusal", column="a").check({"a": text}) is None


@pytest.mark.parametrize(("text", "kind"), REJECTED)
def test_refusal_filter_rejects_refusals_and_meta_text(text: str, kind: str) -> None:
    reason = load(rule="refusal", column="a").check({"a": text})
    assert reason is not None
    assert reason.startswith(f"matched {kind} pattern '") or reason.startswith(
        f'matched {kind} pattern "'
    )


def test_refusal_reason_and_options() -> None:
    rule = load(rule="refusal", column="a")
    assert rule.check({"a": "I cannot assist with that. " + "x" * 100}) == (
        "matched refusal pattern 'I cannot assist with that'"
    )
    assert rule.check({"a": "As an AI " + "x" * 10}) is None
    sure = rule.check({"a": "Sure! Here is " + "a" * 200})
    assert sure == "matched meta-text pattern 'Sure! Here'"
    wordy = rule.check({"a": "Here is a short but very honest customer review:"})
    assert wordy == "matched meta-text pattern 'Here is a short but very honest custome…'"
    quiet = load(rule="refusal", column="a", meta_text=False, placeholders=False)
    assert quiet.check({"a": "Sure! Here is a review: [Your Name]"}) is None
    assert quiet.check({"a": "I cannot fulfill that request."}) is not None
    extra = load(rule="refusal", column="a", refusals=False, extra_patterns=["(?i)lorem ipsum"])
    assert extra.check({"a": "I cannot fulfill that request."}) is None
    assert extra.check({"a": "Lorem Ipsum dolor"}) == "matched extra pattern 'Lorem Ipsum'"
    with pytest.raises(ValidationError):
        load(rule="refusal", column="a", extra_patterns=["(a)\\1"])


def test_refusal_reads_dialogues_and_objects() -> None:
    rule = load(rule="refusal", column="chat")
    chat = [
        {"role": "user", "content": "Can you recommend a grinder?"},
        {"role": "assistant", "content": "I'm sorry, I cannot help with that."},
    ]
    assert rule.check({"chat": chat}) == (
        "matched refusal pattern 'sorry, I cannot help with that' in chat[1].content"
    )
    assert rule.check({"chat": chat[:1]}) is None
    facts = {"title": "Great", "body": "Signed, [Your Name]", "stars": 5}
    assert rule.check({"chat": facts}) == "matched placeholder pattern '[Your Name]' in chat.body"
    assert rule.check({"chat": 5}) == "column 'chat' holds int, not text"
    assert rule.check({}) == "column 'chat' is missing"
    deep: Any = "As an AI language model"
    for _ in range(10_000):
        deep = [deep]
    assert rule.check({"chat": deep}) is None  # past MAX_NESTING: not read, no RecursionError


def test_refusal_on_a_huge_text() -> None:
    # Our patterns only, no backtracking between repeated pieces: a megabyte is checked whole
    # (its time is not asserted here: timings live in bench/).
    rule = load(rule="refusal", column="a")
    assert rule.check({"a": "I really like it, sorry and here is " * 100_000}) is None
    assert rule.check({"a": "x" * 1_000_000 + " I cannot fulfill that request."}) is not None


# near-duplicate ------------------------------------------------------------------------------
BASE = (
    "The coffee grinder arrived well packed and set up in minutes. It is quieter than my old "
    "one, the burrs give an even grind for espresso and for the French press, and the hopper "
    "holds enough beans for a week. Cleaning takes a brush and two minutes. After a month of "
    "daily use it still works like new, and the price was fair for the quality you get here."
)
OTHER = (
    "My daughter loves the wooden train set. The pieces fit together firmly, the paint has not "
    "chipped after weeks of play, and the little bridge is her favourite part. It is a bit "
    "expensive, but it feels like a toy that will be handed down to her cousins one day."
)


def test_near_duplicate_index() -> None:
    rule = load(rule="near-duplicate", column="a")
    assert isinstance(rule, NearDuplicateFilter)
    assert rule.check({"a": BASE}) is None  # the stateless part
    index = rule.index()
    assert isinstance(index, DuplicateIndex)
    assert index.check({"a": BASE}) is None
    assert index.check({"a": BASE}) is None  # not added yet: check alone remembers nothing
    index.add({"a": BASE}, 0)
    assert index.check({"a": BASE}) == "near-duplicate of record 0 (Jaccard ~1.00)"
    shouted = BASE.upper().replace(",", " ,")
    assert index.check({"a": shouted}) == "near-duplicate of record 0 (Jaccard ~1.00)"
    one_word = BASE.replace("quieter", "louder")
    reason = index.check({"a": one_word})
    assert reason is not None
    assert reason.startswith("near-duplicate of record 0 (Jaccard ~0.")
    assert index.check({"a": OTHER}) is None
    index.add({"a": OTHER}, 3)
    assert index.check({"a": OTHER}) == "near-duplicate of record 3 (Jaccard ~1.00)"
    assert index.check({"a": 7}) == "column 'a' holds int, not text"
    index.add({"a": 7}, 4)
    index.add({"a": OTHER}, 3)  # twice: ignored
    assert len(index) == 2


@pytest.mark.parametrize("threshold", [0.985, 0.999, 1.0])
def test_a_threshold_near_1_builds_an_index_and_finds_copies(threshold: float) -> None:
    """datasketch refuses to band such thresholds (it was a traceback at the run's start)."""
    index = load(rule="near-duplicate", column="a", threshold=threshold).index()
    index.add({"a": BASE}, 0)
    assert index.check({"a": BASE.upper()}) == "near-duplicate of record 0 (Jaccard ~1.00)"
    assert index.check({"a": OTHER}) is None


def test_invisible_characters_make_no_new_text() -> None:
    index = load(rule="near-duplicate", column="a").index()
    index.add({"a": BASE}, 0)
    hidden = " ".join(word[:1] + "\u200b" + word[1:] for word in BASE.split(" "))
    assert index.check({"a": hidden}) == "near-duplicate of record 0 (Jaccard ~1.00)"


def test_near_duplicate_filter_agrees_with_validate_on_chinese() -> None:
    # One character apart; \w+ read each clause as one "word", so no shingle was shared.
    first = (
        "这家餐厅的服务非常好，食物也很美味，价格合理，环境安静，"
        "服务员态度热情，上菜速度很快，我们下次还会再来这里吃饭。"
    )
    second = first.replace("吃饭", "用饭")
    assert find_near_duplicates([first, second], threshold=0.8).groups == [[0, 1]]
    index = load(rule="near-duplicate", column="a", threshold=0.8).index()
    index.add({"a": first}, 0)
    reason = index.check({"a": second})
    assert reason is not None and reason.startswith("near-duplicate of record 0")


def test_near_duplicate_characters_and_short_texts() -> None:
    index = load(rule="near-duplicate", column="a", shingles="chars", threshold=0.9).index()
    index.add({"a": "hello"}, 0)
    assert index.check({"a": "Hello!"}) == "near-duplicate of record 0 (Jaccard ~1.00)"
    assert index.check({"a": "goodbye"}) is None
    words = load(rule="near-duplicate", column="a").index()
    words.add({"a": "ok"}, 0)
    assert words.check({"a": "OK."}) is not None
    assert words.check({"a": "fine"}) is None
    words.add({"a": "\ud800 lone surrogate"}, 1)  # no UnicodeEncodeError


def test_finished_reads_how_the_call_ended_not_the_text() -> None:
    rule = load(rule="finished", column="review")
    whole = {"review": "A fine grinder."}
    assert rule.verdict(whole, {"review": "stop"}) is None
    assert rule.verdict(whole, {"review": "length"}) == "review stopped at max_tokens"
    assert rule.verdict(whole, {"other": "length"}) is None  # another column's call
    assert load(rule="length", column="review", min_words=3).verdict(whole, {}) is None


def test_models_are_the_documented_classes() -> None:
    assert isinstance(load(rule="expression", expr="true"), ExpressionFilter)
    assert isinstance(load(rule="refusal", column="a"), RefusalFilter)


def test_length_counts_words_of_unspaced_scripts_as_validation_does() -> None:
    """Chinese, Japanese and Thai have no spaces between words: text.split() made every
    record one "word", so every built-in recipe's min_words rejected them."""
    rule = load(rule="length", column="a", min_words=5)
    assert rule.check({"a": "我想学习如何在家做饭。"}) is None  # 9 characters: 9 words
    assert rule.check({"a": "家で料理を作りたい"}) is None
    assert rule.check({"a": "ฉันอยากเรียนทำอาหาร"}) is None
    assert rule.check({"a": "भारत की राजधानी"}) == "3 words < min 5"  # marks stay in words
