"""JSON log lines with the request id (and trace id) of the request being served.

Never log passwords, tokens or full prompts: callers log sizes and ids; ``redact`` cuts any
value of a sensitive-looking key should one slip into ``extra``, and every line our handler
writes (ours, uvicorn's, tracebacks included) goes through ``redact_text``: the value of a
sensitive query parameter (``?access_token=``, ``token``, ``api_key``, a presigned URL's
signature...) and the credentials of a URL (``user:pass@``) become ``[redacted]``. uvicorn
writes the query string in its WebSocket handshake line, which is how a browser's token would
reach the log otherwise.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

request_id_var: ContextVar[str] = ContextVar("textnlp_request_id", default="-")
_SENSITIVE = ("password", "token", "secret", "authorization", "prompt", "api_key")
#: A record's own attributes, and uvicorn's ``color_message`` (the message again, with ANSI
#: colour codes for its own terminal formatter): none is an ``extra`` field of a JSON line.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}
REDACTED = "[redacted]"
#: ``name=value`` after ``?``, ``&`` or ``;``; the value ends where a URL or a quoted log field
#: would (``\`` for JSON-escaped quotes). Names are bounded so that the scan stays linear on
#: a hostile line, and read percent-decoded, as the server reads them (``%61ccess_token``).
_QUERY_PARAM = re.compile(r"(?P<name>[?&;](?P<key>[^=&;\s\"'\\]{1,192})=)(?P<value>[^&;#\s\"'\\]+)")
_SECRET_NAME = re.compile(
    r"token|key|secret|passw|pwd|auth|signature|credential|session|sig|code", re.IGNORECASE
)
_URL_CREDENTIALS = re.compile(
    r"(?P<scheme>\b[a-z][a-z0-9+.-]{0,31}://)[^/\s@\"'\\]{1,512}@", re.IGNORECASE
)


#: PostgreSQL's DETAIL line quotes the row's values ("Key (id)=(...) already exists", "Failing
#: row contains (...)"): prompts and user ids, which ``hide_parameters`` cannot reach.
#: Applied to the text before it is encoded: the rest of that one line.
_SQL_DETAIL = re.compile(r"(DETAIL:[ \t]*)[^\n]*")


def redact(key: str, value: Any) -> Any:
    return REDACTED if any(word in key.lower() for word in _SENSITIVE) else value


def redact_text(text: str) -> str:
    """``text`` with credentials in URLs and query strings replaced by ``[redacted]``."""
    text = _URL_CREDENTIALS.sub(rf"\g<scheme>{REDACTED}@", text)
    return _QUERY_PARAM.sub(_redacted_parameter, text)


def without_sql_detail(text: str) -> str:
    """``text`` with the values of PostgreSQL's DETAIL lines replaced (raw text: a JSON
    line's escaped newlines would let the line run on)."""
    return _SQL_DETAIL.sub(rf"\g<1>{REDACTED}", text)


def _redacted_parameter(match: re.Match[str]) -> str:
    if _SECRET_NAME.search(unquote_plus(match["key"])):
        return match["name"] + REDACTED
    return match[0]


class RedactingFormatter(logging.Formatter):
    """The plain-text format, redacted as the JSON one is."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(without_sql_detail(super().format(record)))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": without_sql_detail(record.getMessage()),
            "request_id": request_id_var.get(),
        }
        trace_id = _trace_id()
        if trace_id is not None:
            line["trace_id"] = trace_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = redact(key, value)
        if record.exc_info:
            line["exception"] = without_sql_detail(self.formatException(record.exc_info))
        return redact_text(json.dumps(line, default=str, ensure_ascii=False))


def _trace_id() -> str | None:
    """The current span's trace id as X-Ray writes it (``1-<8 hex>-<24 hex>``), so a log line
    is found from its trace and back; None outside a recorded span (tracing off)."""
    try:
        from opentelemetry import trace
    except ImportError:  # a core install (no ``api`` extra) traces nothing
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    hex_id = format(context.trace_id, "032x")
    return f"1-{hex_id[:8]}-{hex_id[8:]}"


#: Marks the handler ``configure_logging`` installs, so that a second call replaces it.
_OURS = "_textnlp_handler"


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def configure_logging(level: str = "INFO", *, json_lines: bool = True) -> None:
    """Send every logger's lines to stderr in one format, through the one redaction.

    ``textnlp`` and uvicorn log at ``level``; every other logger (sqlalchemy's pool, asyncio's
    "Task exception was never retrieved", OpenTelemetry's exporter, botocore, httpx) reaches
    the root logger, which gets the same handler at WARNING or above: without it their
    lines went through Python's last-resort handler, as bare text that CloudWatch splits into
    one event a traceback line and that no redaction saw (a pool's error quotes the database
    URL). Their INFO and DEBUG stay off: botocore's and httpx's debug lines carry request
    headers and bodies. Python's ``warnings`` are logged as well (``py.warnings``).
    """
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            RedactingFormatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    handler.addFilter(_RequestIdFilter())
    setattr(handler, _OURS, True)
    for name in ("textnlp", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level)
        logger.propagate = False
    root = logging.getLogger()
    # Replace only a handler of an earlier call: one installed by someone else (pytest's
    # capture) stays.
    for old in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(logging.WARNING, logging.getLevelName(level.upper())))
    logging.captureWarnings(True)
    # uvicorn's access log repeats our own request log line, with the query string.
    logging.getLogger("uvicorn.access").disabled = True
