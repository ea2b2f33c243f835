"""The one exception tree of TextNLP.

Every error the platform raises on purpose is a ``TextNLPError``. One place maps them to HTTP
status codes (``textnlp.api``) and one to CLI exit codes (``textnlp.cli``)::

    TextNLPError
    ├── ConfigError                  settings or a configuration file is invalid
    ├── InvalidInput                 a user's input is wrong (exit 2, HTTP 4xx)
    │   ├── InvalidParameter         a generation parameter is out of range
    │   │   └── ModelUnavailable     a catalogue model this host cannot run (models list: why)
    │   ├── NotFound                 an unknown template, model, job, file...
    │   │   ├── TemplateNotFound
    │   │   └── ModelNotFound
    │   ├── TemplateError            a template file is malformed or a variable is wrong
    │   │   └── RecipeError          a recipe is malformed (cycle, unknown column, bad seed file...)
    │   ├── DatasetError             a dataset file cannot be read or is empty
    │   ├── OutputError              an output path cannot be written or has an unknown format
    │   └── UpgradeRequired          a WebSocket route asked over plain HTTP (HTTP 426)
    ├── AuthError                    missing or bad credentials (HTTP 401)
    │   └── PermissionDenied         authenticated but not allowed (HTTP 403)
    ├── Conflict                     the request conflicts with stored state (HTTP 409/422)
    │   └── Archived                 a stored file is in an archive class; its restore has begun
    ├── QuotaExceeded                a rate limit or spending cap (HTTP 429, exit 2)
    │   └── CandidatesExhausted      a recipe run's most candidates tried, too few passed
    ├── ServiceUnavailable           the database, cache or queue cannot be reached (HTTP 503)
    ├── MissingExtra                 a feature's packages (an extra) are not installed (HTTP 501)
    ├── DatasetFailed                a run made no record: every one failed (exit 1)
    ├── ClientGone                   the client left before its answer (HTTP 499, never read)
    ├── ApiError                     textnlp.client: the API answered an error (its status, type)
    │   └── ApiUnreachable           no answer: refused, timed out, a stream cut (status 503)
    └── BackendError                 a model backend failed; carries backend and model
        ├── RateLimited
        ├── ContextWindowExceeded
        ├── Timeout
        ├── AuthFailed
        ├── BackendUnavailable
        └── InvalidRequest
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError


class TextNLPError(Exception):
    """Root of every error TextNLP raises on purpose."""

    #: Short machine-readable name used in API error bodies.
    type: str = "textnlp_error"
    #: HTTP status the API answers with, and whether the CLI treats it as bad input (exit 2).
    http_status: int = 500
    user_error: bool = False

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The body of ``{"error": ...}`` answers."""
        return {"type": self.type, "message": self.message, **self.details}


class ConfigError(TextNLPError):
    type = "config_error"
    http_status = 500
    user_error = True


class InvalidInput(TextNLPError):
    type = "invalid_input"
    http_status = 422
    user_error = True


class InvalidParameter(InvalidInput):
    type = "invalid_parameter"


class NotFound(InvalidInput):
    type = "not_found"
    http_status = 404
    user_error = True


class TemplateNotFound(NotFound):
    type = "template_not_found"


class ModelNotFound(NotFound):
    type = "model_not_found"


class ModelUnavailable(InvalidParameter):
    """The request names a catalogue model this host cannot run (its file, package or device
    is missing; ``models list`` says why): retrying cannot help, another model can."""

    type = "model_unavailable"


class TemplateError(InvalidInput):
    type = "template_error"


class RecipeError(TemplateError):
    type = "recipe_error"


class DatasetError(InvalidInput):
    type = "dataset_error"


class OutputError(InvalidInput):
    type = "output_error"


class UpgradeRequired(InvalidInput):
    type = "upgrade_required"
    http_status = 426


class DatasetFailed(TextNLPError):
    """A run made no record: every one failed (its output unusable, its prompt over the
    context...). Not bad input: the CLI exits 1, as a job whose every record failed ends
    ``failed``."""

    type = "dataset_failed"


class ClientGone(TextNLPError):
    """The client closed the connection before its answer (nginx's 499): the answer's work was
    cancelled, and nobody reads this answer (no bad input: the same status on every surface)."""

    type = "client_closed_request"
    http_status = 499
    user_error = True


class AuthError(TextNLPError):
    type = "authentication_error"
    http_status = 401


class PermissionDenied(AuthError):
    type = "permission_denied"
    http_status = 403


class Conflict(TextNLPError):
    type = "conflict"
    http_status = 409
    user_error = True


class Archived(Conflict):
    """A stored file moved to an archive storage class (S3 Glacier, by the bucket's lifecycle
    rule): it can be read again once restored, which reading it has started."""

    type = "archived"


class QuotaExceeded(TextNLPError):
    """A rate limit (``retry_after`` says when to come back) or a spending cap (no
    ``retry_after``: waiting does not help; ``limit_usd`` and ``spent_usd`` say why)."""

    type = "quota_exceeded"
    http_status = 429
    user_error = True

    def __init__(self, message: str, *, retry_after: float | None = None, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after


class CandidatesExhausted(QuotaExceeded):
    """A recipe run tried its most candidates (``max_candidates``) and fewer than ``count``
    passed every filter; the accepted ones are written (``details``: ``written``,
    ``requested``, ``candidates``, ``max_candidates``). The message names no surface's option:
    the CLI adds ``--max-candidates`` where it renders the error."""

    type = "candidates_exhausted"


class ServiceUnavailable(TextNLPError):
    """Infrastructure the platform needs (database, cache, queue) cannot be reached now; a
    retry later may succeed. ``dependency`` says which."""

    type = "service_unavailable"
    http_status = 503


class MissingExtra(TextNLPError):
    """A feature's packages, an extra of textnlp, are not installed on this host
    (``textnlp.extras``); the message says what to install. Not the client's fault, and no
    retry helps: HTTP 501, and exit 2 from the CLI (the fix is on the user's side)."""

    type = "missing_extra"
    http_status = 501
    user_error = True


class ApiError(TextNLPError):
    """An error answer of the API: ``status``, ``type`` and the whole error body;
    ``retry_after``, the seconds its ``Retry-After`` header asks to wait (or None)."""

    def __init__(self, status: int, body: dict[str, Any], retry_after: float | None = None) -> None:
        details = {k: v for k, v in body.items() if k not in {"type", "message"}}
        super().__init__(str(body.get("message", f"HTTP {status}")), **details)
        self.status = status
        self.type = str(body.get("type", "http_error"))
        self.http_status = status
        self.user_error = 400 <= status < 500
        self.body = body
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, Any]:
        return dict(self.body)


class ApiUnreachable(ApiError):
    """The API could not be reached, or did not answer in time (no answer: status 503)."""

    def __init__(self, base_url: str, exc: Exception) -> None:
        from textnlp.observability.logging import redact_text

        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        # The URL may carry a proxy's password or a token: the CLI prints this, CI logs keep it.
        message = redact_text(f"cannot reach the API at {base_url}: {reason}")
        super().__init__(503, {"type": "connection_error", "message": message})


class BackendError(TextNLPError):
    """A model backend failed. ``backend`` and ``model`` say which."""

    type = "backend_error"
    http_status = 502
    #: Whether retrying the same request later may succeed.
    retryable: bool = False

    def __init__(self, message: str, *, backend: str = "", model: str = "", **details: Any):
        super().__init__(message, backend=backend, model=model, **details)
        self.backend = backend
        self.model = model


class RateLimited(BackendError):
    type = "rate_limited"
    http_status = 429
    retryable = True


class ContextWindowExceeded(BackendError):
    type = "context_window_exceeded"
    http_status = 400
    user_error = True


class Timeout(BackendError):
    type = "timeout"
    http_status = 504
    retryable = True


class AuthFailed(BackendError):
    type = "backend_auth_failed"
    http_status = 502


class BackendUnavailable(BackendError):
    type = "backend_unavailable"
    http_status = 503
    retryable = True


class InvalidRequest(BackendError):
    type = "invalid_request"
    http_status = 400
    user_error = True


def is_permanent(exc: BaseException) -> bool:
    """Whether doing the same again would meet the same error: the input is wrong (a job's
    template, variables, files; a request the model refuses), not the moment. A worker fails
    such a job at once instead of retrying it."""
    return isinstance(exc, (InvalidInput, ContextWindowExceeded, InvalidRequest, MissingExtra))


def public_message(exc: BaseException) -> str:
    """The text of ``exc`` that a caller may read: the one owner of that choice, used by the
    API's answers (HTTP, SSE, WebSocket, ``/v1``, the console, through
    ``textnlp.api.errors.public_body``) and by a job's error (``public_reason``), so that every
    surface tells the same.

    An error of the tree says itself (its message is written for users), except where it names
    the deployment: an outage says which dependency, never where (the adapter's text names a
    host and port); an unavailable model, not why (its files, secrets, endpoints: administrators
    read that in the models list and the health report). Anything else is the platform's fault,
    its text for the operators' log alone."""
    if isinstance(exc, ServiceUnavailable):
        return f"the {outage_dependency(exc)} is unavailable; retry later"
    if isinstance(exc, ModelUnavailable):
        model = str(exc.details.get("model") or "")
        return f"model {model} is not available here (an administrator can see why)"
    if isinstance(exc, TextNLPError):
        return exc.message
    return "internal error"


def outage_dependency(exc: ServiceUnavailable) -> str:
    """Which dependency an outage names to callers (``service`` when it does not say)."""
    return str(exc.details.get("dependency") or "service")


def public_reason(exc: BaseException) -> str:
    """Why a job's attempt failed, as its owner reads it (the job's ``error``: the API's status,
    the console, the webhook and SNS notices): ``public_message`` after the error's class. An
    error not of the tree names what only operators may read (a bucket, a storage key, an AWS
    account and role, a temporary path, SQL): its class alone, the whole text going to the
    worker's log and the dead-letter queue."""
    if isinstance(exc, TextNLPError):
        return f"{type(exc).__name__}: {public_message(exc)}"
    return f"{public_message(exc)} ({type(exc).__name__}); the operators' log has the details"


def quoted(value: object, limit: int = 80) -> str:
    """A user's value as a message quotes it: its repr, cut to ``limit`` characters (ids and
    names come from users, of any length, and a message echoes them)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def first_error(exc: ValidationError, *, root: str = "value", extra: str | None = None) -> str:
    """pydantic's first error as one line, ``where: what`` (``root`` when it is about the whole
    value; ``extra`` replaces the message of an unknown key). Every user-facing message about a
    validated file, body or message is phrased here."""
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or root
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden" and extra is not None:
        message = extra
    return f"{where}: {message}"
