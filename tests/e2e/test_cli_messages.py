"""Refusals that name the problem the user has (a missing file, a directory, a recipe given to
``templates show``, a file given to a job), and the bare commands that answer with their help:
no empty ``error:`` line. ``textnlp --version`` names the installed version."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

from tests.e2e.test_cli_errors import assert_one_line_exit_2, textnlp

RECIPE = "id: my-recipe\ncolumns:\n  a: {type: category, values: [x, y]}\noutput: a\n"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing.yaml", "no such file: missing.yaml"),
        ("missing.yml", "no such file: missing.yml"),
        ("sub/missing", "no such file: sub/missing"),
        ("somedir", "somedir is a directory, not a template file"),
        ("notes.txt", "notes.txt is not a template file"),
    ],
)
@pytest.mark.parametrize("command", ["generate", "templates-show", "recipes-show"])
def test_a_path_is_told_as_a_path(tmp_path: Path, command: str, name: str, message: str) -> None:
    (tmp_path / "somedir").mkdir()
    (tmp_path / "notes.txt").write_text("id: notes\n")
    args = {
        "generate": ["generate", "-t", name, "-n", "1", "-o", "out.jsonl"],
        "templates-show": ["templates", "show", name],
        "recipes-show": ["recipes", "show", name],
    }[command]
    result = textnlp(*args)
    assert_one_line_exit_2(result, message)
    assert "unknown template" not in result.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_an_unknown_id_is_still_an_unknown_id() -> None:
    assert_one_line_exit_2(textnlp("templates", "show", "nope"), "unknown template or recipe")


def test_an_unknown_id_of_any_length_is_quoted_short() -> None:
    """The whole id was echoed: 3,000 characters on one line of stderr."""
    result = textnlp("templates", "show", "x" * 3000)
    assert_one_line_exit_2(result, "unknown template or recipe 'xxxx")
    assert "x" * 80 not in result.stderr and "…" in result.stderr
    result = textnlp(
        "generate", "-t", "product-review", "-m", "m" * 3000, "-n", "1", "-o", "o.jsonl"
    )
    assert_one_line_exit_2(result, "unknown model 'mmmm")
    assert len(result.stderr) < 200


@pytest.mark.parametrize("given", ["my-recipe.yaml", "product-reviews"], ids=["file", "id"])
def test_templates_show_of_a_recipe_points_to_recipes_show(tmp_path: Path, given: str) -> None:
    (tmp_path / "my-recipe.yaml").write_text(RECIPE)
    assert_one_line_exit_2(
        textnlp("templates", "show", given),
        f"{given} is a recipe, not a template: show it with `textnlp recipes show {given}`",
    )
    assert textnlp("recipes", "show", given).returncode == 0


@pytest.mark.parametrize("given", ["my-recipe.yaml", "recipes/my-recipe"])
def test_a_job_takes_a_catalogue_id_not_a_file(tmp_path: Path, given: str) -> None:
    (tmp_path / "my-recipe.yaml").write_text(RECIPE)
    result = textnlp("jobs", "submit", "-t", given, "-n", "2")
    assert_one_line_exit_2(
        result, f"a job takes the id of a catalogue template or recipe, not a file (got {given})"
    )
    assert "should match pattern" not in result.stderr
    assert textnlp("jobs", "list").stdout.strip() == "[]"  # nothing was queued


@pytest.mark.parametrize("args", [[], ["templates"], ["jobs"], ["users"]], ids=repr)
def test_a_bare_command_prints_its_help_alone(args: list[str]) -> None:
    result = textnlp(*args)
    assert result.returncode == 2  # as Typer's no_args_is_help
    assert result.stderr == ""  # no empty "error: " line
    assert "Usage:" in result.stdout and "Commands" in result.stdout


def test_version() -> None:
    result = textnlp("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"textnlp {metadata.version('textnlp')}\n"


def test_templates_show_of_a_template_that_cannot_render_prints_nothing_first(
    tmp_path: Path,
) -> None:
    # The definition went to stdout before the error: output, then a failure.
    (tmp_path / "tdiv.yaml").write_text(
        'id: tdiv\nversion: "1.0"\nuser: "{{ topic / 2 }}"\nvariables:\n  topic: {values: [a]}\n'
    )
    result = textnlp("templates", "show", "./tdiv.yaml")
    assert_one_line_exit_2(result, "unsupported operand type(s) for /")
    assert result.stdout == ""


def test_templates_show_prints_a_prompt_with_brackets_as_written(tmp_path: Path) -> None:
    # A template's text was read as rich markup: "[/y]" closed no tag, and "[bold]" vanished.
    (tmp_path / "tmark.yaml").write_text(
        'id: tmark\nversion: "1.0"\nuser: "List [bold]x[/] and [/y] for {{ topic }}"\n'
        'variables:\n  topic: {values: ["[red]z"]}\n'
    )
    result = textnlp("templates", "show", "./tmark.yaml")
    assert result.returncode == 0, result.stderr
    assert "user: List [bold]x[/] and [/y] for [red]z" in result.stdout


def test_an_output_path_with_brackets_is_printed_as_written(tmp_path: Path) -> None:
    # "[bold]" in a file's name was read as markup (and "[/x]" would close no tag).
    from tests.support.real_cli import run_cli

    name = "[bold]x[/bold].jsonl"
    args = ["generate", "-t", "news-headline", "-n", "1", "--max-tokens", "4", "-o", name]
    made = run_cli(tmp_path, *args, timeout=120)
    assert made.returncode == 0, made.stderr
    assert f"dataset: {name}" in made.stdout and (tmp_path / name).is_file()


def test_models_list_says_yes_and_no_without_markup(tmp_path: Path) -> None:
    # The table printed "[green]yes[/]" and "[red]no[/]" literally once its cells became text;
    # a user's description and path are still shown as written, never read as markup.
    models = tmp_path / "models.yaml"
    models.write_text(
        "models:\n  - id: mine\n    backend: llamacpp\n"
        f"    path: {tmp_path / '[red]gone.gguf'}\n    description: '[bold]x[/] mine'\n"
    )
    env = {"TEXTNLP_MODELS_FILE": str(models), "COLUMNS": "250"}
    result = textnlp("models", "list", env=env)
    assert result.returncode == 0, result.stderr
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if "│" in line}
    assert "│ yes " in rows["smollm2-135m"], result.stdout
    assert "│ no (model file not found: " in rows["mine"], result.stdout
    assert "[red]gone.gguf)" in rows["mine"] and "│ [bold]x[/] mine " in rows["mine"]
    assert "[green]" not in result.stdout and "[red]no" not in result.stdout
