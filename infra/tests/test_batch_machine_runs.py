"""The synthesised batch state machine, run by moto's ASL interpreter (with the rehearsal's
completion of its ECS `.sync` integration): a run that exits 0, one that fails (batch DLQ and
topic), and one interrupted by Spot (run again). The tasks' containers are not started here:
the test stops each task with the outcome it needs (the rehearsal runs the real command)."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from infra_assembly import Assembly
from rehearsal.aws import MotoAws
from rehearsal.ledger import Ledger
from rehearsal.state_machines import EcsIntegration, StoppedTask
from test_infra_orchestration import state_machine

REGION = "us-east-1"


@dataclass
class Machine:
    aws: MotoAws
    arn: str
    cluster: str
    dead_letters: str
    notifications: str
    stopped: dict[str, StoppedTask]

    def client(self, service: str) -> Any:
        return self.aws.client(service, REGION)

    def start(self, key: str) -> str:
        answer = self.client("stepfunctions").start_execution(
            stateMachineArn=self.arn, name=uuid.uuid4().hex,
            input=json.dumps({"bucket": "textnlp-production", "key": key, "etag": "e1"}))
        return str(answer["executionArn"])

    def stop_next_task(self, outcome: StoppedTask) -> dict[str, Any]:
        """Waits for the machine's next task, stops it with `outcome`; its description."""
        ecs = self.client("ecs")
        for _ in range(40):
            fresh = [arn for arn in ecs.list_tasks(cluster=self.cluster)["taskArns"]
                     if arn not in self.stopped]
            if fresh:
                self.stopped[fresh[0]] = outcome
                ecs.stop_task(cluster=self.cluster, task=fresh[0], reason="test")
                (task,) = ecs.describe_tasks(cluster=self.cluster, tasks=fresh)["tasks"]
                return dict(task)
            time.sleep(0.25)
        raise AssertionError("the machine started no task")

    def finished(self, execution: str) -> dict[str, Any]:
        client = self.client("stepfunctions")
        for _ in range(40):
            described = client.describe_execution(executionArn=execution)
            if described["status"] != "RUNNING":
                return dict(described)
            time.sleep(0.25)
        raise AssertionError(f"{execution} still runs")

    def received(self, queue_url: str) -> list[dict[str, Any]]:
        answer = self.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in answer.get("Messages", [])]


def _resolved(body: Any, values: dict[str, str]) -> str:
    """The definition with its template references replaced by what moto created."""
    separator, parts = body["Fn::Join"]
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        reference = json.dumps(part)
        (value,) = [v for marker, v in values.items() if marker in reference]
        out.append(value)
    return str(separator).join(out)


@pytest.fixture(scope="module")
def machine(assembly: Assembly) -> Iterator[Machine]:
    saved = os.environ.get("MOTO_PORT")
    aws = MotoAws()
    aws.start()
    try:
        stopped: dict[str, StoppedTask] = {}
        EcsIntegration(stopped.get, Ledger()).install()
        ec2, ecs = aws.client("ec2", REGION), aws.client("ecs", REGION)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.11.0/24")["Subnet"]["SubnetId"]
        group = ec2.create_security_group(GroupName="api", Description="api", VpcId=vpc)
        cluster = ecs.create_cluster(clusterName="textnlp-production")["cluster"]["clusterArn"]
        ecs.register_task_definition(
            family="textnlp-batch-processor", networkMode="awsvpc", cpu="1024", memory="2048",
            requiresCompatibilities=["FARGATE"], containerDefinitions=[{
                "name": "batch-processor", "image": "textnlp-api", "memoryReservation": 512}])
        sqs = aws.client("sqs", REGION)
        dead_letters = sqs.create_queue(QueueName="textnlp-batch-dlq")["QueueUrl"]
        notifications = sqs.create_queue(QueueName="notifications")["QueueUrl"]
        topic = aws.client("sns", REGION).create_topic(Name="jobs")["TopicArn"]
        aws.client("sns", REGION).subscribe(
            TopicArn=topic, Protocol="sqs", Attributes={"RawMessageDelivery": "true"},
            Endpoint=sqs.get_queue_attributes(QueueUrl=notifications, AttributeNames=[
                "QueueArn"])["Attributes"]["QueueArn"])
        definition = _resolved(state_machine(assembly)[1]["DefinitionString"], {
            "AWS::Partition": "aws", "Cluster": cluster, "Subnet": subnet,
            "ApiSg": group["GroupId"], "BatchDeadLetterQueue": dead_letters,
            "JobNotifications": topic,
        })
        arn = aws.client("stepfunctions", REGION).create_state_machine(
            name="batch", definition=definition,
            roleArn="arn:aws:iam::123456789012:role/batch")["stateMachineArn"]
        yield Machine(aws, arn, cluster, dead_letters, notifications, stopped)
    finally:
        aws.stop()
        if saved is None:
            os.environ.pop("MOTO_PORT", None)
        else:
            os.environ["MOTO_PORT"] = saved


def test_a_run_that_exits_0_succeeds_and_says_so(machine: Machine) -> None:
    key = "prompts/user-uploads/u1/ok.jsonl"
    execution = machine.start(key)
    task = machine.stop_next_task(StoppedTask({"batch-processor": 0}))
    overrides = task["overrides"]["containerOverrides"][0]
    assert overrides["name"] == "batch-processor"
    assert {e["name"]: e["value"] for e in overrides["environment"]} == {
        "S3_BUCKET": "textnlp-production", "S3_KEY": key}
    finished = machine.finished(execution)
    assert finished["status"] == "SUCCEEDED"
    assert json.loads(finished["output"])["task"]["taskArn"] == task["taskArn"]
    (notice,) = machine.received(machine.notifications)
    assert (notice["outcome"], notice["key"]) == ("succeeded", key)


def test_a_failed_run_goes_to_the_dead_letter_queue_and_the_topic(machine: Machine) -> None:
    key = "prompts/user-uploads/no-owner.jsonl"
    execution = machine.start(key)
    machine.stop_next_task(StoppedTask({"batch-processor": 2}))
    assert machine.finished(execution)["status"] == "FAILED"
    (letter,) = machine.received(machine.dead_letters)
    assert (letter["key"], letter["error"]) == (key, "States.TaskFailed")
    assert json.loads(letter["cause"])["Containers"] == [
        {"Name": "batch-processor", "ExitCode": 2}]
    (notice,) = machine.received(machine.notifications)
    assert (notice["outcome"], notice["key"], notice["execution"]) == ("failed", key, execution)


def test_a_spot_interruption_runs_the_task_again(machine: Machine) -> None:
    key = "prompts/user-uploads/u1/spot.jsonl"
    execution = machine.start(key)
    first = machine.stop_next_task(StoppedTask({"batch-processor": 143}, "SpotInterruption"))
    second = machine.stop_next_task(StoppedTask({"batch-processor": 0}))
    assert second["taskArn"] != first["taskArn"]
    finished = machine.finished(execution)
    assert finished["status"] == "SUCCEEDED"
    assert json.loads(finished["output"])["spotReruns"] == 1
    assert machine.received(machine.dead_letters) == []
