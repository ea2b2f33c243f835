"""Credentials in URLs never reach a log line, whoever logs them (ours, uvicorn, tracebacks)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from textnlp.observability.logging import configure_logging, redact_text


@pytest.fixture
def restore_loggers() -> Iterator[None]:
    names = ("textnlp", "uvicorn", "uvicorn.error")
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).level) for n in names}
    root = logging.getLogger()
    root_handlers, root_level = root.handlers[:], root.level
    yield
    for name, (handlers, level) in saved.items():
        logging.getLogger(name).handlers = handlers
        logging.getLogger(name).setLevel(level)
        logging.getLogger(name).propagate = True
    root.handlers = root_handlers
    root.setLevel(root_level)
    logging.captureWarnings(False)


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ('"WebSocket /api/v1/generate/stream?access_token=eyJhbGc.x.y" 403', "/stream?"),
        ("GET /x?a=1&token=abc123&b=2", "a=1&"),
        ("/y?api_key=tnk_abcdef;next=1", "next=1"),
        ("https://bucket.s3.amazonaws.com/k?X-Amz-Signature=deadbeef&X-Amz-Expires=60", "60"),
        ("postgresql+psycopg://app:hunter2@db:5432/textnlp", "@db:5432"),
        ("webhook https://user:pa55@hooks.example.com/x", "hooks.example.com"),
        # A name percent-encoded is the same name to the server, which decodes it.
        ("WebSocket /s?%61%63%63%65%73%73%5F%74%6F%6B%65%6E=eyJhbGc.x.y 101", "/s?"),
        ("GET /x?a=1&api%5Fkey=tnk_abcdef&b=2", "b=2"),
        ("GET /x?%74oken=abc123&page=2", "page=2"),
    ],
)
def test_redact_text(text: str, kept: str) -> None:
    redacted = redact_text(text)
    for secret in ("eyJhbGc", "abc123", "tnk_abcdef", "deadbeef", "hunter2", "pa55"):
        assert secret not in redacted
    assert "[redacted]" in redacted and kept in redacted


@pytest.mark.parametrize("json_lines", [True, False])
def test_uvicorn_lines_and_tracebacks_are_redacted(
    json_lines: bool, capsys: pytest.CaptureFixture[str], restore_loggers: None
) -> None:
    configure_logging("INFO", json_lines=json_lines)
    # uvicorn's WebSocket handshake line, as its protocol module formats it.
    logging.getLogger("uvicorn.error").info(
        '%s - "WebSocket %s" %d', "127.0.0.1:5000", "/s?access_token=TOPSECRET1", 403
    )
    try:
        raise RuntimeError("GET https://svc/x?token=TOPSECRET2 failed")
    except RuntimeError:
        logging.getLogger("textnlp.api").exception("request failed")
    logging.getLogger("textnlp.worker").warning("dsn %s", "redis://:TOPSECRET3@cache:6379")
    err = capsys.readouterr().err
    assert err.count("[redacted]") >= 3  # the traceback quotes the raising line too
    assert "TOPSECRET" not in err
    if json_lines:
        assert all(json.loads(line) for line in err.splitlines())


_THIRD_PARTY = """
import asyncio, gc, logging, sys, warnings
from textnlp.observability.logging import configure_logging

configure_logging("INFO", json_lines=True)
configure_logging("INFO", json_lines=True)  # a second call replaces, never doubles
try:
    raise ConnectionError("connection to postgresql://app:hunter2@db:5432/x failed")
except ConnectionError:
    logging.getLogger("sqlalchemy.pool.impl.QueuePool").error("reset failed", exc_info=True)
logging.getLogger("opentelemetry.exporter").warning("export to https://x/v1?api_key=hunter2")
logging.getLogger("httpx").info("HTTP Request: GET https://x/?token=hunter2 200")


async def _boom():
    raise RuntimeError("https://app:hunter2@h failed")


async def _main():
    asyncio.get_running_loop().create_task(_boom())
    await asyncio.sleep(0)
    await asyncio.sleep(0)


asyncio.run(_main())
gc.collect()  # "Task exception was never retrieved", from asyncio's logger
warnings.warn("deprecated at https://app:hunter2@h", stacklevel=1)
"""


def test_third_party_loggers_write_redacted_json_lines() -> None:
    """sqlalchemy's pool, asyncio, OpenTelemetry, httpx and Python's warnings went through
    the last-resort handler: bare text lines (a traceback split over many) and no redaction."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _THIRD_PARTY], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "hunter2" not in done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert [line["logger"] for line in lines] == [
        "sqlalchemy.pool.impl.QueuePool",
        "opentelemetry.exporter",
        "asyncio",
        "py.warnings",
    ]  # httpx's INFO stays off: its debug and info lines quote requests
    assert "Task exception was never retrieved" in lines[2]["message"]
    assert "[redacted]" in lines[0]["exception"]
