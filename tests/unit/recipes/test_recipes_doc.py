"""docs/recipes.md describes every built-in recipe the library ships, and counts them right."""

from __future__ import annotations

import re
from pathlib import Path

from textnlp.generation.templates import TemplateLibrary

DOC = Path(__file__).resolve().parents[3] / "docs" / "recipes.md"
NUMBERS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def shipped() -> set[str]:
    return {recipe.id for recipe in TemplateLibrary.load().recipes()}


def test_every_builtin_recipe_has_a_section_and_a_table_row() -> None:
    text = DOC.read_text(encoding="utf-8")
    sections = set(re.findall(r"^## (\S+)$", text, flags=re.MULTILINE))
    rows = set(re.findall(r"^\| ([a-z0-9-]+) \| \d", text, flags=re.MULTILINE))  # not the header
    assert sections == shipped()
    assert rows == shipped()


def test_the_count_of_builtin_recipes_is_right() -> None:
    text = " ".join(DOC.read_text(encoding="utf-8").split())
    match = re.search(r"The (\w+) built-in recipes below", text)
    assert match is not None
    assert match.group(1) == NUMBERS[len(shipped()) - 1]
