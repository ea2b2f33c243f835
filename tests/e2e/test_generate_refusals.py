"""What a user can get wrong around ``generate``, refused as one line on stderr, exit 2, with
any existing output untouched (the cases of a new user's audit: each was a traceback, a stray
blank line, exit 1 or a changed file before)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

TEXTNLP = [sys.executable, "-m", "textnlp.cli.main"]
KEPT = "a line the user keeps\n"


def textnlp(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TEXTNLP, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
        env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def refused(result: subprocess.CompletedProcess[str], message: str) -> None:
    """Exactly one line (no blank line before it), exit 2."""
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    assert message in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("var", "message"),
    [
        ("category=nosuchcat", "variable 'product': 'dict object' has no attribute 'nosuchcat'"),
        ("rating=abc", "variable 'sentiment': '>=' not supported"),
        # A range's number, fixed as text or as no number at all: every prompt would say it.
        ("words=many", "variable 'words' takes a whole number (got 'many')"),
        ("words=2.5", "variable 'words' takes a whole number (got 2.5)"),
    ],
)
def test_a_fixed_value_the_template_cannot_take(tmp_path: Path, var: str, message: str) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text(KEPT)
    result = textnlp("generate", "-t", "product-review", "-n", "2", "-o", str(out), "--var", var,
                     cwd=tmp_path)  # fmt: skip
    refused(result, message)
    assert out.read_text() == KEPT
    refused(textnlp("preview", "product-review", "-n", "1", "--var", var, cwd=tmp_path), message)


def test_a_fixed_value_the_recipe_cannot_take(tmp_path: Path) -> None:
    """As for a template: refused before a model runs, not found by every candidate."""
    out = tmp_path / "out.jsonl"
    out.write_text(KEPT)
    message = "--var category='furniture': column product: 'dict object' has no attribute"
    result = textnlp("generate", "-r", "product-reviews", "-n", "2", "-o", str(out),
                     "--var", "category=furniture", cwd=tmp_path)  # fmt: skip
    refused(result, message)
    assert out.read_text() == KEPT
    preview = textnlp("preview", "product-reviews", "-n", "1", "--var", "category=furniture",
                      cwd=tmp_path)  # fmt: skip
    refused(preview, message)


@pytest.mark.parametrize(
    ("variables", "user", "message"),
    [
        (
            {"a": {"expr": "{{ b }}"}, "b": {"expr": "{{ a }}"}},
            "Say {{ a }}",
            "variable 'a' reads 'b', which is not set before it",
        ),
        ({"a": {"expr": "{{ 1 / 0 }}"}}, "Say {{ a }}", "division by zero"),
        ({"a": {"values": ["x"]}}, "Say {{ a | nosuch }}", "line 1: no filter named 'nosuch'"),
        ({"a": {"expr": "{{ a | nosuch }}"}}, "Say {{ a }}", "variable 'a', line 1"),
    ],
    ids=["cycle", "division-by-zero", "unknown-filter-in-prompt", "unknown-filter-in-variable"],
)
def test_a_template_whose_expressions_fail(
    tmp_path: Path, variables: dict[str, object], user: str, message: str
) -> None:
    template = tmp_path / "t.yaml"
    template.write_text(yaml.safe_dump({"id": "t", "user": user, "variables": variables}))
    result = textnlp("generate", "-t", str(template), "-n", "1", "-o", "o.jsonl", cwd=tmp_path)
    refused(result, message)
    assert not (tmp_path / "o.jsonl").exists()
    refused(textnlp("templates", "show", str(template), cwd=tmp_path), message)


@pytest.mark.parametrize("home", ["/proc/no-home", "a-file"])
def test_a_home_that_cannot_be_used(tmp_path: Path, home: str) -> None:
    (tmp_path / "a-file").write_text("")
    env = {"TEXTNLP_HOME": str(tmp_path / home)}  # /proc/... stays absolute
    result = textnlp("generate", "-t", "product-review", "-n", "1", "-o", "o.jsonl",
                     cwd=tmp_path, env=env)  # fmt: skip
    refused(result, "directory")
    assert not (tmp_path / "o.jsonl").exists()


def test_a_recipe_number_column_fixed_as_text(tmp_path: Path) -> None:
    result = textnlp("generate", "-r", "product-reviews", "-n", "2", "-o", "out.jsonl",
                     "--var", "words=many", cwd=tmp_path)  # fmt: skip
    refused(result, "column 'words' takes a whole number (got 'many')")
    assert not (tmp_path / "out.jsonl").exists()


def test_validate_with_a_report_path_it_cannot_write(tmp_path: Path) -> None:
    """Refused before the run: it was after a whole run had replaced the dataset."""
    out = tmp_path / "w.jsonl"
    out.write_text(KEPT)
    (tmp_path / "w.report.html").mkdir()
    result = textnlp("generate", "-t", "product-review", "-n", "2", "-o", str(out), "--validate",
                     cwd=tmp_path)  # fmt: skip
    refused(result, "w.report.html is a directory")
    assert out.read_text() == KEPT


def test_max_candidates_on_a_template(tmp_path: Path) -> None:
    """A template's records pass no filters: the option would be ignored without a word."""
    result = textnlp("generate", "-t", "product-review", "-n", "2", "-o", "out.jsonl",
                     "--max-candidates", "3", cwd=tmp_path)  # fmt: skip
    refused(result, "--max-candidates) applies to recipes")
    assert not (tmp_path / "out.jsonl").exists()


def test_rejects_over_the_dataset_or_on_a_template(tmp_path: Path) -> None:
    out = tmp_path / "same.jsonl"
    out.write_text(KEPT)
    result = textnlp("generate", "-r", "product-reviews", "-n", "2", "-o", "same.jsonl",
                     "--rejects", "./same.jsonl", cwd=tmp_path)  # fmt: skip
    refused(result, "the rejects file must not be the output file")
    assert out.read_text() == KEPT
    result = textnlp("generate", "-t", "product-review", "-n", "2", "-o", "same.jsonl",
                     "--rejects", "r.jsonl", cwd=tmp_path)  # fmt: skip
    refused(result, "--rejects applies to recipes")
    assert out.read_text() == KEPT and not (tmp_path / "r.jsonl").exists()


def test_a_model_this_host_cannot_run(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "models.yaml").write_text(yaml.safe_dump({"models": [
        {"id": "my-gguf", "backend": "llamacpp", "path": str(tmp_path / "none.gguf"),
         "context_length": 2048}]}))  # fmt: skip
    result = textnlp("generate", "-m", "my-gguf", "-t", "product-review", "-n", "1",
                     "-o", "o.jsonl", cwd=tmp_path, env={"TEXTNLP_HOME": str(home)})  # fmt: skip
    refused(result, "model my-gguf is not available here: model file not found")


def test_a_hosted_model_without_credentials(tmp_path: Path) -> None:
    """Listed as available, a Bedrock or SageMaker model failed the run after it began (exit 1,
    an empty journal left beside the output); now the list says why and the run is refused."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {"AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}  # fmt: skip

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*TEXTNLP, *args], cwd=tmp_path, capture_output=True, text=True,
                              timeout=300, env=env | extra, stdin=subprocess.DEVNULL)  # fmt: skip

    listed = {m["id"]: m for m in yaml.safe_load(run("models", "list", "--json").stdout)}
    for model in ("anthropic.claude-v2", "llama-7b"):
        assert listed[model]["available"] is False
        assert listed[model]["reason"].startswith("no AWS credentials found: set AWS_PROFILE")
    result = run("generate", "-m", "llama-7b", "-t", "product-review", "-n", "1", "-o", "o.jsonl")
    refused(result, "model llama-7b is not available here: no AWS credentials found")
    assert list(tmp_path.glob("o.jsonl*")) == []  # neither the output nor a journal
    keys = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "example"}
    listed = {m["id"]: m for m in yaml.safe_load(run("models", "list", "--json", **keys).stdout)}
    assert listed["llama-7b"]["available"] is True and listed["llama-7b"]["reason"] == ""


def test_a_recipe_resume_keeps_its_records_and_options(tmp_path: Path) -> None:
    """As a template's resume does: a smaller count, another --var or parameter is refused."""
    first = textnlp("generate", "-r", "self-instruct", "-n", "2", "-o", "si.jsonl", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    made = (tmp_path / "si.jsonl").read_text()
    attempts = [
        (["-n", "1"], "has 2 accepted records; resuming with count 1 would delete them"),
        (["-n", "4", "--var", "subject=cats"], "has subject="),
        (["-n", "4", "--top-p", "0.5"], "'instruction' made with top_p 0.9, not top_p 0.5"),
    ]
    for options, message in attempts:
        result = textnlp("generate", "-r", "self-instruct", "-o", "si.jsonl", "--resume",
                         *options, cwd=tmp_path)  # fmt: skip
        refused(result, message)
        assert (tmp_path / "si.jsonl").read_text() == made


def test_show_prints_the_whole_definition_when_piped(tmp_path: Path) -> None:
    shown = textnlp("templates", "show", "product-review", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    definition = yaml.safe_load(shown.stdout.split("\n─")[0])  # before the sample's rule
    expr = definition["variables"]["sentiment"]["expr"]
    assert expr.endswith("'negative') }}"), expr  # once cut at 80 columns


def test_an_argument_that_is_not_utf8_is_refused_before_any_work(tmp_path: Path) -> None:
    """Its bytes reached the cache key or the tokeniser as lone surrogates: a traceback, exit 1."""
    argv: list[str | bytes] = [*TEXTNLP, "generate", "-t", "product-review", "-n", "1",
                               "-o", "x.jsonl", b"--var", b"product=a\xffb"]  # fmt: skip
    result = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            stdin=subprocess.DEVNULL)  # fmt: skip
    refused(result, "argument 'product=a\\xffb' is not valid UTF-8")
    assert list(tmp_path.glob("x.jsonl*")) == []


def test_a_template_that_recurses_without_end(tmp_path: Path) -> None:
    """A macro calling itself ended in a 1,000-line RecursionError traceback."""
    (tmp_path / "t.yaml").write_text(
        "id: t\nuser: '{% macro f(n) %}{{ f(n+1) }}{% endmacro %}{{ f(0) }}'\n"
    )
    result = textnlp("generate", "-t", "t.yaml", "-n", "1", "-o", "o.jsonl", cwd=tmp_path)
    refused(result, "template 't': recursion too deep (a macro that calls itself?)")
    assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("tr.jsonl/", "tr.jsonl/ is spelled as a directory but named as a file (.jsonl)"),
        ("my.data.v1/", "my.data.v1/ is spelled as a directory but named as a file (.v1)"),
        ("", "the output path is empty"),  # it said "output directory . is not empty"
    ],
)
def test_an_output_named_two_ways(tmp_path: Path, out: str, message: str) -> None:
    """``-o tr.jsonl/`` wrote the file tr.jsonl: the '/' was lost on the way."""
    result = textnlp("generate", "-t", "product-review", "-n", "1", "-o", out, cwd=tmp_path)
    refused(result, message)
    assert [p.name for p in tmp_path.iterdir() if p.name != "textnlp-home"] == []


def test_the_rejects_file_is_not_the_runs_journal(tmp_path: Path) -> None:
    """It was taken, and removed with the journal when the run ended: the rejects were lost."""
    result = textnlp("generate", "-r", "product-reviews", "-n", "1", "-o", "h.jsonl",
                     "--rejects", "h.jsonl.partial.jsonl", cwd=tmp_path)  # fmt: skip
    refused(result, "the rejects file must not be the run's journal")


def test_a_run_that_accepts_nothing_says_the_output_is_unchanged(tmp_path: Path) -> None:
    """It said "0 of 1 records written to out.jsonl" of a file holding an older dataset."""
    (tmp_path / "r.yaml").write_text(
        "id: r\noutput: e\ncolumns:\n"
        "  e: {type: expression, expr: '{% macro f(n) %}{{ f(n+1) }}{% endmacro %}{{ f(0) }}'}\n"
    )
    out = tmp_path / "out.jsonl"
    out.write_text(KEPT)
    result = textnlp("generate", "-r", "r.yaml", "-n", "1", "-o", "out.jsonl", cwd=tmp_path)
    refused(result, "first: column e: recursion too deep")
    assert "; out.jsonl is unchanged (run again with --resume" in result.stderr
    assert out.read_text() == KEPT
