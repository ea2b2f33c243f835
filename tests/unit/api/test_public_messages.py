"""What a caller may read of an error is decided in one place (``errors.public_message``): the
API's bodies on every surface and a job's error tell the same, and name no address."""

from __future__ import annotations

import json

import pytest

from textnlp.api.errors import error_for, openai_error_for, public_body, sse_error, ws_error_message
from textnlp.errors import (
    BackendUnavailable,
    InvalidInput,
    ModelUnavailable,
    ServiceUnavailable,
    TextNLPError,
    public_message,
    public_reason,
)

#: Errors whose text names the deployment (a database's address, a model's file and secret).
OUTAGE = ServiceUnavailable(
    "cannot reach the database at 10.0.0.5:5432: connection refused", dependency="database"
)
UNAVAILABLE_MODEL = ModelUnavailable(
    "the GGUF /srv/models/llama.gguf is missing; OPENAI_API_KEY is unset", model="llama"
)
PRIVATE = ("10.0.0.5", "5432", "/srv/models", "OPENAI_API_KEY")


@pytest.mark.parametrize(
    "exc",
    [
        OUTAGE,
        UNAVAILABLE_MODEL,
        BackendUnavailable("model server down", backend="sagemaker", model="m"),
        InvalidInput("count: must be at least 1"),
    ],
)
def test_every_surface_tells_the_public_message(exc: TextNLPError) -> None:
    told = public_message(exc)
    assert error_for(exc)[1]["message"] == told
    assert public_body(exc)["message"] == told
    assert ws_error_message(exc)["error"]["message"] == told
    assert json.loads(sse_error(exc)["data"])["error"]["message"] == told
    assert openai_error_for(exc)[1]["message"] == told
    assert public_reason(exc) == f"{type(exc).__name__}: {told}"


@pytest.mark.parametrize("exc", [OUTAGE, UNAVAILABLE_MODEL])
def test_a_jobs_error_names_no_address_file_or_secret(exc: TextNLPError) -> None:
    reason = public_reason(exc)  # the job's ``error``: its owner, their webhook read it
    for private in PRIVATE:
        assert private not in reason, reason
    assert public_reason(OUTAGE) == ("ServiceUnavailable: the database is unavailable; retry later")


def test_an_error_not_of_the_tree_says_its_class_alone() -> None:
    bug = KeyError("s3://internal-bucket/generated/job-1.jsonl")
    assert public_message(bug) == "internal error"
    assert ws_error_message(bug)["error"]["message"] == public_message(bug)
    reason = public_reason(bug)
    assert reason.startswith("internal error (KeyError)") and "internal-bucket" not in reason
