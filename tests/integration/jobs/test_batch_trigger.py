"""The batch trigger on S3 event shapes from the AWS documentation, against moto's ECS."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.jobs.conftest import aws_client
from textnlp.lambdas import batch_trigger


def s3_record(key: str, bucket: str = "textnlp-dev") -> dict[str, Any]:
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
            "object": {"key": key, "size": 1024, "eTag": "d41d8cd98f00b204e9800998ecf8427e"},
        },
    }


class MotoEcs:
    """moto's ECS client, recording ``run_task`` calls.

    moto 5.2 fails on awsvpc ``networkConfiguration`` (``NetworkInterface`` has no
    ``private_dns_name``), so that one argument is recorded and checked, not sent.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[dict[str, Any]] = []

    def run_task(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        sent = {k: v for k, v in kwargs.items() if k != "networkConfiguration"}
        return self.client.run_task(**sent)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


@pytest.fixture
def ecs(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> Any:
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
    for name, value in {
        "CLUSTER_ARN": cluster,
        "TASK_DEFINITION_ARN": task,
        "CONTAINER_NAME": "batch-processor",
        "CAPACITY_PROVIDER": "FARGATE_SPOT",
        "SUBNETS": f"{subnets[0]}, {subnets[1]}",
        "SECURITY_GROUPS": group,
    }.items():
        monkeypatch.setenv(name, value)
    recording = MotoEcs(client)
    monkeypatch.setattr(batch_trigger, "_ecs", recording)
    return recording


def test_keys_decoded_only_when_encoded() -> None:
    assert batch_trigger.decode_key("prompts/user-uploads/u/my+file%282%29.csv") == (
        "prompts/user-uploads/u/my file(2).csv"
    )
    assert batch_trigger.decode_key("prompts/user-uploads/u/plain name.csv") == (
        "prompts/user-uploads/u/plain name.csv"
    )


def test_starts_one_task_per_upload_and_skips_the_rest(ecs: Any) -> None:
    event = {
        "Records": [
            s3_record("prompts/user-uploads/u1/reviews+2026.jsonl"),
            s3_record("generated/2026/11/27/out.jsonl"),
            s3_record("prompts/user-uploads/u1/"),
            {"eventSource": "aws:s3"},
            s3_record("prompts/user-uploads/u2/plain name.csv"),
        ]
    }
    answer = batch_trigger.handler(event)
    assert len(answer["started"]) == 2 and answer["failures"] == []
    tasks = ecs.describe_tasks(cluster="textnlp-test", tasks=answer["started"])["tasks"]
    overrides = [
        {e["name"]: e["value"] for e in t["overrides"]["containerOverrides"][0]["environment"]}
        for t in tasks
    ]
    assert sorted(o["S3_KEY"] for o in overrides) == [
        "prompts/user-uploads/u1/reviews 2026.jsonl",
        "prompts/user-uploads/u2/plain name.csv",
    ]
    assert {o["S3_BUCKET"] for o in overrides} == {"textnlp-dev"}
    assert all(t["capacityProviderName"] == "FARGATE_SPOT" for t in tasks)
    network = ecs.calls[0]["networkConfiguration"]["awsvpcConfiguration"]
    assert len(network["subnets"]) == 2 and network["assignPublicIp"] == "DISABLED"


def test_run_task_arguments_follow_the_design(ecs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUBNETS", "subnet-1, subnet-2")
    monkeypatch.setenv("SECURITY_GROUPS", "sg-1")
    args = batch_trigger.run_task_arguments("b", "prompts/user-uploads/u/p.csv")
    assert args["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    vpc = args["networkConfiguration"]["awsvpcConfiguration"]
    assert vpc["subnets"] == ["subnet-1", "subnet-2"] and vpc["securityGroups"] == ["sg-1"]
    assert args["overrides"]["containerOverrides"][0]["name"] == "batch-processor"


def test_event_without_records_is_skipped(ecs: Any) -> None:
    assert batch_trigger.handler({"detail-type": "Object Created"}) == {
        "started": [],
        "failures": [],
    }
