"""A template, recipe or gate file that is a FIFO, a device or huge is refused in one line
(a FIFO hung the command; ``/dev/zero`` ate memory until it was killed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from textnlp.errors import ConfigError, TemplateError
from textnlp.generation.templates import load_template_file
from textnlp.small_files import MAX_SMALL_FILE_BYTES
from textnlp.validation.gate import load_gate


def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "f.yaml"
    os.mkfifo(path)
    return path


def huge(tmp_path: Path) -> Path:
    path = tmp_path / "h.yaml"
    with path.open("wb") as handle:  # sparse: no disk used
        handle.truncate(MAX_SMALL_FILE_BYTES + 1)
    return path


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("make", "why"),
    [
        (fifo, "not a regular file"),
        (lambda _: Path("/dev/zero"), "not a regular file"),
        (huge, "larger than 16 MiB"),
    ],  # fmt: skip
)
def test_a_template_or_gate_file_that_is_no_small_regular_file_is_refused(
    tmp_path: Path, make: object, why: str
) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(TemplateError, match=why):
        load_template_file(path)
    with pytest.raises(ConfigError, match=f"gate file {path} is {why}"):
        load_gate(path)
