"""Schemathesis over the OpenAPI schema, authenticated: no 5xx, answers match the schema.

Bounded: a few examples per operation. The operations that run a model (generate, invoke,
/v1 completions) or an embedding model (similarity, /v1/embeddings), and those that end the
session (logout, refresh), are left to the targeted tests; the rest, batch jobs included (no
worker runs: submitted jobs stay queued), are fuzzed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from textnlp.adapters.db.base import make_engine, make_sessionmaker
from textnlp.adapters.db.schema import upgrade_database
from textnlp.api.app import create_app
from textnlp.api.errors import error_for, openai_error_for
from textnlp.auth.service import AuthService
from textnlp.auth.tokens import TokenService
from textnlp.config import load_settings
from textnlp.errors import ApiError, TextNLPError

AUTH: dict[str, str] = {}
SETTINGS_BOUND = {
    "/api/v1/generate/batch",
    "/api/v1/generate/batch/uploads/{name}",
    "/v1/files",  # a batch file's grammar, like a prompt file's
    # A list's ``after`` must name an item of the list (an id of yours): a random one is
    # rightly refused with 400 ``param: after`` (``services.list_cursor``).
    "/v1/batches",
    # A json_schema must itself be a valid JSON Schema (``"if": []`` is not), which OpenAPI's
    # "an object" cannot say: random objects are rightly refused with 422 now and then.
    "/api/v1/validate/quality",
}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Any:
    home: Path = tmp_path_factory.mktemp("schema-api")
    config = load_settings(home=home)
    upgrade_database(config.database_url)
    engine = make_engine(config.database_url)
    auth = AuthService(make_sessionmaker(engine), TokenService(config.auth))
    auth.create_user("fuzzer", "fuzzer-password", "admin")
    AUTH["Authorization"] = f"Bearer {auth.login('fuzzer', 'fuzzer-password').access_token}"
    engine.dispose()
    app = create_app(config)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    # Text never holds NUL (U+0000), which the database cannot store: the boundary refuses it
    # with 422 on every route (tests/security/test_unicode.py; the hostile fuzzer sends it),
    # a rule JSON Schema's string type cannot state, so schema-valid data here leaves it out.
    schema.config.generation.update(allow_x00=False)
    return (
        schema.exclude(path="/api/v1/generate/text")
        .exclude(path_regex=r"/invoke$")
        .exclude(path="/api/v1/validate/similarity")
        .exclude(path_regex=r"/auth/(logout|refresh)$")
        # The WebSocket's handshake: over plain HTTP it can only answer 426
        # (tests/integration/api/test_generate.py drives it as a WebSocket).
        .exclude(path="/api/v1/generate/stream")
        # The OpenAI-compatible routes that run a model (tests/integration/api/test_openai_routes)
        .exclude(path_regex=r"^/v1/(chat/completions|completions|embeddings)$")
    )


def test_api_conforms_to_its_schema(api_schema: Any) -> None:
    # Driven by hand: schemathesis's pytest plugin does not support this pytest version.
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:
        try:
            fuzz(operation)
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)


def fuzz(operation: Any) -> None:
    # Some operations accept only part of what their schema allows, for reasons no static
    # schema holds: a prompt file's grammar (its body is binary), and a job's bounds that
    # depend on the model and the settings (max_tokens within the model's context, count up
    # to the queue settings). Random data is rightly refused with 422 there, so only the
    # "schema-valid data accepted" check is off for them; every other check still runs.
    excluded = [positive_data_acceptance] if operation.path in SETTINGS_BOUND else []

    @given(case=operation.as_strategy())
    @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        case.call_and_validate(headers=AUTH, excluded_checks=excluded)

    check()


def _error_classes() -> list[type[TextNLPError]]:
    """The server's classes (not the client's ``ApiError``, nor those tests define)."""
    found, todo = [], [TextNLPError]
    while todo:
        cls = todo.pop()
        server = cls.__module__.startswith("textnlp.") and not issubclass(cls, ApiError)
        if server:
            found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_error_status_a_route_can_answer_is_documented(tmp_path: Path) -> None:
    """The statuses the exception tree renders to (``error_for``, ``openai_error_for``) and the
    middleware's own (408 body deadline, 413 body bound, 503 in-flight limit) are in every
    operation's documented responses; 409 is documented where it is reached under /v1, 426 is
    the WebSocket handshake's, and 499 (the client left) is logged, never read."""
    errors = [cls("m") for cls in _error_classes()]
    middleware = {408, 413, 503}
    native = {error_for(e)[0] for e in errors} - {426, 499} | middleware
    openai = {openai_error_for(e)[0] for e in errors} - {409, 499} | middleware
    spec = create_app(load_settings(home=tmp_path)).openapi()
    for path, operations in spec["paths"].items():
        expected = openai if path.startswith("/v1/") else native
        if not path.startswith(("/v1/", "/api/v1/")):
            continue
        for method, operation in operations.items():
            documented = {int(status) for status in operation["responses"] if status.isdigit()}
            missing = expected - documented
            assert not missing, f"{method.upper()} {path} does not document {sorted(missing)}"
