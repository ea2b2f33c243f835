"""Errors of the ``openai`` and ``anthropic`` SDKs (both Stainless-generated, same shapes) as
errors of the tree."""

from __future__ import annotations

from typing import Any

from textnlp.backends.providers.http_errors import (
    deployment_fault,
    error_class,
    event_error,
    told,
)
from textnlp.errors import BackendError, BackendUnavailable, Timeout

#: Anthropic's error types ("Errors" in its API docs) and their statuses: an error event inside
#: a 200 stream (``event: error``, e.g. ``overloaded_error``) says only its type.
TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


def map_sdk_error(exc: Exception, *, backend: str, model: str) -> BackendError:
    where = {"backend": backend, "model": model}
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        message = getattr(exc, "message", None) or str(exc)
        code = _body_code(getattr(exc, "body", None))
        if status < 400:  # an error event of a stream that began well
            status = TYPE_STATUS.get(code, 500)
        said = f"{message} {code}"
        cls = error_class(status, said)
        details: dict[str, Any] = {"status": status}
        retry_after = _retry_after(exc)
        if retry_after is not None:
            details["retry_after"] = retry_after
        summary = deployment_fault(status, said) or f"the model server answered {status}"
        text = told(cls, message, summary)
        return cls(f"HTTP {status}: {text}", **details, **where)
    name = type(exc).__name__
    if "Timeout" in name:
        return Timeout(f"no answer in time: {exc}", **where)
    body = getattr(exc, "body", None)
    # (The SDK keeps the event's inner error object as the body.)
    if isinstance(body, dict) and (found := event_error({"error": body})) is not None:
        # An error event inside a 200 stream (vLLM's context error, code 400): the SDK raises
        # APIError without a status; the event's own code says whose fault it is.
        cls, message = found
        return cls(f"the server's stream: {told(cls, message, 'an error')}", **where)
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
