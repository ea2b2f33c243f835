"""The CLI's refusals as a user meets them: one line on stderr, exit 2, nothing touched.

Unreachable dependencies (the database of the settings, the ``--api`` server) and settings
refused outside the local profile end the same way as bad input (see ``textnlp.cli.main``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port

TEXTNLP = [sys.executable, "-m", "textnlp.cli.main"]
#: Port 9 (discard) listens nowhere here: connections to it are refused at once.
CLOSED = "127.0.0.1:9"
STRONG_SECRET = "q3Jx0vT8bN2kLw7YcR5mHs9dFa1GeUo4Pi6ZtVn_XbE"
AWS = {
    "TEXTNLP_PROFILE": "aws",
    "TEXTNLP_DATABASE__URL": f"postgresql+psycopg://u@{CLOSED}/x",
    "TEXTNLP_SECRETS__BACKEND": "env",
}


def textnlp(
    *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TEXTNLP, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def assert_one_line_exit_2(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and message in lines[0], lines[0]


def test_an_unreachable_api() -> None:
    result = textnlp("jobs", "status", "0" * 32, "--api", f"http://{CLOSED}", "--token", "k")
    assert_one_line_exit_2(result, f"cannot reach the API at http://{CLOSED}")
    # Without a token it is not asked: the CLI's own words, not the server's header name.
    result = textnlp("jobs", "status", "0" * 32, "--api", f"http://{CLOSED}")
    assert_one_line_exit_2(result, "--api needs --token (or TEXTNLP_API_TOKEN)")


def test_an_api_option_that_is_no_url() -> None:
    assert_one_line_exit_2(textnlp("jobs", "list", "--api", "localhost:8000"), "--api must be")


def test_an_unreachable_database() -> None:
    result = textnlp(
        "users",
        "create",
        "bob",
        "--password-stdin",
        stdin="a-password-123\n",
        env={"TEXTNLP_DATABASE__URL": f"postgresql://nobody@{CLOSED}/x"},
    )
    assert_one_line_exit_2(result, "cannot reach the database at 127.0.0.1:9")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("notaurl", "Could not parse SQLAlchemy URL"),
        ("nonsense://u:hunter2@h/x", "Can't load plugin: sqlalchemy.dialects:nonsense"),
        ("postgresql+nosuchdriver://u:hunter2@h/x", "postgresql.nosuchdriver"),
    ],
)
@pytest.mark.parametrize("command", [["users", "list"], ["db", "upgrade"]])
def test_a_database_url_no_driver_reads(command: list[str], url: str, reason: str) -> None:
    """A traceback before; the URL itself (it may hold a password) is never shown."""
    result = textnlp(*command, env={"TEXTNLP_DATABASE__URL": url})
    assert_one_line_exit_2(
        result, "TEXTNLP_DATABASE__URL is not a database URL this server can use: "
    )
    assert reason in result.stderr and "hunter2" not in result.stderr


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        # The '@' of the password split the URL: "cannot reach the database at ss@h0st:9".
        (f"postgresql+psycopg://u:hunter2@ss@h0st{CLOSED[9:]}/x", "its host holds '@'"),
        # SQLAlchemy's int() of the port: a traceback (exit 1) quoting the port's text, here
        # the rest of the password.
        ("postgresql+psycopg://u:hunter2@pa:ss@h0st:5432/x", "its port is not a number"),
        ("postgresql+psycopg://u:pw@127.0.0.1:54x2/x", "its port is not a number"),
        ("postgresql+psycopg://u:pw@127.0.0.1:99999/x", "not between 1 and 65535"),
    ],
)
@pytest.mark.parametrize("command", [["users", "list"], ["db", "upgrade"], ["serve"]])
def test_a_database_url_whose_password_is_not_encoded(
    command: list[str], url: str, reason: str
) -> None:
    if command == ["serve"]:  # a port of its own: 8000 may be taken
        command = [*command, "--port", str(free_port())]
    result = textnlp(*command, env={"TEXTNLP_DATABASE__URL": url})
    assert_one_line_exit_2(result, "TEXTNLP_DATABASE__URL is not a database URL this server can")
    assert reason in result.stderr and "%40" in result.stderr
    assert "ss@" not in result.stderr and "hunter2" not in result.stderr


@pytest.mark.parametrize(
    "secret",
    ["x", "changeme", "textnlp-local-development-secret-change-me".upper(), None],
    ids=["one-byte", "changeme", "local-default-upper-cased", "local-default"],
)
@pytest.mark.parametrize("command", [["users", "create", "x", "--password-stdin"], ["serve"]])
def test_weak_secrets_of_the_aws_profile(command: list[str], secret: str | None) -> None:
    env = dict(AWS) if secret is None else {**AWS, "TEXTNLP_AUTH__JWT_SECRET": secret}
    result = textnlp(*command, env=env, stdin="a-password-123\n")
    assert_one_line_exit_2(result, "auth.jwt_secret")


def test_serve_with_an_unreachable_database_is_one_line_not_a_startup_traceback() -> None:
    result = textnlp("serve", "--port", "1", env={**AWS, "TEXTNLP_AUTH__JWT_SECRET": STRONG_SECRET})
    assert_one_line_exit_2(result, "cannot reach the database")


def test_results_into_a_directory_that_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent-dir"
    result = textnlp("jobs", "results", "0" * 32, "-o", str(missing / "x.jsonl"))
    assert_one_line_exit_2(result, f"directory {missing} does not exist")
    assert not missing.exists()


def test_serve_on_a_port_in_use() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = textnlp("serve", "--port", str(port))
    assert_one_line_exit_2(result, f"cannot listen on 127.0.0.1:{port}: Address already in use")


#: No answer meets the schema (no integer is both >= 5 and <= 4), whatever the model says; the
#: grammar keeps the embedded model's answers to the schema's shape (bounds are left to the
#: check), so each is the JSON of a number that the check refuses.
JSON_TEMPLATE = """\
id: wants-json
version: "1.0"
user: "Give a number as JSON."
output:
  type: json
  schema: {type: object, properties: {n: {type: integer, minimum: 5, maximum: 4}}, required: [n]}
"""


def test_a_run_whose_every_record_failed_says_why_and_exits_1(tmp_path: Path) -> None:
    # It exited 0 with nothing on stderr: the reasons were in no file.
    from tests.support.real_cli import run_cli

    (tmp_path / "wants-json.yaml").write_text(JSON_TEMPLATE)
    args = ["generate", "-t", "./wants-json.yaml", "-n", "2", "--max-tokens", "48", "-o", "o.jsonl"]
    failed = run_cli(tmp_path, *args, timeout=120)
    assert failed.returncode == 1, failed.stderr
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("error: every record failed (2); the first, record 0: "), last
    assert "invalid output: schema violation" in last and "Traceback" not in failed.stderr


def test_python_dash_m_textnlp_is_the_textnlp_command(tmp_path: Path) -> None:
    """``python -m textnlp`` (a kernel whose scripts are not on PATH) runs the same command
    as ``textnlp``, refusals included (before: "No module named textnlp.__main__")."""
    env = {**os.environ, "TEXTNLP_HOME": str(tmp_path)}
    help_ = subprocess.run(
        [sys.executable, "-m", "textnlp", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert help_.returncode == 0, help_.stderr
    assert "generate" in help_.stdout
    out = tmp_path / "out.jsonl"
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "textnlp",
            "generate",
            "-t",
            "no-such-template",
            "-n",
            "1",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert refused.returncode == 2
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "no-such-template" in refused.stderr
    assert not out.exists()
