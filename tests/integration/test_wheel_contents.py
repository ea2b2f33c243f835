"""The images install the package from its wheel (``pip install ".[...]"`` in docker/*.Dockerfile),
not from the source tree: every data file the code reads at run time (built-in templates and
recipes, the model catalogue, report and console templates, the console's static files,
migrations) must be in the wheel, or the deployed app lacks it while every test from the
source tree passes."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "textnlp"
#: What the code reads as data (not Python modules).
DATA_SUFFIXES = {".yaml", ".jsonl", ".j2", ".html", ".css", ".js", ".mako", ".typed", ".txt"}


def _data_files() -> set[str]:
    return {
        f"textnlp/{path.relative_to(PACKAGE).as_posix()}"
        for path in PACKAGE.rglob("*")
        if path.is_file() and path.suffix in DATA_SUFFIXES and "__pycache__" not in path.parts
    }


@pytest.mark.timeout(300)
def test_the_wheel_carries_every_data_file(tmp_path: Path) -> None:
    # Built from a copy: an in-tree build reuses ``build/lib``, whose files outlive a pattern
    # dropped from pyproject.toml.
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(PACKAGE, source / "src" / "textnlp", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"]
    command += ["--no-build-isolation", "-w", str(tmp_path / "out"), str(source)]
    subprocess.run(command, check=True, capture_output=True, timeout=280)
    (wheel,) = (tmp_path / "out").glob("textnlp-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    expected = _data_files()
    assert "textnlp/api/console/templates/base.html" in expected  # the walk found them
    assert expected - shipped == set()
