"""Errors of the ``openai`` and ``anthropic`` SDKs (both Stainless-generated, same shapes) as
errors of the tree."""

from __future__ import annotations

from typing import Any

from textnlp.backends.providers.http_errors import error_class
from textnlp.errors import BackendError, BackendUnavailable, Timeout


def map_sdk_error(exc: Exception, *, backend: str, model: str) -> BackendError:
    where = {"backend": backend, "model": model}
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        message = getattr(exc, "message", None) or str(exc)
        code = _body_code(getattr(exc, "body", None))
        cls = error_class(status, f"{message} {code}")
        details: dict[str, Any] = {"status": status}
        retry_after = _retry_after(exc)
        if retry_after is not None:
            details["retry_after"] = retry_after
        return cls(f"HTTP {status}: {message}", **details, **where)
    name = type(exc).__name__
    if "Timeout" in name:
        return Timeout(f"no answer in time: {exc}", **where)
    return BackendUnavailable(f"{name}: {exc}", **where)


def _body_code(body: object) -> str:
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return str(error.get("code") or error.get("type") or "")
    return ""


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    value = headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
