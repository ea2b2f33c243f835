"""The journey's view of the batch state machine: its executions, the queue and topic its
definition names, and a tap on that topic.

Everything is read from the deployed definition (the `sqs:sendMessage` state's queue, the
`sns:publish` states' topic), so the checks follow what the machine really addresses.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from rehearsal.deploy import Deployed
from rehearsal.journey import Session, StepFailed

SEND_MESSAGE = "arn:aws:states:::sqs:sendMessage"
PUBLISH = "arn:aws:states:::sns:publish"


@dataclass(frozen=True)
class BatchMachine:
    deployed: Deployed
    client: Any
    definition: dict[str, Any]

    @classmethod
    def of(cls, session: Session) -> BatchMachine:
        machines = session.rehearsed.deployment.deployed("AWS::StepFunctions::StateMachine")
        if len(machines) != 1:
            raise StepFailed(f"{len(machines)} state machines deployed, expected the batch one")
        (deployed,) = machines
        client = session.rehearsed.aws.client("stepfunctions", deployed.stack.region)
        definition = json.loads(str(deployed.properties["DefinitionString"]))
        return cls(deployed, client, definition)

    @property
    def arn(self) -> str:
        return str(self.deployed.physical.ref)

    @property
    def name(self) -> str:
        return str(self.deployed.physical.attributes["Name"])

    def _parameter(self, resource: str, name: str) -> str:
        found = {str(state["Parameters"][name]) for state in self.definition["States"].values()
                 if str(state.get("Resource", "")).endswith(resource.rsplit(":::", 1)[-1])}
        if len(found) != 1:
            raise StepFailed(f"the batch machine's {resource} states name {sorted(found)}")
        return found.pop()

    @property
    def dead_letter_queue_url(self) -> str:
        return self._parameter(SEND_MESSAGE, "QueueUrl")

    @property
    def topic_arn(self) -> str:
        return self._parameter(PUBLISH, "TopicArn")

    def finished_execution(self, key: str, timeout_s: float) -> dict[str, Any]:
        """The execution whose input names `key`, once it stopped running."""
        deadline = time.monotonic() + timeout_s
        seen: dict[str, Any] = {}
        while time.monotonic() < deadline:
            for summary in self.client.list_executions(stateMachineArn=self.arn)["executions"]:
                described = self.client.describe_execution(executionArn=summary["executionArn"])
                if json.loads(described.get("input") or "{}").get("key") != key:
                    continue
                seen = described
                if described["status"] != "RUNNING":
                    return dict(described)
            time.sleep(0.5)
        state = seen.get("status", "no execution")
        raise StepFailed(f"the batch machine's execution for {key}: {state} after {timeout_s}s")

    def failed_states(self, execution_arn: str) -> list[str]:
        """What the execution's history says failed, for a step's message."""
        events = self.client.get_execution_history(executionArn=execution_arn)["events"]
        return [
            f"{event['type']}: {json.dumps(details)[:300]}"
            for event in events
            for name, details in event.items()
            if name.endswith("EventDetails") and "Failed" in event["type"]
        ]


class TopicTap:
    """An SQS queue subscribed to a topic (raw delivery), to read what was published."""

    def __init__(self, session: Session, topic_arn: str, region: str) -> None:
        self.sqs = session.rehearsed.aws.client("sqs", region)
        sns = session.rehearsed.aws.client("sns", region)
        self.url = self.sqs.create_queue(QueueName=f"rehearsal-topic-{uuid.uuid4().hex[:8]}")[
            "QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(
            QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn,
                      Attributes={"RawMessageDelivery": "true"})
        self.received: list[dict[str, Any]] = []

    def wait_for(self, outcome: str, key: str, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for message in self._receive():
                if message.get("outcome") == outcome and message.get("key") == key:
                    return message
            time.sleep(0.5)
        raise StepFailed(f"no '{outcome}' notification for {key} on the job topic "
                         f"(got {[m.get('outcome') for m in self.received]})")

    def _receive(self) -> list[dict[str, Any]]:
        answer = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10)
        for message in answer.get("Messages", []):
            self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
            try:
                self.received.append(json.loads(message["Body"]))
            except ValueError:
                continue
        return self.received


def dead_lettered(session: Session, queue_url: str, key: str, region: str) -> dict[str, Any]:
    """The dead-letter message naming `key`, read from moto's queue itself: the workers'
    dead-letter sweep may hold it invisible for an hour."""
    from moto.sqs.models import sqs_backends

    name = queue_url.rstrip("/").rsplit("/", 1)[-1]
    queue = sqs_backends[session.rehearsed.aws.account][region].get_queue(name)
    for message in list(queue._messages):
        try:
            body = json.loads(message.body)
        except ValueError:
            continue
        if isinstance(body, dict) and body.get("key") == key:
            return body
    raise StepFailed(f"the batch dead-letter queue {name} holds nothing for {key}")
