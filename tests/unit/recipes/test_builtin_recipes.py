"""The built-in recipes (``textnlp/recipes/*.yaml``): each loads, resolves and is shipped."""

from __future__ import annotations

import json
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from textnlp.generation.recipes.columns import Dialogue, LlmJudge, _LlmColumn
from textnlp.generation.recipes.recipe import Recipe
from textnlp.generation.recipes.samplers import SeedSampler
from textnlp.generation.templates import TemplateLibrary

BUILTIN = (
    "evol-instruct",
    "magpie",
    "persona-qa",
    "preference-pairs",
    "self-instruct",
    "support-chat",
)
#: The e2e tests run every recipe on two CPU cores: llm columns stay short.
MAX_TOKENS = 120
ROOT = Path(__file__).resolve().parents[3]


def builtin(recipe_id: str) -> Recipe:
    return TemplateLibrary.load().source(recipe_id)  # type: ignore[return-value]


def test_the_library_holds_every_builtin_recipe() -> None:
    ids = {recipe.id for recipe in TemplateLibrary.load().recipes()}
    assert set(BUILTIN) <= ids


@pytest.mark.parametrize("recipe_id", BUILTIN)
def test_a_builtin_recipe_prepares_without_a_model(recipe_id: str) -> None:
    recipe = builtin(recipe_id)
    assert isinstance(recipe, Recipe)
    recipe.prepare()  # seed files found next to the recipe, their fields checked
    assert recipe.description
    assert recipe.filters(), "every built-in recipe filters what small models get wrong"
    assert recipe.output_column() in recipe.columns


@pytest.mark.parametrize("recipe_id", BUILTIN)
def test_llm_columns_are_short(recipe_id: str) -> None:
    for name, column in builtin(recipe_id).columns.items():
        if isinstance(column, _LlmColumn):
            limit = column.params.get("max_tokens")
            assert limit is not None and limit <= MAX_TOKENS, name
            if not isinstance(column, LlmJudge):
                assert limit >= 40, name
        elif isinstance(column, Dialogue):
            for role in column.roles.values():
                assert 40 <= role.params.get("max_tokens", 0) <= MAX_TOKENS, name


@pytest.mark.parametrize("recipe_id", BUILTIN)
def test_a_builtin_recipe_exports_chat_data(recipe_id: str) -> None:
    export = builtin(recipe_id).export
    assert export.fields() in (["messages"], ["prompt", "chosen", "rejected"])


def test_the_preference_recipe_and_the_dialogue_export_what_trl_reads() -> None:
    assert builtin("preference-pairs").export.preference
    dialogue = builtin("support-chat")
    assert isinstance(dialogue.export.messages, str)
    assert isinstance(dialogue.columns[dialogue.export.messages], Dialogue)


def test_the_seed_tasks_are_varied_and_complete() -> None:
    path = resources.files("textnlp") / "recipes" / "self-instruct-seeds.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    assert len(rows) >= 25
    assert all(set(row) == {"instruction", "category"} for row in rows)
    assert all(row["instruction"].strip() and row["category"].strip() for row in rows)
    assert len({row["instruction"] for row in rows}) == len(rows)
    assert len({row["category"] for row in rows}) >= 8


def test_seed_columns_read_files_shipped_beside_the_recipes() -> None:
    shipped = resources.files("textnlp") / "recipes"
    for recipe_id in BUILTIN:
        for column in builtin(recipe_id).columns.values():
            if isinstance(column, SeedSampler):
                assert (shipped / column.path).is_file(), (recipe_id, column.path)


def test_the_wheel_includes_the_recipes_and_their_seed_files() -> None:
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    package_data = settings["tool"]["setuptools"]["package-data"]["textnlp"]
    assert "recipes/*.yaml" in package_data
    assert "recipes/*.jsonl" in package_data


@pytest.mark.parametrize(
    ("review", "finish", "rejected_by"),
    [
        ("Great earbuds: the battery lasts all week and they never fall out of my ears.", "stop",
         []),
        ("I bought it last month and it still grinds as evenly as on the first day!", "stop", []),
        ('The tent kept us dry through two nights of rain and packs down small."', "stop", []),
        ("The grinder is loud, but it is quick and the burrs have not dulled at all, and the",
         "length", ["finished", "complete"]),
        # a whole sentence, but the model meant to go on: max_tokens stopped it
        ("Great earbuds: the battery lasts all week and they never fall out.", "length",
         ["finished"]),
        ("A solid moisturiser that works for my skin. Keep it under 52 words.", "stop",
         ["not_a_refusal"]),
        ("Sure, here you go. The earbuds sound fine for the price and pair quickly too.", "stop",
         ["not_a_refusal"]),
        ("Write only the review text. These earbuds are comfortable and sound clear enough.",
         "stop", ["not_a_refusal"]),
        ("My second coffee of the day and still great, rich and smooth.\n\nP.S.\n\nP.S.\n\nP.S.",
         "stop", ["no_repeated_lines"]),
        ("Fine kettle, boils fast and quietly.\n\nIt pours well too.\n\nWorth it.", "stop", []),
    ],
)  # fmt: skip
def test_the_make_run_recipe_keeps_whole_reviews_only(
    review: str, finish: str, rejected_by: list[str]
) -> None:
    """``make run``'s recipe: what a 135M model writes besides a review (the instructions
    read back, an assistant's opener, a review cut off by max_tokens, mid-word or on a full
    stop, a line looped) is refused."""
    recipe = builtin("product-reviews")
    rules = {name: recipe.columns[name] for name in recipe.filters()}
    refused = [
        name
        for name, rule in rules.items()
        if rule.verdict({"review": review}, {"review": finish})  # type: ignore[union-attr]
    ]
    assert refused == rejected_by


@pytest.mark.parametrize(
    ("question", "verdict"),
    [
        ("How do I start saving money each month?", None),
        ("如何在家里做一顿健康又便宜的晚饭？", None),  # full-width question mark
        ("家で簡単にできる運動は何ですか？ ", None),
        ("Tell me about saving money.", "rejects"),
    ],
)
def test_persona_qa_accepts_a_full_width_question_mark(question: str, verdict: str | None) -> None:
    """Its question filters: "?" or "？" at the end, 4-40 words counted as validation does."""
    recipe = builtin("persona-qa")
    reasons = [
        recipe.columns[name].check({"question": question})  # type: ignore[union-attr]
        for name in ("question_is_question", "question_length")
    ]
    assert (None if all(r is None for r in reasons) else "rejects") == verdict
