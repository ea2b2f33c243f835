"""The task role allows what the app's AWS code really calls.

The app's own classes run here with a recorder on boto3: every request they send is noted (its
operation, its HTTP method, what it names) and answered by moto in process (the storage and the
queues, named as the deployment names them) or `{}` before it leaves (the session table and the
WebSocket Management API, whose answers the code reads little). Each call, as an IAM action on
a resource, must be allowed by a statement of the task role in the synthesised template (with
what IAM checks beside it: tags set on create, a role passed to a service, `StringEquals`
conditions evaluated). The catalogue's Bedrock and SageMaker models are called online and as
provider batches, each SageMaker endpoint described as the ModelServing stack deploys it. A list
of actions kept beside the role cannot drift from the code this way (the role once lacked
`dynamodb:GetItem`, which every console page calls, and `DELETE` on `@connections`, which closes
a revoked caller's socket).
"""

from __future__ import annotations

import asyncio
import inspect
import io
import json
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
from textnlp.adapters.secrets import EnvSecrets
from textnlp.adapters.secrets.aws import AwsSecretsManager
from textnlp.adapters.secrets.env import WELL_KNOWN
from textnlp.adapters.sessions.dynamodb import DynamoDbSessionStore
from textnlp.adapters.storage.s3 import S3Storage
from textnlp.api.routers.gateway import GatewayStreams
from textnlp.backends.batch import batch_provider
from textnlp.backends.batch.base import job_name
from textnlp.backends.cloud import CloudContext
from textnlp.backends.registry import ModelCatalogue
from textnlp.backends.resilience import RetryPolicy
from textnlp.config import env_name, load_settings
from textnlp.deployment import session_table_name
from textnlp.domain import GenerationParams, GenerationRequest
from textnlp.errors import Archived, AuthError
from textnlp.services.job_models import JobProgress, JobTimings, JobView
from textnlp.services.job_runs import ProviderFiles
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
    #: The request's condition keys (e.g. ``iam:PassedToService`` of a passed role).
    context: tuple[tuple[str, str], ...] = ()


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
    if service == "bedrock":
        return _bedrock_call(operation, params, account)
    if service == "sagemaker":
        return _sagemaker_call(operation, params, account)
    raise AssertionError(f"no IAM mapping for {service}:{operation}: add one")


#: Bedrock runtime operations -> the IAM action that allows them (Converse is InvokeModel's).
BEDROCK_RUNTIME = {
    "Converse": "InvokeModel", "InvokeModel": "InvokeModel",
    "ConverseStream": "InvokeModelWithResponseStream",
    "InvokeModelWithResponseStream": "InvokeModelWithResponseStream",
}


def _bedrock_call(operation: str, params: dict[str, Any], account: str) -> Call:
    if operation in BEDROCK_RUNTIME:
        return Call(f"bedrock:{BEDROCK_RUNTIME[operation]}",
                    f"arn:aws:bedrock:{REGION}::foundation-model/{params['modelId']}")
    job = f"arn:aws:bedrock:{REGION}:{account}:model-invocation-job"
    if operation == "CreateModelInvocationJob":  # on the model, with the job it makes
        return Call("bedrock:CreateModelInvocationJob",
                    f"arn:aws:bedrock:{REGION}::foundation-model/{params['modelId']}")
    if operation in ("GetModelInvocationJob", "StopModelInvocationJob"):
        identifier = str(params["jobIdentifier"])
        return Call(f"bedrock:{operation}",
                    identifier if identifier.startswith("arn:") else f"{job}/{identifier}")
    if operation == "ListModelInvocationJobs":  # no resource-level permissions
        return Call("bedrock:ListModelInvocationJobs", "*")
    raise AssertionError(f"no IAM mapping for bedrock:{operation}: add one")


def _sagemaker_call(operation: str, params: dict[str, Any], account: str) -> Call:
    """SageMaker's ARNs hold names in lower case."""
    arn = f"arn:aws:sagemaker:{REGION}:{account}"
    named = {
        "EndpointName": "endpoint", "EndpointConfigName": "endpoint-config",
        "TransformJobName": "transform-job", "InferenceComponentName": "inference-component",
    }
    for parameter, kind in named.items():
        if parameter in params:
            return Call(f"sagemaker:{operation}", f"{arn}:{kind}/{str(params[parameter]).lower()}")
    raise AssertionError(f"no IAM mapping for sagemaker:{operation}: add one")


def _implied(call: Call, params: dict[str, Any]) -> list[Call]:
    """What IAM checks beside the call itself: tags set on create (``AddTags``), a job's own
    resource, and a role handed to a service (``iam:PassRole``)."""
    if call.action == "sagemaker:CreateTransformJob" and params.get("Tags"):
        return [Call("sagemaker:AddTags", call.resource)]
    if call.action == "bedrock:CreateModelInvocationJob":
        account = str(params["roleArn"]).split(":")[4]
        job = f"arn:aws:bedrock:{REGION}:{account}:model-invocation-job/{params['jobName']}"
        return [
            Call("bedrock:CreateModelInvocationJob", job),
            Call("iam:PassRole", str(params["roleArn"]),
                 (("iam:PassedToService", "bedrock.amazonaws.com"),)),
        ]
    return []


#: S3 operations -> the IAM action that allows them (AWS's "Actions defined by Amazon S3").
S3_ACTIONS = {
    "PutObject": "PutObject", "CreateMultipartUpload": "PutObject", "UploadPart": "PutObject",
    "CompleteMultipartUpload": "PutObject", "AbortMultipartUpload": "AbortMultipartUpload",
    "GetObject": "GetObject", "HeadObject": "GetObject", "DeleteObject": "DeleteObject",
    "ListObjectsV2": "ListBucket", "RestoreObject": "RestoreObject",
}


@contextmanager
def recorded(
    account: str, *, answer_empty: bool = True, answers: dict[str, dict[str, Any]] | None = None
) -> Iterator[list[Call]]:
    """Every request boto3's default session sends meanwhile, answered unsent
    (``answer_empty``: `{}`, or the operation's entry in ``answers``) or by whatever serves it
    (moto); S3 gets an empty body (what a PUT answers). A client of a new
    ``boto3.session.Session`` (the model backends') is recorded too."""
    calls: list[Call] = []
    pending: list[tuple[str, str]] = []

    def note(model: Any, params: dict[str, Any], **_: Any) -> None:
        service = model.service_model.signing_name
        call = _as_iam(service, model.name, model.http["method"], params, account)
        calls.extend([call, *_implied(call, params)])
        pending.append((service, model.name))

    def answer(request: Any, **_: Any) -> AWSResponse:
        service, operation = pending[-1] if pending else ("", "")
        body = b"" if service == "s3" else json.dumps((answers or {}).get(operation, {})).encode()
        return AWSResponse(request.url, 200, {}, SimpleNamespace(stream=lambda **_: [body]))

    boto3.setup_default_session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    default = boto3.DEFAULT_SESSION
    events = default.events  # type: ignore[attr-defined]
    events.register("before-parameter-build", note)
    if answer_empty:
        events.register("before-send", answer)
    original = boto3.session.Session
    boto3.session.Session = lambda *_, **__: default  # type: ignore[assignment,misc]
    try:
        yield calls
    finally:
        boto3.session.Session = original  # type: ignore[misc]
        boto3.DEFAULT_SESSION = None


def _task_role_statements(assembly: Assembly) -> list[dict[str, Any]]:
    """The task role's statements; a resource that is a role's `Fn::GetAtt .Arn` becomes the
    role's ARN (the role is named in the template)."""
    roles = assembly.resources("Security", "AWS::IAM::Role")

    def resolved(resource: Any) -> Any:
        logical, attribute = (resource.get("Fn::GetAtt") or [None, None]) if isinstance(
            resource, dict) else (None, None)
        if attribute != "Arn" or logical not in roles:
            return resource
        name = roles[logical]["Properties"]["RoleName"]
        return f"arn:aws:iam::{_account(assembly)}:role/{name}"

    statements = []
    for statement in _raw_statements(assembly):
        resources = statement["Resource"]
        resources = resources if isinstance(resources, list) else [resources]
        statements.append({**statement, "Resource": [resolved(r) for r in resources]})
    return statements


def _raw_statements(assembly: Assembly) -> list[dict[str, Any]]:
    return [
        statement
        for name, policy in assembly.resources("Security", "AWS::IAM::Policy").items()
        if name.startswith("TaskRolesTaskPolicy")
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _conditions_hold(statement: dict[str, Any], call: Call) -> bool:
    """A statement's conditions against the call's context: `StringEquals` only (any other
    operator is not met, so a statement relying on one must be read by a person)."""
    context = dict(call.context)
    for operator, keys in statement.get("Condition", {}).items():
        if operator != "StringEquals":
            return False
        for key, wanted in keys.items():
            wanted = [wanted] if isinstance(wanted, str) else wanted
            if context.get(key) not in wanted:
                return False
    return True


def _allowed(call: Call, statements: list[dict[str, Any]]) -> bool:
    for statement in statements:
        if statement["Effect"] != "Allow" or not _conditions_hold(statement, call):
            continue
        resources = statement["Resource"]
        resources = [resources] if isinstance(resources, str) else resources
        if any(fnmatchcase(call.action, a) for a in actions(statement)) and any(
            isinstance(r, str) and fnmatchcase(call.resource, r) for r in resources
        ):
            return True
    return False


def _account(assembly: Assembly) -> str:
    for statement in _raw_statements(assembly):
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
        "rotated_from": lambda: store.rotated_from("fam", "jti-1", 1e9),
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
        "readable": lambda: _readable_archived(storage, bucket),
        "delete": lambda: storage.delete("prompts/a.jsonl"),
        "close": lambda: storage.close(),
    }
    for step in steps.values():
        step()
    return set(steps)


def _readable_archived(storage: S3Storage, bucket: str) -> None:
    """A generated file the lifecycle archived: ``readable`` heads it and starts its restore."""
    key = "generated/batch-jobs/old/records.jsonl"
    storage.client.put_object(Bucket=bucket, Key=key, Body=b"{}\n", StorageClass="GLACIER")
    try:
        storage.readable(key)
    except Archived:
        # Started, not merely said: a refused restore is "archived" too (and logged).
        assert "Restore" in storage.client.head_object(Bucket=bucket, Key=key)
        return
    raise AssertionError("an archived object was readable")


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


def _endpoint_answers(assembly: Assembly, endpoint: str) -> dict[str, dict[str, Any]]:
    """SageMaker's descriptions of ``endpoint`` as deployed: its config's name and variants,
    read from the synthesised ModelServing stack."""
    resources = assembly.templates[_stack_named(assembly, "ModelServing")]["Resources"]

    def name_of(value: Any, attribute: str) -> str:
        if isinstance(value, str):
            return value
        return str(resources[value["Fn::GetAtt"][0]]["Properties"][attribute])

    for resource in resources.values():
        properties = resource["Properties"]
        if resource["Type"] == "AWS::SageMaker::Endpoint" and properties.get(
            "EndpointName"
        ) == endpoint:
            config_name = name_of(properties["EndpointConfigName"], "EndpointConfigName")
            config = next(
                r["Properties"] for r in resources.values()
                if r["Type"] == "AWS::SageMaker::EndpointConfig"
                and r["Properties"].get("EndpointConfigName") == config_name
            )
            variants = [
                {"VariantName": v["VariantName"], "InstanceType": v.get("InstanceType"),
                 "ModelName": name_of(v["ModelName"], "ModelName")}
                for v in config["ProductionVariants"]
            ]
            return {
                "DescribeEndpoint": {"EndpointConfigName": config_name},
                "DescribeEndpointConfig": {"ProductionVariants": variants},
            }
    raise AssertionError(f"no endpoint {endpoint} is deployed")


def _stack_named(assembly: Assembly, short: str) -> str:
    return next(name for name in assembly.templates if name.endswith(short))


async def _sent(call: Any) -> None:
    """Run a backend call whose answer may not parse (the recorder's): the request is sent."""
    try:
        result = await call if inspect.isawaitable(call) else call
        if inspect.isasyncgen(result):
            async for _ in result:
                pass
    except Exception:  # noqa: BLE001, S110 - what the call sent is what is checked
        pass


def _exercise_models(role_arn: str, bucket: str) -> list[str]:
    """Every Bedrock and SageMaker model of the catalogue, online (generate, stream) and as a
    provider batch (submit, find, poll, results, cancel); returns the models' ids."""
    catalogue = ModelCatalogue.load()
    context = CloudContext(
        secrets=EnvSecrets({}), aws_region=REGION,
        retry=RetryPolicy(max_attempts=1, base_delay_s=0.0, max_delay_s=0.0),
    )
    storage = S3Storage(boto3.client("s3"), bucket)
    request = GenerationRequest.chat("hi", params=GenerationParams(max_tokens=4))
    job_id, exercised = "0" * 32, []

    async def go() -> None:
        for spec in catalogue.specs():
            if spec.backend not in ("bedrock", "sagemaker"):
                continue
            exercised.append(spec.id)
            async with catalogue.create(spec.id, context=context) as backend:
                await _sent(backend.generate([request]))
                await _sent(backend.stream(request))
                provider = batch_provider(
                    backend, ProviderFiles(storage, job_id), bedrock_role_arn=role_arn
                )
                lines = provider.lines({0: request})
                batch_id = job_name(job_id, 0)
                if spec.backend == "bedrock":  # a Bedrock job is named by its ARN
                    account = role_arn.split(":")[4]
                    batch_id = f"arn:aws:bedrock:{REGION}:{account}:model-invocation-job/{batch_id}"
                await _sent(provider.submit(job_id, 0, lines))
                await _sent(provider.find(job_id, 0, lines, 0.0))
                await _sent(provider.poll(batch_id))
                await _sent(provider.results(batch_id, {0: request}, job_id=job_id, part=0))
                await _sent(provider.cancel(batch_id))
                await provider.aclose()

    asyncio.run(go())
    return exercised


def test_the_task_role_allows_the_model_calls(assembly: Assembly) -> None:
    """Bedrock (Converse, batch inference with its role passed) and SageMaker (endpoints,
    batch transform tagged on create) as the catalogue's models call them."""
    account = _account(assembly)
    environment = _app_environment(assembly)
    role_arn = environment[env_name("models", "bedrock_batch_role_arn")]
    bucket = environment[env_name("storage", "bucket")]
    endpoints = {s.endpoint for s in ModelCatalogue.load().specs() if s.backend == "sagemaker"}
    answers: dict[str, dict[str, Any]] = {}
    for endpoint in sorted(e for e in endpoints if e):
        answers.update(_endpoint_answers(assembly, endpoint))
    statements = _task_role_statements(assembly)
    with recorded(account, answers=answers) as calls:
        models = _exercise_models(role_arn, bucket)
    assert models, "the catalogue has Bedrock and SageMaker models"
    sent = {c.action for c in calls}
    assert sent >= {
        "bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream",
        "bedrock:CreateModelInvocationJob", "bedrock:GetModelInvocationJob",
        "bedrock:StopModelInvocationJob", "bedrock:ListModelInvocationJobs", "iam:PassRole",
        "sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream",
        "sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig",
        "sagemaker:CreateTransformJob", "sagemaker:AddTags", "sagemaker:DescribeTransformJob",
        "sagemaker:StopTransformJob", "s3:PutObject",
    }, sent
    refused = sorted({f"{c.action} on {c.resource}" for c in calls if not _allowed(c, statements)})
    assert refused == []
