"""The API task role allows what the app's AWS code really calls.

The app's own classes run here with a recorder on boto3: every request they send is noted (its
operation, its HTTP method, what it names) and answered `{}` before it leaves, so no endpoint is
needed. Each call, as an IAM action on a resource, must be allowed by a statement of the task
role in the synthesised template. A list of actions kept beside the role cannot drift from the
code this way (the role once lacked `dynamodb:GetItem`, which every console page calls, and
`DELETE` on `@connections`, which closes a revoked caller's socket).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fnmatch import fnmatchcase
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from textnlp.adapters.cache.memory import MemoryCache
from textnlp.adapters.sessions.dynamodb import DynamoDbSessionStore
from textnlp.api.routers.gateway import GatewayStreams
from textnlp.deployment import session_table_name
from textnlp.errors import AuthError

from infra_assembly import Assembly
from test_infra_serverless import actions

REGION = "us-east-1"
TABLE = session_table_name("production")
API_ID, STAGE = "a1b2c3d4e5", "prod"


@dataclass(frozen=True)
class Call:
    action: str  # as IAM names it
    resource: str


def _as_iam(service: str, operation: str, method: str, params: dict[str, Any],
            account: str) -> Call:
    if service == "dynamodb":
        table = params.get("TableName") or next(iter(params.get("RequestItems", {})), "")
        return Call(f"dynamodb:{operation}",
                    f"arn:aws:dynamodb:{REGION}:{account}:table/{table}")
    if service == "execute-api":  # the management API: one action, the method in the ARN
        connection = params["ConnectionId"]
        return Call("execute-api:ManageConnections",
                    f"arn:aws:execute-api:{REGION}:{account}:{API_ID}/{STAGE}/{method}"
                    f"/@connections/{connection}")
    raise AssertionError(f"no IAM mapping for {service}:{operation}: add one")


@contextmanager
def recorded(account: str) -> Iterator[list[Call]]:
    """Every request boto3's default session sends meanwhile, answered `{}` unsent."""
    calls: list[Call] = []

    def note(model: Any, params: dict[str, Any], **_: Any) -> None:
        service = model.service_model.signing_name
        calls.append(_as_iam(service, model.name, model.http["method"], params, account))

    def answer(request: Any, **_: Any) -> AWSResponse:
        return AWSResponse(request.url, 200, {}, SimpleNamespace(stream=lambda **_: [b"{}"]))

    boto3.setup_default_session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    events = boto3.DEFAULT_SESSION.events  # type: ignore[attr-defined]
    events.register("before-parameter-build", note)
    events.register("before-send", answer)
    try:
        yield calls
    finally:
        boto3.DEFAULT_SESSION = None


def _task_role_statements(assembly: Assembly) -> list[dict[str, Any]]:
    return [
        statement
        for name, policy in assembly.resources("Security", "AWS::IAM::Policy").items()
        if name.startswith("TaskRolesTaskPolicy")
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _allowed(call: Call, statements: list[dict[str, Any]]) -> bool:
    for statement in statements:
        if statement["Effect"] != "Allow" or "Condition" in statement:
            continue
        resources = statement["Resource"]
        resources = [resources] if isinstance(resources, str) else resources
        if any(fnmatchcase(call.action, a) for a in actions(statement)) and any(
            isinstance(r, str) and fnmatchcase(call.resource, r) for r in resources
        ):
            return True
    return False


def _account(assembly: Assembly) -> str:
    for statement in _task_role_statements(assembly):
        resource = statement["Resource"]
        if isinstance(resource, str) and resource.startswith("arn:aws:dynamodb:"):
            return resource.split(":")[4]
    raise AssertionError("the task role names no DynamoDB table")


def _public_methods(cls: type) -> set[str]:
    return {
        name for name, member in vars(cls).items()
        if not name.startswith("_") and inspect.isfunction(member)
    }


def _exercise_session_store() -> set[str]:
    """Call every public method of the store; returns their names."""
    store = DynamoDbSessionStore(boto3.client("dynamodb"), TABLE, users=lambda _: None)
    steps: dict[str, Callable[[], object]] = {
        "start_family": lambda: store.start_family("fam", "user", "jti-1", 2e9),
        "rotate": lambda: store.rotate("fam", "jti-1", "jti-2", 2e9),
        "revoke_family": lambda: store.revoke_family("fam"),
        "revoke_jti": lambda: store.revoke_jti("jti-3", 2e9),
        "access_holder": lambda: store.access_holder("user", "fam", "jti-3"),
        "session_holder": lambda: store.session_holder("user", "fam", "jti-2"),
        "purge_expired": lambda: store.purge_expired(),
    }
    for step in steps.values():
        step()
    return set(steps)


def _exercise_gateway_streams() -> None:
    settings = SimpleNamespace(
        api=SimpleNamespace(
            websocket_callback_url=f"https://{API_ID}.execute-api.{REGION}.amazonaws.com/{STAGE}"
        ),
        aws=SimpleNamespace(region=REGION),
    )
    platform = SimpleNamespace(settings=settings, kv_cache=MemoryCache())
    streams = GatewayStreams(platform, serving=None)  # type: ignore[arg-type]
    # A stream's event, then a revoked caller told why and its socket closed.
    asyncio.run(streams.post("conn-1", {"type": "token", "text": "hi"}))
    asyncio.run(streams.refuse("conn-1", AuthError("revoked")))


def test_every_session_store_method_is_exercised() -> None:
    # A new method of the store must join the exercise below, or its calls go unchecked.
    with recorded("123456789012"):
        assert _exercise_session_store() == _public_methods(DynamoDbSessionStore)


@pytest.mark.parametrize(
    "exercise", [_exercise_session_store, _exercise_gateway_streams], ids=["sessions", "gateway"]
)
def test_the_task_role_allows_what_the_app_calls(
    assembly: Assembly, exercise: Callable[[], object]
) -> None:
    statements = _task_role_statements(assembly)
    with recorded(_account(assembly)) as calls:
        exercise()
    assert calls, "the exercise sent nothing"
    refused = sorted({f"{c.action} on {c.resource}" for c in calls if not _allowed(c, statements)})
    assert refused == []
