"""``jobs ... --wait``'s progress when stderr is no terminal (a log, CI): a line each, written
when the state changes or, at most every ``every_s``, when the count does."""

from __future__ import annotations

import pytest

from textnlp.cli.jobs import _Progress


def test_progress_off_a_terminal_is_lines_written_on_change(
    capsys: pytest.CaptureFixture[str],
) -> None:
    progress = _Progress(every_s=3600.0)
    progress.terminal = False  # as in a log, even under ``pytest -s`` at a terminal
    progress.show("queued", 0, 5000)
    progress.show("queued", 0, 5000)  # nothing new
    progress.show("running", 0, 5000)  # a new state: always
    progress.show("running", 7, 5000)  # a new count, but too soon
    progress.end()
    assert capsys.readouterr().err == "queued: 0/5000\nrunning: 0/5000\n"


def test_a_new_count_is_written_once_the_interval_has_passed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    progress = _Progress(every_s=0.0)
    progress.terminal = False
    progress.show("running", 1, 3)
    progress.show("running", 1, 3)  # the same count: not again
    progress.show("running", 2, 3)
    assert capsys.readouterr().err == "running: 1/3\nrunning: 2/3\n"
