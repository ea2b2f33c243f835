"""``textnlp validate`` driven as a user would: the installed ``textnlp`` console script in a
subprocess (its entry point, ``textnlp.cli.main.run``, owns the exit codes and the one line on
stderr), exit codes, summary, reports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

GOOD = [
    "The earbuds sound great and the battery lasts all day.",
    "My coffee grinder is loud but grinds evenly every single morning.",
    "The tent kept us dry through two nights of heavy rain.",
    "A gripping mystery with a twist I did not see coming.",
]


def _write(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    return path


def _textnlp() -> str:
    exe = shutil.which("textnlp") or str(Path(sys.executable).with_name("textnlp"))
    assert Path(exe).exists(), "the textnlp console script is not installed"
    return exe


def _validate(*args: str) -> subprocess.CompletedProcess[str]:
    """``textnlp validate *args`` as a process (a wide terminal: rich wraps no word)."""
    return subprocess.run(
        [_textnlp(), "validate", *args],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "200"},
    )


def _run(*args: str) -> tuple[int, str]:
    """Exit code and output (stdout, then stderr) of ``textnlp validate *args``, no embeddings."""
    result = _validate(*args, "--no-embeddings")
    return result.returncode, result.stdout + result.stderr


def _refused(*args: str) -> str:
    """The message of a command refused as bad input: one ``error:`` line on stderr, exit 2,
    nothing validated (no summary on stdout)."""
    result = _validate(*args)
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "near_duplicate_rate" not in result.stdout, result.stdout
    return result.stderr.removeprefix("error: ").removesuffix("\n")


def test_gate_passes_exit_0_with_json_report(tmp_path: Path) -> None:
    data = _write(tmp_path / "good.jsonl", GOOD)
    code, output = _run(str(data), "--report", str(tmp_path / "r.json"))
    assert code == 0, output
    assert "near_duplicate_rate" in output and "passed" in output
    assert json.loads((tmp_path / "r.json").read_text())["gate"]["passed"] is True


def test_gate_fails_exit_1_with_html_report(tmp_path: Path) -> None:
    data = _write(tmp_path / "dups.jsonl", GOOD + GOOD)
    gate = tmp_path / "gate.yaml"
    gate.write_text("max_exact_duplicate_rate: 0.0\n", encoding="utf-8")
    code, output = _run(str(data), "--gate", str(gate), "--report", str(tmp_path / "r.html"))
    assert code == 1
    assert "FAILED" in output
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    ("setup", "fragment"),
    [
        (lambda p: p / "missing.jsonl", "does not exist"),
        (lambda p: _write(p / "empty.jsonl", []), "empty"),
        (lambda p: (p / "d.txt").write_text("x") and p / "d.txt", "unknown dataset format"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path: Path, setup, fragment: str) -> None:  # type: ignore[no-untyped-def]
    assert fragment in _refused(str(setup(tmp_path)))


def test_console_script_exit_codes(tmp_path: Path) -> None:
    exe = _textnlp()
    good = _write(tmp_path / "good.jsonl", GOOD)
    ok = subprocess.run(
        [exe, "validate", str(good), "--no-embeddings"], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    no_field = _write(tmp_path / "good2.jsonl", GOOD)
    bad = subprocess.run(
        [exe, "validate", str(no_field), "--field", "body", "--no-embeddings"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "body" in bad.stderr
    gate = tmp_path / "gate.yaml"
    gate.write_text("max_pii_rate: [", encoding="utf-8")
    malformed = subprocess.run(
        [exe, "validate", str(good), "--gate", str(gate)], capture_output=True, text=True
    )
    assert malformed.returncode == 2 and malformed.stderr.count("\n") == 1
    dups = _write(tmp_path / "dups.jsonl", GOOD * 3)
    failed = subprocess.run(
        [exe, "validate", str(dups), "--no-embeddings"], capture_output=True, text=True
    )
    assert failed.returncode == 1


def test_an_unwritable_report_path_is_refused_before_validating(tmp_path: Path) -> None:
    good = _write(tmp_path / "good.jsonl", GOOD)
    refused = subprocess.run(
        [_textnlp(), "validate", str(good), "--report", "/proc/x.html", "--no-embeddings"],
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.count("\n") == 1 and "cannot write report /proc/x.html" in refused.stderr
    assert refused.stdout == ""  # no validation ran, no table printed


@pytest.mark.parametrize(
    "where",
    [
        "a directory",  # root cannot write a file over a directory either: runs everywhere
        pytest.param(
            "a read-only directory",
            marks=pytest.mark.skipif(os.geteuid() == 0, reason="root writes into it"),
        ),
    ],
)
def test_a_report_that_cannot_be_written_is_refused_and_kept(tmp_path: Path, where: str) -> None:
    good = _write(tmp_path / "good.jsonl", GOOD)
    locked = tmp_path / "locked"
    locked.mkdir()
    if where == "a directory":
        report, earlier = locked / "r.html", locked / "r.html" / "earlier.html"
        report.mkdir()
        message = f"report {report} is a directory"
    else:
        report = earlier = locked / "r.html"
        message = f"cannot write report {report}"
    earlier.write_text("an earlier report")
    locked.chmod(0o555)
    try:
        refused = _refused(str(good), "--report", str(report), "--no-embeddings")
    finally:
        locked.chmod(0o755)
    assert message in refused
    assert earlier.read_text() == "an earlier report"
    assert sorted(p.name for p in locked.rglob("*")) == sorted({report.name, earlier.name})


# A report path that is an input, hostile files, the reference's field, the threshold's range.


def test_a_report_over_the_dataset_is_refused_and_the_dataset_kept(tmp_path: Path) -> None:
    data = tmp_path / "ds.json"
    data.write_text(json.dumps([{"text": t} for t in GOOD]), encoding="utf-8")
    before = data.read_bytes()
    refused = subprocess.run(
        [_textnlp(), "validate", str(data), "--no-embeddings", "--report", str(data)],
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.count("\n") == 1 and "is the dataset itself" in refused.stderr
    assert refused.stdout == "" and data.read_bytes() == before


@pytest.mark.parametrize("link", ["same", "symlink", "hardlink", "other spelling"])
@pytest.mark.parametrize("noun", ["dataset", "reference", "gate"])
def test_a_report_that_is_any_input_file_is_refused(tmp_path: Path, noun: str, link: str) -> None:
    data = _write(tmp_path / "ds.jsonl", GOOD)
    victim = tmp_path / f"{noun}.json"  # .json: a name a report may have (JSON is YAML too)
    victim.write_text(
        json.dumps([{"text": GOOD[0]}]) if noun != "gate" else '{"max_pii_rate": 0.5}',
        encoding="utf-8",
    )
    before = victim.read_bytes()
    report = tmp_path / "report.json"
    if link == "same":
        report = victim
    elif link == "symlink":
        report.symlink_to(victim)
    elif link == "hardlink":
        report.hardlink_to(victim)
    else:
        (tmp_path / "sub").mkdir()
        report = tmp_path / "sub" / ".." / victim.name
    args = [str(data)] if noun != "dataset" else [str(victim)]
    if noun != "dataset":
        args += [f"--{noun}", str(victim)]
    message = _refused(*args, "--no-embeddings", "--report", str(report))
    assert f"is the {noun} itself; choose another report path" in message
    assert victim.read_bytes() == before


def test_a_report_inside_an_export_directory_is_written(tmp_path: Path) -> None:
    from textnlp.domain import GenerationParams, Record
    from textnlp.domain.records import Provenance
    from textnlp.generation.export import write_export

    provenance = Provenance(
        template_id="t",
        template_version="1",
        model="m",
        params=GenerationParams(max_tokens=20),
        seed=1,
        prompt_tokens=1,
        completion_tokens=1,
        finish_reason="stop",
        latency_s=0.1,
        created_at="2025-01-01T00:00:00+00:00",
    )
    export = tmp_path / "export"
    write_export(
        export, [Record(index=i, text=t, provenance=provenance) for i, t in enumerate(GOOD)]
    )
    files = {p: p.read_bytes() for p in export.rglob("*") if p.is_file()}
    code, output = _run(str(export), "--report", str(export / "report.json"))
    assert code == 0, output
    assert json.loads((export / "report.json").read_text())["count"] == len(GOOD)
    assert all(p.read_bytes() == content for p, content in files.items())


def test_files_a_seed_or_prompt_file_refuses_are_refused_too(tmp_path: Path) -> None:
    # A short row lost its label without a word; NaN passed as text "NaN" (seeds refused both).
    short = tmp_path / "short.csv"
    short.write_text('text,label\n"good review",pos\n"short row"\n', encoding="utf-8")
    assert _refused(str(short), "--no-embeddings") == (
        f"{short}, row 2 (line 3): 1 field, the header has 2"
    )
    nan = tmp_path / "nan.jsonl"
    nan.write_text('{"text": "fine", "score": 1}\n{"text": "odd", "score": NaN}\n', "utf-8")
    assert _refused(str(nan), "--no-embeddings") == (
        f"{nan}, line 2 is not valid JSON (NaN is not a JSON number)"
    )
    array = tmp_path / "inf.json"
    array.write_text('[{"text": "fine", "score": Infinity}]', encoding="utf-8")
    assert "Infinity is not a JSON number" in _refused(str(array), "--no-embeddings")


def test_hostile_files_are_refused_in_one_line(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    extra = tmp_path / "extra.csv"
    extra.write_text("text,label\nhello world,a,EXTRA\n", encoding="utf-8")
    assert "row 1 (line 2): 3 fields" in _refused(str(extra), "--no-embeddings")
    good = _write(tmp_path / "good.jsonl", GOOD)
    assert "extra.csv, row 1" in _refused(str(good), "--reference", str(extra), "--no-embeddings")
    deep = tmp_path / "deep.jsonl"
    deep.write_text('{"text": ' + "[" * 100_000 + "]" * 100_000 + "}\n", encoding="utf-8")
    assert "nested deeper than 64 levels" in _refused(str(deep), "--no-embeddings")
    binary = tmp_path / "binary.parquet"
    pq.write_table(pa.table({"text": pa.array([b"abc"], pa.binary())}), binary)
    assert "field 'text' holds binary, not text" in _refused(str(binary), "--no-embeddings")
    quote = tmp_path / "quote.csv"
    quote.write_text('text\n"never closed\n', encoding="utf-8")
    assert "line 2: cannot read the CSV record" in _refused(str(quote), "--no-embeddings")


def test_a_lone_surrogate_is_refused_before_the_embedding_model(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "fine text"}\n{"text": "bad \\ud800 text"}\n', encoding="utf-8")
    message = _refused(str(data))  # embeddings on: the tokeniser raised TypeError
    assert "record 2: field 'text' is not valid Unicode" in message


def test_a_huge_integer_label_is_reported_as_text(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text(
        "".join(json.dumps({"text": t, "label": 10**400}) + "\n" for t in GOOD), encoding="utf-8"
    )
    code, output = _run(str(data), "--report", str(tmp_path / "r.json"))
    assert code == 0, output
    (label,) = json.loads((tmp_path / "r.json").read_text())["labels"]
    assert label["distribution"] == {str(10**400): len(GOOD)}


@pytest.mark.parametrize("encoding", ["utf-8-sig"])
@pytest.mark.parametrize("name", ["bom.jsonl", "bom.csv"])
def test_a_byte_order_mark_is_accepted(tmp_path: Path, name: str, encoding: str) -> None:
    data = tmp_path / name
    lines = [json.dumps({"text": t}) for t in GOOD] if name.endswith("l") else ["text", *GOOD]
    data.write_text("\n".join(lines) + "\n", encoding=encoding)
    code, output = _run(str(data))
    assert code == 0, output


def test_a_missing_reference_is_named_a_reference(tmp_path: Path) -> None:
    good = _write(tmp_path / "good.jsonl", GOOD)
    message = _refused(str(good), "--reference", str(tmp_path / "nope.jsonl"), "--no-embeddings")
    assert message == f"reference {tmp_path / 'nope.jsonl'} does not exist"


def _readme_validate_example() -> list[str]:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    start = readme.index("textnlp validate qa.jsonl")
    command = readme[start : readme.index("# or .json", start)].replace("\\\n", " ")
    return command.split()[2:]  # without "textnlp validate"


def test_the_readme_example_runs_with_a_plain_seed_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    answers = [{"text": "{}", "data": {"question": "q?", "answer": t}} for t in GOOD]
    Path("qa.jsonl").write_text("".join(json.dumps(a) + "\n" for a in answers), encoding="utf-8")
    _write(Path("seed.jsonl"), ["Which tent keeps you dry in the rain?"])
    Path("gate.yaml").write_text("max_leakage_rate: 0.0\n", encoding="utf-8")
    args = _readme_validate_example()
    code, output = _run(*args)
    assert code == 0, output
    report = Path("qa.report.html").read_text(encoding="utf-8")
    assert report.startswith("<!DOCTYPE html>") and "seed.jsonl" in report
    # Without --reference-field the seed set's field is data.answer too: the hint says what to do.
    without = [a for a in args if a not in ("--reference-field", "text")]
    assert "--reference-field text" in " ".join(args)
    message = _refused(*without, "--no-embeddings")
    assert "choose the reference's field with --reference-field" in message


@pytest.mark.parametrize("value", ["0", "-0.5", "1.5", "nan"])
def test_a_near_dup_threshold_outside_0_1_is_a_usage_error(tmp_path: Path, value: str) -> None:
    good = _write(tmp_path / "good.jsonl", GOOD)
    code, output = _run(str(good), "--near-dup-threshold", value)
    assert code == 2 and "must be more than 0 and at most 1" in output


def test_a_near_dup_threshold_of_1_validates_and_help_agrees(tmp_path: Path) -> None:
    good = _write(tmp_path / "good.jsonl", GOOD + GOOD[:1])
    code, output = _run(
        str(good), "--near-dup-threshold", "1", "--report", str(tmp_path / "r.json")
    )
    assert code == 1, output  # the copy is an exact duplicate: the gate fails, nothing crashed
    near = json.loads((tmp_path / "r.json").read_text())["near_duplicates"]
    assert near["threshold"] == 1.0 and near["redundant"] == 1
    help_text = _validate("--help").stdout
    words = " ".join(help_text.replace("│", " ").split())  # the help's box, wrapped
    assert "x<=1.0" not in words and "near duplicates, more than 0 and at most 1." in words


MY_JSON_TEMPLATE = """\
id: my-json
version: "2.0"
user: "Give a number as JSON."
output:
  type: json
  schema: {type: object, properties: {n: {type: integer}}, required: [n]}
"""


def test_the_json_check_knows_the_users_own_templates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only the built-in catalogue was looked in: "json_invalid_rate n/a skipped".
    home = tmp_path / "home"
    (home / "templates").mkdir(parents=True)
    (home / "templates" / "my-json.yaml").write_text(MY_JSON_TEMPLATE, encoding="utf-8")
    monkeypatch.setenv("TEXTNLP_HOME", str(home))
    made = {"template_id": "my-json", "template_version": "2.0"}
    rows = [{"text": '{"n": 1}', "provenance": made}, {"text": '{"n": "x"}', "provenance": made}]
    data = tmp_path / "mine.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    report = tmp_path / "r.json"
    _run(str(data), "--report", str(report))
    assert json.loads(report.read_text())["quality"]["json_invalid_rate"] == 0.5
