"""A recipe run never writes over a file it reads.

Its output or rejects file being one of the recipe's seed files (``./x``, ``../dir/x``, a
symbolic or a hard link of it: ``writers.same_file``), or an export directory holding one, is
refused before any model runs; the run would replace the seed file with its own dataset.
"""

from __future__ import annotations

from pathlib import Path

from textnlp.errors import OutputError
from textnlp.generation.recipes.recipe import Recipe
from textnlp.generation.recipes.samplers import SeedSampler
from textnlp.generation.recipes.seeds import display_name
from textnlp.generation.writers import format_of, same_file


def seed_files(recipe: Recipe) -> dict[str, tuple[str, Path]]:
    """The seed files ``recipe`` reads, by column: as the recipe names it (what messages show)
    and where it is (a relative path starts at the recipe's directory, as
    ``SeedSampler.prepare`` reads it)."""
    found: dict[str, tuple[str, Path]] = {}
    for name, column in recipe.columns.items():
        if isinstance(column, SeedSampler):
            path = Path(column.path)
            found[name] = (column.path, path if path.is_absolute() else recipe.base_dir / path)
    return found


def check_not_a_seed(recipe: Recipe, *, output: Path | None, rejects: Path | None) -> None:
    """``OutputError`` naming the seed file when ``output`` or ``rejects`` would replace it."""
    seeds = seed_files(recipe)
    for noun, target in (("output", output), ("rejects file", rejects)):
        if target is None:
            continue
        for column, (written, seed) in seeds.items():
            named = f"the recipe's seed file {display_name(written)} (column {column})"
            if same_file(target, seed):
                raise OutputError(f"{noun} {target} is {named}; write to another file")
            if _holds(target, seed):
                raise OutputError(f"{noun} {target} holds {named}; write to another directory")


def _holds(target: Path, seed: Path) -> bool:
    """An export directory is replaced whole: a seed file inside it would go with it."""
    return format_of(target) == "hf" and seed.resolve().is_relative_to(target.resolve())
