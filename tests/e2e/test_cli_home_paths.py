"""``~`` in a path option the shell does not expand (``--out=~/x``, a quoted ``'~/x'``) is the
home directory, as in the library: it made a directory named ``~`` in the working directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.real_cli import run_cli
from textnlp.cli.main import paths_home_expanded


@pytest.mark.parametrize("given", [["--out=~/x.jsonl"], ["-o", "~/x.jsonl"], ["-o~/x.jsonl"]])
def test_a_generate_output_under_tilde_goes_home(tmp_path: Path, given: list[str]) -> None:
    home = tmp_path / "home"
    home.mkdir()
    done = run_cli(tmp_path, "generate", "-t", "intent-utterance", "-n", "1", "--max-tokens", "4",
                   *given, env={"HOME": str(home)})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (home / "x.jsonl").is_file()
    assert not (tmp_path / "~").exists()


def test_only_path_options_are_expanded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/h")
    given = ["generate", "--report=~/r.html", "--var", "x=~/y", "--prompt=~/p", "-r", "~/r.yaml",
             "--", "-o", "~/z"]  # fmt: skip
    assert paths_home_expanded(given) == [
        "generate", "--report=/h/r.html", "--var", "x=~/y", "--prompt=~/p", "-r", "/h/r.yaml",
        "--", "-o", "~/z",
    ]  # fmt: skip
