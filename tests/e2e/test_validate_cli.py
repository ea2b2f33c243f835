"""``textnlp validate`` driven as a user would: exit codes, summary, reports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from textnlp.cli.validate import register

GOOD = [
    "The earbuds sound great and the battery lasts all day.",
    "My coffee grinder is loud but grinds evenly every single morning.",
    "The tent kept us dry through two nights of heavy rain.",
    "A gripping mystery with a twist I did not see coming.",
]


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:  # keeps "validate" a subcommand
        pass

    return app


def _write(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    return path


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(_app(), ["validate", *args, "--no-embeddings"])
    return result.exit_code, result.output


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
def test_bad_input_raises_user_error(tmp_path: Path, setup, fragment: str) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(_app(), ["validate", str(setup(tmp_path))])
    assert result.exception is not None and getattr(result.exception, "user_error", False)
    assert fragment in result.exception.message  # type: ignore[attr-defined]


def _textnlp() -> str:
    exe = shutil.which("textnlp") or str(Path(sys.executable).with_name("textnlp"))
    assert Path(exe).exists(), "the textnlp console script is not installed"
    return exe


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


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory")
def test_a_report_in_a_read_only_directory_is_refused_and_kept(tmp_path: Path) -> None:
    good = _write(tmp_path / "good.jsonl", GOOD)
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "r.html").write_text("an earlier report")
    locked.chmod(0o555)
    try:
        code, output = _run(str(good), "--report", str(locked / "r.html"))
    finally:
        locked.chmod(0o755)
    assert code != 0 and "near_duplicate_rate" not in output
    assert (locked / "r.html").read_text() == "an earlier report"
