"""The batch trigger on S3 event shapes from the AWS documentation, against moto's S3 and ECS."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.job_stores import aws_client
from textnlp.adapters.storage import Keys
from textnlp.deployment import UPLOAD_METADATA_KEY, UPLOAD_METADATA_MANUAL
from textnlp.lambdas import batch_trigger
from textnlp.lambdas.upload_events import UPLOADS_PREFIX, Upload, decode_key, uploads_in


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


class MotoEcs:
    """moto's ECS client, recording ``run_task`` calls; ``answers`` replaces moto's answer
    for a key (ECS reports capacity problems as ``failures``, which moto never produces).

    moto 5.2 fails on awsvpc ``networkConfiguration`` (``NetworkInterface`` has no
    ``private_dns_name``), so that one argument is recorded and checked, not sent.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[dict[str, Any]] = []
        self.answers: dict[str, Any] = {}

    def run_task(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        environment = kwargs["overrides"]["containerOverrides"][0]["environment"]
        answer = self.answers.get({e["name"]: e["value"] for e in environment}["S3_KEY"])
        if isinstance(answer, Exception):
            raise answer
        if answer is not None:
            return answer
        sent = {k: v for k, v in kwargs.items() if k != "networkConfiguration"}
        return self.client.run_task(**sent)

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
            Bucket=self.bucket, Key=decode_key(key), Body=b'{"prompt": "hi"}\n', Metadata=metadata
        )
        return s3_record(key, self.bucket, answer["ETag"].strip('"'))


@pytest.fixture
def uploads(aws_env: str) -> Uploads:
    return Uploads(aws_client("s3", aws_env))


@pytest.fixture
def ecs(aws_env: str, uploads: Uploads, monkeypatch: pytest.MonkeyPatch) -> MotoEcs:
    client = aws_client("ecs", aws_env)
    ec2 = aws_client("ec2", aws_env)
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24")["Subnet"]["SubnetId"]
        for i in (1, 2)
    ]
    group = ec2.create_security_group(GroupName=f"sg-{vpc}", Description="t", VpcId=vpc)["GroupId"]
    cluster = client.create_cluster(clusterName="textnlp-test")["cluster"]["clusterArn"]
    task = client.register_task_definition(
        family="batch-processor",
        networkMode="bridge",  # moto cannot run awsvpc tasks (see MotoEcs)
        cpu="1024",
        memory="2048",
        containerDefinitions=[
            {
                "name": "batch-processor",
                "image": "textnlp/generation:test",
                "cpu": 1024,
                "memory": 2048,
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    environment = {
        "CLUSTER_ARN": cluster,
        "TASK_DEFINITION_ARN": task,
        "CONTAINER_NAME": "batch-processor",
        "CAPACITY_PROVIDER": "FARGATE_SPOT",
        "SUBNETS": f"{subnets[0]}, {subnets[1]}",
        "SECURITY_GROUPS": group,
    }
    assert set(environment) == set(batch_trigger.CONFIG_VARIABLES)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    recording = MotoEcs(client)
    monkeypatch.setattr(batch_trigger, "_clients", {"ecs": recording, "s3": uploads.client})
    return recording


def overrides_of(ecs: MotoEcs, task_arns: list[str]) -> list[dict[str, str]]:
    tasks = ecs.describe_tasks(cluster="textnlp-test", tasks=task_arns)["tasks"]
    assert all(t["capacityProviderName"] == "FARGATE_SPOT" for t in tasks)
    return [
        {e["name"]: e["value"] for e in t["overrides"]["containerOverrides"][0]["environment"]}
        for t in tasks
    ]


def test_keys_decoded_only_when_encoded() -> None:
    assert decode_key("prompts/user-uploads/u/my+file%282%29.csv") == (
        "prompts/user-uploads/u/my file(2).csv"
    )
    assert decode_key("prompts/user-uploads/u/plain name.csv") == (
        "prompts/user-uploads/u/plain name.csv"
    )
    assert UPLOADS_PREFIX == Keys.USER_UPLOADS


def test_starts_one_task_per_upload_and_skips_the_rest(ecs: MotoEcs, uploads: Uploads) -> None:
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
    overrides = overrides_of(ecs, answer["started"])
    assert sorted(o["S3_KEY"] for o in overrides) == [
        "prompts/user-uploads/u1/reviews 2026.jsonl",
        "prompts/user-uploads/u2/plain name.csv",
    ]
    assert {o["S3_BUCKET"] for o in overrides} == {uploads.bucket}
    network = ecs.calls[0]["networkConfiguration"]["awsvpcConfiguration"]
    assert len(network["subnets"]) == 2 and network["assignPublicIp"] == "DISABLED"
    tokens = [call["clientToken"] for call in ecs.calls]
    assert len(set(tokens)) == 2 and all(0 < len(t) <= 64 for t in tokens)


def test_files_uploaded_through_the_api_are_left_to_their_owner(
    ecs: MotoEcs, uploads: Uploads
) -> None:
    manual = uploads.put("prompts/user-uploads/u1/mine.jsonl", manual=True)
    answer = batch_trigger.handler({"Records": [manual]})
    assert answer == {"started": [], "skipped": ["prompts/user-uploads/u1/mine.jsonl"]}
    assert ecs.calls == []


def test_a_deleted_object_is_skipped(ecs: MotoEcs, uploads: Uploads) -> None:
    gone = s3_record("prompts/user-uploads/u1/gone.jsonl", uploads.bucket)
    assert batch_trigger.handler({"Records": [gone]})["skipped"] == [
        "prompts/user-uploads/u1/gone.jsonl"
    ]
    assert ecs.calls == []


def test_a_retried_event_asks_for_the_same_task(ecs: MotoEcs, uploads: Uploads) -> None:
    record = uploads.put("prompts/user-uploads/u1/p.jsonl")
    batch_trigger.handler({"Records": [record]})
    batch_trigger.handler({"Records": [record]})
    first, second = (call["clientToken"] for call in ecs.calls)
    assert first == second
    again = uploads.put("prompts/user-uploads/u1/p.jsonl".replace("p.", "q."))
    batch_trigger.handler({"Records": [again]})
    assert ecs.calls[-1]["clientToken"] != first


def test_failures_raise_after_every_record_was_tried(ecs: MotoEcs, uploads: Uploads) -> None:
    spot = uploads.put("prompts/user-uploads/u1/no-capacity.jsonl")
    throttled = uploads.put("prompts/user-uploads/u1/throttled.jsonl")
    fine = uploads.put("prompts/user-uploads/u1/fine.jsonl")
    ecs.answers["prompts/user-uploads/u1/no-capacity.jsonl"] = {
        "tasks": [],
        "failures": [
            {
                "arn": "arn:aws:ecs:us-east-1:123456789012:cluster/x",
                "reason": "Capacity is unavailable at this time.",
            }
        ],
    }
    ecs.answers["prompts/user-uploads/u1/throttled.jsonl"] = ClientError(
        {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "RunTask"
    )
    with pytest.raises(batch_trigger.BatchTriggerFailed) as failed:
        batch_trigger.handler({"Records": [spot, throttled, fine]})
    message = str(failed.value)
    assert "2 of 3" in message and "Capacity is unavailable" in message and "Throttling" in message
    assert len(ecs.calls) == 3  # the third record was still started
    assert ecs.list_tasks(cluster="textnlp-test")["taskArns"]


def test_a_task_started_before_with_the_same_token_counts_as_started(
    ecs: MotoEcs, uploads: Uploads
) -> None:
    record = uploads.put("prompts/user-uploads/u1/p.jsonl")
    existing = "arn:aws:ecs:us-east-1:123456789012:task/textnlp-test/abc"
    ecs.answers["prompts/user-uploads/u1/p.jsonl"] = ClientError(
        {
            "Error": {"Code": "ConflictException", "Message": "token in use"},
            "resourceIds": [existing],
        },
        "RunTask",
    )
    assert batch_trigger.handler({"Records": [record]})["started"] == [existing]


def test_run_task_arguments_follow_the_design() -> None:
    environ = {name: f"{name.lower()}-1" for name in batch_trigger.CONFIG_VARIABLES}
    environ |= {"SUBNETS": "subnet-1, subnet-2", "SECURITY_GROUPS": "sg-1"}
    config = batch_trigger.TriggerConfig.from_environ(environ)
    upload = Upload("b", "prompts/user-uploads/u/p.csv", "etag")
    args = batch_trigger.run_task_arguments(config, upload)
    assert args["capacityProviderStrategy"] == [
        {"capacityProvider": "capacity_provider-1", "weight": 1}
    ]
    vpc = args["networkConfiguration"]["awsvpcConfiguration"]
    assert vpc["subnets"] == ["subnet-1", "subnet-2"] and vpc["securityGroups"] == ["sg-1"]
    assert args["overrides"]["containerOverrides"][0]["name"] == "container_name-1"
    assert args["clientToken"] == batch_trigger.client_token(upload)
    assert len(args["clientToken"]) <= 64 and args["startedBy"] == "textnlp-batch-trigger"


def test_a_missing_variable_is_named(
    ecs: MotoEcs, uploads: Uploads, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TASK_DEFINITION_ARN")
    with pytest.raises(RuntimeError, match="TASK_DEFINITION_ARN"):
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
    ecs: MotoEcs, event: dict[str, Any], missing: str
) -> None:
    with pytest.raises(ValueError, match=missing):
        batch_trigger.handler(event)
    assert ecs.calls == []


def test_uploads_carry_the_events_etag() -> None:
    record = s3_record("prompts/user-uploads/u/a.csv", "b", etag='"abc"')
    expected = Upload("b", "prompts/user-uploads/u/a.csv", "abc")
    assert uploads_in({"Records": [record]}) == [expected]
