"""``textnlp generate`` as a user runs it: a real process, the real embedded model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TEXTNLP = [sys.executable, "-m", "textnlp.cli.main"]


def textnlp(
    *args: str, cwd: Path, timeout: float = 300, columns: int = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TEXTNLP, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": str(columns)},
    )


def indices(path: Path) -> list[int]:
    return [json.loads(line)["index"] for line in path.read_text().splitlines() if line]


def test_generates_real_records_with_the_embedded_model(tmp_path: Path) -> None:
    result = textnlp(
        "generate",
        "-t",
        "news-headline",
        "-n",
        "4",
        "-o",
        "out/headlines.jsonl",
        "--max-tokens",
        "16",
        "--seed",
        "11",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    lines = [
        json.loads(line) for line in (tmp_path / "out/headlines.jsonl").read_text().splitlines()
    ]
    assert [r["index"] for r in lines] == [0, 1, 2, 3]
    assert all(r["text"].strip() for r in lines)
    assert {r["provenance"]["model"] for r in lines} == {"smollm2-135m"}
    assert all(0 < r["provenance"]["completion_tokens"] <= 16 for r in lines)
    assert "Generation summary" in result.stdout and "out/headlines.jsonl" in result.stdout

    # The same command again is served from the response cache, identically.
    again = textnlp(
        "generate",
        "-t",
        "news-headline",
        "-n",
        "4",
        "-o",
        "out/again.jsonl",
        "--max-tokens",
        "16",
        "--seed",
        "11",
        cwd=tmp_path,
    )
    assert again.returncode == 0, again.stderr
    second = [json.loads(line) for line in (tmp_path / "out/again.jsonl").read_text().splitlines()]
    assert [r["text"] for r in second] == [r["text"] for r in lines]
    assert all(r["provenance"]["cached"] for r in second)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-t", "no-such-template", "-n", "2"], "unknown template or recipe 'no-such-template'"),
        (["-t", "product-review", "-n", "2", "-m", "gpt-99"], "unknown model 'gpt-99'"),
        (["-t", "product-review", "-n", "2", "--var", "colour=red"], "no variable 'colour'"),
        (["-t", "product-review", "-n", "2", "--var", "oops"], "expects NAME=VALUE"),
        (["-t", "product-review", "-n", "2", "--temperature", "2.5"], "temperature"),
        (["-t", "product-review", "-n", "2", "--temperature", "-1"], "temperature"),
        (["-t", "product-review", "-n", "2", "--top-p", "0"], "top_p"),
        (["-t", "product-review", "-n", "2", "--max-tokens", "0"], "max_tokens"),
        (["-t", "product-review", "-n", "2", "--max-tokens", "5000"], "max_tokens"),
        (["-t", "product-review", "-n", "2", "--max-tokens", "3000"], "context"),
        (["-t", "product-review", "-n", "0"], "count must be at least 1"),
        (["-t", "product-review", "-n", "two"], "valid integer"),
        (["-t", "product-review", "-n", "10000000"], "above the maximum of 1000000"),
        (["-t", "undefined.yaml", "-n", "2"], "'nobody' is undefined"),
        (["-t", "latin1.yaml", "-n", "2"], "latin1.yaml is not UTF-8"),
        (["-t", "unclosed.yaml", "-n", "2"], "unclosed.yaml is not valid YAML"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_keeps_the_output(
    tmp_path: Path, args: list[str], message: str
) -> None:
    existing = tmp_path / "keep.jsonl"
    existing.write_text('{"precious": true}\n')
    (tmp_path / "undefined.yaml").write_text("id: undefined\nuser: 'Hello {{ nobody }}'\n")
    (tmp_path / "latin1.yaml").write_bytes(b"id: latin1\nuser: 'Caf\xe9 review'\n")
    (tmp_path / "unclosed.yaml").write_text("id: u\nuser: [unclosed\nvariables:\n  a: {b\n")
    result = textnlp("generate", *args, "-o", "keep.jsonl", cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert "Traceback" not in result.stderr
    assert existing.read_text() == '{"precious": true}\n'


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("data.txt", "unknown output format"),
        ("blocker/data.jsonl", "not a directory"),
        ("/proc/x.jsonl", "cannot write /proc/x.jsonl"),
        # As /nonexistent-dir/x.jsonl would, without touching the machine's root.
        ("{tmp}/nonexistent-dir/x.jsonl", "nonexistent-dir does not exist"),
    ],
)
def test_bad_output_paths(tmp_path: Path, out: str, message: str) -> None:
    (tmp_path / "blocker").write_text("a file, not a directory")
    out = out.format(tmp=tmp_path)
    result = textnlp("generate", "-t", "news-headline", "-n", "1", "-o", out, cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "nonexistent-dir").exists()  # refused, not created


def test_bad_yaml_is_one_line_with_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text("id: t\nuser: [unclosed\nvariables:\n  a: {b\n")
    result = textnlp("templates", "show", "t.yaml", cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: t.yaml is not valid YAML: expected ',' or ']', but got ':' (line 3, column 10)"
    ]


def test_malformed_user_template(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("id: broken\nuser: 'Hello {{ name'\n")
    result = textnlp("generate", "-t", "broken.yaml", "-n", "1", "-o", "o.jsonl", cwd=tmp_path)
    assert result.returncode == 2 and "broken.yaml" in result.stderr


#: A 24-record run, small enough to interrupt and resume in a test.
RUN = [*TEXTNLP, "generate", "-t", "news-headline", "-n", "24", "-o", "run.jsonl"]
RUN += ["--max-tokens", "12", "-c", "4", "--no-cache"]


def _start(tmp_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        RUN,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ctrl_c_as_in_a_terminal,
    )


def _ctrl_c_as_in_a_terminal() -> None:
    # A shell starts background commands with SIGINT ignored, and a child inherits that: under
    # `make test &` the run would never see the Ctrl-C this test sends.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for_records(journal: Path, at_least: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if journal.exists() and len(journal.read_text().splitlines()) >= at_least:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise TimeoutError("the run produced no records in time")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_run_resumes_with_every_index_once(tmp_path: Path, sig: signal.Signals) -> None:
    journal = tmp_path / "run.jsonl.partial.jsonl"
    proc = _start(tmp_path)
    _wait_for_records(journal, 4, proc)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    if sig == signal.SIGINT:
        assert proc.returncode == 130, stderr
        partial = indices(tmp_path / "run.jsonl")  # Ctrl-C leaves a valid dataset
        assert partial == sorted(set(partial)) and 4 <= len(partial) < 24
        assert "--resume" in stderr
    assert journal.exists()

    resumed = subprocess.run(
        [*RUN, "--resume"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert indices(tmp_path / "run.jsonl") == list(range(24))
    assert not journal.exists()


def test_catalogue_commands(tmp_path: Path) -> None:
    models = textnlp("models", "list", cwd=tmp_path)
    assert models.returncode == 0 and "smollm2-135m" in models.stdout and "yes" in models.stdout
    templates = textnlp("templates", "list", cwd=tmp_path)
    assert templates.returncode == 0
    for name in (
        "product-review",
        "support-dialogue",
        "qa-pairs",
        "news-headline",
        "instruction-response",
    ):
        assert name in templates.stdout
    # For scripts: every id whole, in a narrow pipe's table and in --json.
    narrow = textnlp("templates", "list", cwd=tmp_path, columns=40)
    listed = json.loads(textnlp("templates", "list", "--json", cwd=tmp_path).stdout)
    assert "instruction-response" in {row["id"] for row in listed}
    assert all(row["id"] in narrow.stdout for row in listed)
    catalogue = json.loads(textnlp("models", "list", "--json", cwd=tmp_path, columns=40).stdout)
    embedded = next(row for row in catalogue if row["id"] == "smollm2-135m")
    assert embedded["available"] is True and embedded["backend"] == "llamacpp"
    shown = textnlp("templates", "show", "qa-pairs", cwd=tmp_path)
    assert shown.returncode == 0 and "sample prompt" in shown.stdout
    missing = textnlp("templates", "show", "nope", cwd=tmp_path)
    assert missing.returncode == 2 and "unknown template" in missing.stderr


#: A finished 6-record run; its resumes below ask for something else.
FINISHED = ["generate", "-t", "news-headline", "-n", "6", "-o", "small.jsonl"]
FINISHED += ["--max-tokens", "8", "--seed", "4"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``small.jsonl`` of ``FINISHED``, made once for the module."""
    where = tmp_path_factory.mktemp("finished")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEXTNLP_")}
    made = subprocess.run(
        [*TEXTNLP, *FINISHED],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=300,
        env={**env, "TEXTNLP_HOME": str(where / "home")},
    )
    assert made.returncode == 0, made.stderr
    return where / "small.jsonl"


def _with(args: list[str], **options: str) -> list[str]:
    """``args`` with each ``--option value`` replaced (or added)."""
    out = list(args)
    for option, value in options.items():
        if option in out:
            out[out.index(option) + 1] = value
        else:
            out += [option, value]
    return out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--seed": "5"}, "another run seed than 5"),
        ({"-n": "9", "--seed": "5"}, "another run seed than 5"),  # would mix two runs
        ({"--max-tokens": "9"}, "max_tokens 8, not 9"),
        ({"-t": "product-review"}, "template 'news-headline'"),
        ({"-n": "3"}, "would delete them"),
    ],
)
def test_resume_with_other_options_is_refused_and_keeps_the_file(
    tmp_path: Path, finished_run: Path, change: dict[str, str], message: str
) -> None:
    out = tmp_path / "small.jsonl"
    out.write_bytes(finished_run.read_bytes())
    result = textnlp(*_with(FINISHED, **change), "--resume", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert out.read_bytes() == finished_run.read_bytes()
    assert not (tmp_path / "small.jsonl.partial.jsonl").exists()


def test_resume_with_the_same_options_extends_the_run(tmp_path: Path, finished_run: Path) -> None:
    out = tmp_path / "small.jsonl"
    out.write_bytes(finished_run.read_bytes())
    result = textnlp(*_with(FINISHED, **{"-n": "8"}), "--resume", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert indices(out) == list(range(8))
    assert out.read_text().splitlines()[:6] == finished_run.read_text().splitlines()


def test_resume_of_a_run_that_never_started_is_a_run(tmp_path: Path, finished_run: Path) -> None:
    """``--resume`` as "make sure it is done": nothing there yet is nothing to resume (it
    failed: "No such file or directory (small.jsonl.partial.jsonl)")."""
    result = textnlp(*FINISHED, "--resume", cwd=tmp_path)
    assert result.returncode == 0, result.stderr

    def texts(path: Path) -> list[tuple[int, str]]:  # not timings
        return [(r["index"], r["text"]) for r in map(json.loads, path.read_text().splitlines())]

    assert texts(tmp_path / "small.jsonl") == texts(finished_run)


def test_a_killed_and_resumed_run_equals_an_uninterrupted_one(tmp_path: Path) -> None:
    """What the README promises of the embedded model at the default concurrency: record *i*
    depends only on the seed and *i*, across a SIGKILL and a resume, although the resumed
    records are decoded in other batches than in the uninterrupted run."""
    run = [*TEXTNLP, "generate", "-t", "product-review", "-n", "16", "--max-tokens", "48"]
    run += ["--seed", "21", "--no-cache"]
    whole = subprocess.run(
        [*run, "-o", "whole.jsonl"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert whole.returncode == 0, whole.stderr
    proc = subprocess.Popen(
        [*run, "-o", "resumed.jsonl"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    journal = tmp_path / "resumed.jsonl.partial.jsonl"
    _wait_for_records(journal, 3, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert len(journal.read_text().splitlines()) < 16  # the resume decodes records anew
    resumed = subprocess.run(
        [*run, "-o", "resumed.jsonl", "--resume"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr

    def texts(name: str) -> dict[int, str]:
        lines = (tmp_path / name).read_text().splitlines()
        return {r["index"]: r["text"] for r in map(json.loads, lines)}

    assert texts("resumed.jsonl") == texts("whole.jsonl")
