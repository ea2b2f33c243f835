"""The batch trigger on S3 event shapes from the AWS documentation, against moto's S3 and
Step Functions (which records executions; the rehearsal runs them)."""

from __future__ import annotations

import json
import os
import socket
import uuid
from typing import Any
from urllib.parse import unquote_plus

import pytest
from botocore.exceptions import ClientError

from tests.support.job_stores import aws_client
from textnlp.adapters.storage import Keys
from textnlp.deployment import UPLOAD_METADATA_KEY, UPLOAD_METADATA_MANUAL
from textnlp.lambdas import batch_trigger
from textnlp.lambdas.upload_events import (
    KEY_ENCODING_FIELD,
    RAW_KEY,
    UPLOADS_PREFIX,
    Upload,
    uploads_in,
)

TRACE_ROOT = "1-5759e988-bd862e3fe1be46a994272793"


def s3_record(
    key: str, bucket: str, etag: str = "d41d8cd98f00b204e9800998ecf8427e"
) -> dict[str, Any]:
    """A record as in "Event message structure" of the S3 user guide."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-27T12:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "prompt-uploads",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": key, "size": 1024, "eTag": etag},
        },
    }


class RecordingStates:
    """moto's Step Functions client, recording ``start_execution`` calls; ``answers`` replaces
    moto's answer for a key (an exception to raise, as a throttled call would)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[dict[str, Any]] = []
        self.answers: dict[str, Exception] = {}

    def start_execution(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        answer = self.answers.get(json.loads(kwargs["input"])["key"])
        if answer is not None:
            raise answer
        return self.client.start_execution(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


class Uploads:
    """A bucket in moto's S3 to put prompt files in, as the API or a user's tool would."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.bucket = f"textnlp-test-{uuid.uuid4().hex[:8]}"
        client.create_bucket(Bucket=self.bucket)

    def put(self, key: str, *, manual: bool = False) -> dict[str, Any]:
        """The S3 record for a new object at ``key`` (its real ETag)."""
        metadata = {UPLOAD_METADATA_KEY: UPLOAD_METADATA_MANUAL} if manual else {}
        answer = self.client.put_object(
            Bucket=self.bucket,
            Key=unquote_plus(key),
            Body=b'{"prompt": "hi"}\n',
            Metadata=metadata,
        )
        return s3_record(key, self.bucket, answer["ETag"].strip('"'))


@pytest.fixture
def uploads(aws_env: str) -> Uploads:
    return Uploads(aws_client("s3", aws_env))


@pytest.fixture
def states(aws_env: str, uploads: Uploads, monkeypatch: pytest.MonkeyPatch) -> RecordingStates:
    client = aws_client("stepfunctions", aws_env)
    machine = client.create_state_machine(
        name=f"batch-{uuid.uuid4().hex[:8]}",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/textnlp-batch-orchestration",
    )["stateMachineArn"]
    environment = {"STATE_MACHINE_ARN": machine}
    assert set(environment) == set(batch_trigger.CONFIG_VARIABLES)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    recording = RecordingStates(client)
    monkeypatch.setattr(
        batch_trigger, "_clients", {"stepfunctions": recording, "s3": uploads.client}
    )
    return recording


def inputs_of(states: RecordingStates, execution_arns: list[str]) -> list[dict[str, str]]:
    return [
        json.loads(states.describe_execution(executionArn=arn)["input"]) for arn in execution_arns
    ]


def test_a_key_is_decoded_by_its_records_shape_never_by_its_look() -> None:
    keys = ("c++ prompts.jsonl", "report%41.jsonl", "plain name.csv")
    encoded = ("c%2B%2B+prompts.jsonl", "report%2541.jsonl", "plain+name.csv")
    bucket = "textnlp-test"
    # S3 notifications URL-encode keys.
    notified = uploads_in({"Records": [s3_record(UPLOADS_PREFIX + k, bucket) for k in encoded]})
    assert [u.key for u in notified] == [UPLOADS_PREFIX + k for k in keys]
    # The upload rule's records (EventBridge) carry keys as stored, and say so.
    raw = [s3_record(UPLOADS_PREFIX + k, bucket) for k in keys]
    for record in raw:
        record["s3"]["object"][KEY_ENCODING_FIELD] = RAW_KEY
    assert [u.key for u in uploads_in({"Records": raw})] == [UPLOADS_PREFIX + k for k in keys]
    assert UPLOADS_PREFIX == Keys.USER_UPLOADS


def test_starts_one_execution_per_upload_and_skips_the_rest(
    states: RecordingStates, uploads: Uploads
) -> None:
    event = {
        "Records": [
            uploads.put("prompts/user-uploads/u1/reviews+2026.jsonl"),
            s3_record("generated/2026/11/27/out.jsonl", uploads.bucket),
            s3_record("prompts/user-uploads/u1/", uploads.bucket),
            uploads.put("prompts/user-uploads/u2/plain name.csv"),
        ]
    }
    answer = batch_trigger.handler(event)
    assert len(answer["started"]) == 2 and answer["skipped"] == []
    inputs = inputs_of(states, answer["started"])
    assert sorted(i["key"] for i in inputs) == [
        "prompts/user-uploads/u1/reviews 2026.jsonl",
        "prompts/user-uploads/u2/plain name.csv",
    ]
    assert {i["bucket"] for i in inputs} == {uploads.bucket}
    assert all(set(i) == set(batch_trigger.EXECUTION_INPUT_FIELDS) and i["etag"] for i in inputs)
    names = [call["name"] for call in states.calls]
    assert len(set(names)) == 2 and all(0 < len(n) <= 80 for n in names)


def test_files_uploaded_through_the_api_are_left_to_their_owner(
    states: RecordingStates, uploads: Uploads
) -> None:
    manual = uploads.put("prompts/user-uploads/u1/mine.jsonl", manual=True)
    answer = batch_trigger.handler({"Records": [manual]})
    assert answer == {"started": [], "skipped": ["prompts/user-uploads/u1/mine.jsonl"]}
    assert states.calls == []


def test_a_deleted_object_is_skipped(states: RecordingStates, uploads: Uploads) -> None:
    gone = s3_record("prompts/user-uploads/u1/gone.jsonl", uploads.bucket)
    assert batch_trigger.handler({"Records": [gone]})["skipped"] == [
        "prompts/user-uploads/u1/gone.jsonl"
    ]
    assert states.calls == []


def test_a_retried_event_names_the_same_execution(
    states: RecordingStates, uploads: Uploads
) -> None:
    record = uploads.put("prompts/user-uploads/u1/p.jsonl")
    (first,) = batch_trigger.handler({"Records": [record]})["started"]
    # moto answers a repeated name with ExecutionAlreadyExists, as AWS does once it finished.
    (again,) = batch_trigger.handler({"Records": [record]})["started"]
    assert again == first
    assert states.calls[0] == states.calls[1]
    other = uploads.put("prompts/user-uploads/u1/q.jsonl")
    batch_trigger.handler({"Records": [other]})
    assert states.calls[-1]["name"] != states.calls[0]["name"]
    executions = states.list_executions(stateMachineArn=os.environ["STATE_MACHINE_ARN"])
    assert len(executions["executions"]) == 2


def test_failures_raise_after_every_record_was_tried(
    states: RecordingStates, uploads: Uploads
) -> None:
    throttled = uploads.put("prompts/user-uploads/u1/throttled.jsonl")
    denied = uploads.put("prompts/user-uploads/u1/denied.jsonl")
    fine = uploads.put("prompts/user-uploads/u1/fine.jsonl")
    states.answers["prompts/user-uploads/u1/throttled.jsonl"] = ClientError(
        {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "StartExecution"
    )
    states.answers["prompts/user-uploads/u1/denied.jsonl"] = ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "StartExecution"
    )
    with pytest.raises(batch_trigger.BatchTriggerFailed) as failed:
        batch_trigger.handler({"Records": [throttled, denied, fine]})
    message = str(failed.value)
    assert "2 of 3" in message and "Throttling" in message and "AccessDenied" in message
    assert len(states.calls) == 3  # the third record was still started
    executions = states.list_executions(stateMachineArn=os.environ["STATE_MACHINE_ARN"])
    assert len(executions["executions"]) == 1


def test_start_execution_arguments() -> None:
    config = batch_trigger.TriggerConfig.from_environ(
        {"STATE_MACHINE_ARN": " arn:aws:states:us-east-1:123456789012:stateMachine:m "}
    )
    upload = Upload("b", "prompts/user-uploads/u/p.csv", "etag")
    args = batch_trigger.start_execution_arguments(config, upload)
    assert args["stateMachineArn"] == "arn:aws:states:us-east-1:123456789012:stateMachine:m"
    assert args["name"] == batch_trigger.execution_name(upload)
    assert json.loads(args["input"]) == {
        "bucket": "b",
        "key": "prompts/user-uploads/u/p.csv",
        "etag": "etag",
    }


def test_a_missing_variable_is_named(
    states: RecordingStates, uploads: Uploads, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STATE_MACHINE_ARN")
    with pytest.raises(RuntimeError, match="STATE_MACHINE_ARN"):
        batch_trigger.handler({"Records": [uploads.put("prompts/user-uploads/u/p.jsonl")]})


@pytest.mark.parametrize(
    ("event", "missing"),
    [
        pytest.param({"detail-type": "Object Created"}, "Records", id="no-records"),
        pytest.param({"Records": {"s3": {}}}, "Records", id="records-not-a-list"),
        pytest.param({"Records": [{"eventSource": "aws:s3"}]}, "record 0 has no s3", id="no-s3"),
        pytest.param(
            {"Records": [{"s3": {"object": {"key": "prompts/user-uploads/u/p.csv"}}}]},
            "s3.bucket",
            id="no-bucket",
        ),
        pytest.param(
            {
                "Records": [
                    s3_record("prompts/user-uploads/u/a.csv", "b"),
                    {"s3": {"bucket": {"name": "b"}, "object": {}}},
                ]
            },
            "record 1 has no s3.object.key",
            id="second-without-key",
        ),
    ],
)
def test_malformed_events_raise_naming_what_is_missing(
    states: RecordingStates, event: dict[str, Any], missing: str
) -> None:
    with pytest.raises(ValueError, match=missing):
        batch_trigger.handler(event)
    assert states.calls == []


def test_uploads_carry_the_events_etag() -> None:
    record = s3_record("prompts/user-uploads/u/a.csv", "b", etag='"abc"')
    expected = Upload("b", "prompts/user-uploads/u/a.csv", "abc")
    assert uploads_in({"Records": [record]}) == [expected]


def test_the_trace_runs_on_into_the_execution(
    states: RecordingStates, uploads: Uploads, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    daemon.settimeout(5)
    host, port = daemon.getsockname()
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", f"{host}:{port}")
    monkeypatch.setenv("_X_AMZN_TRACE_ID", f"Root={TRACE_ROOT};Parent=53995c3f42cd8ad8;Sampled=1")
    with daemon:
        batch_trigger.handler({"Records": [uploads.put("prompts/user-uploads/u1/traced.jsonl")]})
        documents = [json.loads(daemon.recv(65536).decode().partition("\n")[2]) for _ in "ab"]
    head, start = documents
    assert (head["name"], head["aws"]["operation"]) == ("S3", "HeadObject")
    assert (start["name"], start["aws"]["operation"]) == ("SFN", "StartExecution")
    assert {d["trace_id"] for d in documents} == {TRACE_ROOT}
    assert {d["parent_id"] for d in documents} == {"53995c3f42cd8ad8"}
    (call,) = states.calls
    # The execution's segment is a child of the StartExecution call.
    assert call["traceHeader"] == f"Root={TRACE_ROOT};Parent={start['id']};Sampled=1"
