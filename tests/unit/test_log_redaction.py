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
    yield
    for name, (handlers, level) in saved.items():
        logging.getLogger(name).handlers = handlers
        logging.getLogger(name).setLevel(level)
        logging.getLogger(name).propagate = True


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
