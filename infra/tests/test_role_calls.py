"""The task role allows what the app's AWS code really calls.

The app's own classes run here with a recorder on boto3: every request they send is noted (its
operation, its HTTP method, what it names) and answered by moto in process (the storage and the
queues, named as the deployment names them) or `{}` before it leaves (the session table and the
WebSocket Management API, whose answers the code reads little). Each call, as an IAM action on
a resource, must be allowed by a statement of the task role in the synthesised template. A list
of actions kept beside the role cannot drift from the code this way (the role once lacked
`dynamodb:GetItem`, which every console page calls, and `DELETE` on `@connections`, which closes
a revoked caller's socket).
"""

from __future__ import annotations

import asyncio
import inspect
import io
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws
from textnlp.adapters.cache.memory import MemoryCache
from textnlp.adapters.queue.base import QueueMessage
from textnlp.adapters.queue.sqs import SqsQueue
from textnlp.adapters.secrets.aws import AwsSecretsManager
from textnlp.adapters.secrets.env import WELL_KNOWN
from textnlp.adapters.sessions.dynamodb import DynamoDbSessionStore
from textnlp.adapters.storage.s3 import S3Storage
from textnlp.api.routers.gateway import GatewayStreams
from textnlp.config import env_name, load_settings
from textnlp.deployment import session_table_name
from textnlp.errors import AuthError
from textnlp.services.job_models import JobProgress, JobTimings, JobView
from textnlp.worker.notify import Notifier

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
    if service == "s3":
        bucket, key = params["Bucket"], params.get("Key")
        action = S3_ACTIONS.get(operation)
        if action is None:
            raise AssertionError(f"no IAM mapping for s3:{operation}: add one")
        return Call(f"s3:{action}", f"arn:aws:s3:::{bucket}" + (f"/{key}" if key else ""))
    if service == "secretsmanager":  # a secret's ARN ends with its name and 6 random characters
        return Call(f"secretsmanager:{operation}",
                    f"arn:aws:secretsmanager:{REGION}:{account}:secret:{params['SecretId']}-AbCdEf")
    if service == "sns":
        return Call(f"sns:{operation}", str(params["TopicArn"]))
    if service == "sqs":
        name = params.get("QueueName") or str(params["QueueUrl"]).rsplit("/", 1)[-1]
        return Call(f"sqs:{operation}", f"arn:aws:sqs:{REGION}:{account}:{name}")
    raise AssertionError(f"no IAM mapping for {service}:{operation}: add one")


#: S3 operations -> the IAM action that allows them (AWS's "Actions defined by Amazon S3").
S3_ACTIONS = {
    "PutObject": "PutObject", "CreateMultipartUpload": "PutObject", "UploadPart": "PutObject",
    "CompleteMultipartUpload": "PutObject", "AbortMultipartUpload": "AbortMultipartUpload",
    "GetObject": "GetObject", "HeadObject": "GetObject", "DeleteObject": "DeleteObject",
    "ListObjectsV2": "ListBucket",
}


@contextmanager
def recorded(account: str, *, answer_empty: bool = True) -> Iterator[list[Call]]:
    """Every request boto3's default session sends meanwhile, answered `{}` unsent
    (``answer_empty``) or by whatever serves it (moto)."""
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
    if answer_empty:
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


def _app_environment(assembly: Assembly) -> dict[str, str]:
    """The plain environment of the API's container, as deployed."""
    for task in assembly.resources("Compute", "AWS::ECS::TaskDefinition").values():
        for container in task["Properties"]["ContainerDefinitions"]:
            variables = {e["Name"]: e["Value"] for e in container.get("Environment", [])}
            if isinstance(variables.get(env_name("storage", "bucket")), str):
                return variables
    raise AssertionError("no container is told the bucket")


def _imported(assembly: Assembly, value: Any) -> tuple[dict[str, Any], Any]:
    """(the exporting stack's template, the exported value) of an `Fn::ImportValue`."""
    for template in assembly.templates.values():
        for output in template.get("Outputs", {}).values():
            if output.get("Export", {}).get("Name") == value["Fn::ImportValue"]:
                return template, output["Value"]
    raise AssertionError(f"no export {value}")


def _named(assembly: Assembly, value: Any) -> str:
    """A plain name, or the property another stack exports (`Fn::ImportValue` of a
    `Fn::GetAtt`, as the queue names are)."""
    if isinstance(value, str):
        return value
    template, exported = _imported(assembly, value)
    logical, attribute = exported["Fn::GetAtt"]
    return str(template["Resources"][logical]["Properties"][attribute])


def _exercise_storage(bucket: str, tmp: Path) -> set[str]:
    """Every public method of the S3 storage, a multipart upload included."""
    storage = S3Storage(boto3.client("s3"), bucket)
    big = tmp / "big.bin"
    big.write_bytes(b"x" * (9 << 20))  # past upload_fileobj's 8 MiB part size
    steps: dict[str, Callable[[], object]] = {
        "put_bytes": lambda: storage.put_bytes("prompts/a.jsonl", b"{}\n"),
        "put_file": lambda: storage.put_file("generated/big.bin", big),
        "put_stream": lambda: storage.put_stream("generated/s.bin", io.BytesIO(b"abcd")),
        "get_bytes": lambda: storage.get_bytes("prompts/a.jsonl"),
        "open_read": lambda: b"".join(storage.open_read("prompts/a.jsonl")),
        "download": lambda: storage.download("prompts/a.jsonl", tmp / "a.jsonl"),
        "exists": lambda: storage.exists("prompts/a.jsonl"),
        "size": lambda: storage.size("prompts/a.jsonl"),
        "list": lambda: storage.list("prompts/"),
        "usage": lambda: storage.usage("prompts/"),
        "presigned_url": lambda: storage.presigned_url("prompts/a.jsonl"),
        "delete": lambda: storage.delete("prompts/a.jsonl"),
        "close": lambda: storage.close(),
    }
    for step in steps.values():
        step()
    return set(steps)


def _exercise_queue(queue: str, dead_letters: str) -> set[str]:
    """Every public method of the SQS queue."""
    sqs = SqsQueue(boto3.client("sqs"), queue, dead_letter_queue=dead_letters, wait_time_s=0)
    fifo = {"group_id": "g", "dedup_id": "d"}
    received: list[QueueMessage] = []

    def take() -> QueueMessage:
        sqs.send("{}", group_id="g", dedup_id=uuid.uuid4().hex)
        (message,) = sqs.receive(1)
        return message

    steps: dict[str, Callable[[], object]] = {
        "send": lambda: sqs.send("{}", **fifo),
        "receive": lambda: received.extend(sqs.receive(1)),
        "extend": lambda: sqs.extend(received[0], 60),
        "release": lambda: sqs.release(received[0]),
        "hand_back": lambda: sqs.hand_back(take()),
        "delete": lambda: sqs.delete(take()),
        "dead_letter": lambda: sqs.dead_letter(take(), "a reason"),
        "dead_letters": lambda: sqs.dead_letters(1),
        "close": lambda: sqs.close(),
    }
    for step in steps.values():
        step()
    return set(steps)


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


def test_the_task_role_allows_the_storage_and_queue_calls(
    assembly: Assembly, tmp_path: Path
) -> None:
    environment = _app_environment(assembly)
    bucket = environment[env_name("storage", "bucket")]
    queue = _named(assembly, environment[env_name("queue", "generation_queue")])
    dead_letters = _named(assembly, environment[env_name("queue", "dead_letter_queue")])
    statements = _task_role_statements(assembly)
    with mock_aws():
        setup = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )
        setup.client("s3").create_bucket(Bucket=bucket)
        for name in (queue, dead_letters):
            attributes = {"FifoQueue": "true"} if name.endswith(".fifo") else {}
            setup.client("sqs").create_queue(QueueName=name, Attributes=attributes)
        with recorded(_account(assembly), answer_empty=False) as calls:
            # A new public method must join the exercise, or its calls go unchecked.
            assert _exercise_storage(bucket, tmp_path) == _public_methods(S3Storage)
            assert _exercise_queue(queue, dead_letters) == _public_methods(SqsQueue)
    assert {c.action for c in calls} >= {"s3:PutObject", "s3:ListBucket", "sqs:SendMessage"}
    refused = sorted({f"{c.action} on {c.resource}" for c in calls if not _allowed(c, statements)})
    assert refused == []


def _topic_arn(assembly: Assembly, value: Any, account: str) -> str:
    """The topic's ARN from the import of a `Ref` to it (or the ARN itself)."""
    if isinstance(value, str):
        return value
    template, exported = _imported(assembly, value)
    topic = template["Resources"][exported["Ref"]]
    return f"arn:aws:sns:{REGION}:{account}:{topic['Properties']['TopicName']}"


def test_the_task_role_allows_reading_every_secret_and_publishing_notices(
    assembly: Assembly,
) -> None:
    account = _account(assembly)
    environment = _app_environment(assembly)
    topic = _topic_arn(assembly, environment[env_name("queue", "notify_topic_arn")], account)
    settings = load_settings(queue={"notify_topic_arn": topic}, aws={"region": REGION})
    statements = _task_role_statements(assembly)
    with recorded(account) as calls:
        secrets = AwsSecretsManager(environment[env_name("environment")], region=REGION)
        for name in WELL_KNOWN:  # every secret the app knows by name
            secrets.find(name)
        job = JobView(
            id="0" * 32, owner_id="u-1", state="succeeded", progress=JobProgress(done=1, total=1),
            timings=JobTimings(created_at=datetime.now(UTC)), model="m", queue="generation",
            attempts=1,
        )
        Notifier(settings).notify(job, webhook_url=None)
    assert {c.action for c in calls} == {"secretsmanager:GetSecretValue", "sns:Publish"}
    refused = sorted({f"{c.action} on {c.resource}" for c in calls if not _allowed(c, statements)})
    assert refused == []
