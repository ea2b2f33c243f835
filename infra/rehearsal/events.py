"""EventBridge rule targets: what moto matched into a rule's tap queue reaches the rule's
targets as EventBridge would deliver it.

For each event: the target's input (its own `Input`/`InputTransformer`), an invocation of the
target Lambda, retries up to the target's `RetryPolicy.MaximumRetryAttempts` when it fails, and
then the target's `DeadLetterConfig` queue with the error, in EventBridge's message attributes.
Targets that are no Lambda (a state machine) are recorded as not emulated.

Scheduled rules have no clock here: `fire` is the moment of a schedule, when a journey step
asks for it. Each target gets EventBridge's "Scheduled Event"; an ECS target's task is started
as the target's role (`rehearsal.ecs_target`), and a refused start goes to the target's
dead-letter queue at once (its retries would be refused alike).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rehearsal import ecs_target
from rehearsal.aws import MotoAws
from rehearsal.deploy import Deployed, Deployment
from rehearsal.event_input import target_input
from rehearsal.lambdas import LambdaService
from rehearsal.ledger import Ledger

#: EventBridge retries for 24 hours by default; without a RetryPolicy the rehearsal tries 3.
DEFAULT_ATTEMPTS = 3


@dataclass(frozen=True)
class Delivery:
    rule: str
    target: str
    input: Any
    attempts: int
    ok: bool
    error: str = ""
    dead_lettered_to: str = ""


class EventBridgeTargets:
    def __init__(self, deployment: Deployment, aws: MotoAws, lambdas: LambdaService,
                 ledger: Ledger) -> None:
        self._deployment = deployment
        self._aws = aws
        self._lambdas = lambdas
        self._ledger = ledger
        self.deliveries: list[Delivery] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        ledger.emulate("EventBridge delivery to rule targets: moto matches each rule's pattern "
                       "into a tap queue; the rehearsal builds the target's input, invokes the "
                       "Lambda, retries (RetryPolicy) and dead-letters (DeadLetterConfig); a "
                       "scheduled rule fires when a step asks: its ECS target's task is started "
                       "as the target's role (its trust and policies evaluated)")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="eventbridge", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once(wait_s=1)
            except Exception as exc:  # keep delivering; the journey sees missing deliveries
                self._ledger.leave_out(f"EventBridge delivery error: {exc}")
                time.sleep(1)

    def poll_once(self, wait_s: int = 0) -> None:
        for rule in self._deployment.deployed("AWS::Events::Rule"):
            tap = rule.physical.attributes.get("Rehearsal.TapQueueUrl")
            if not tap:
                continue
            sqs = self._aws.client("sqs", rule.stack.region)
            answer = sqs.receive_message(QueueUrl=tap, MaxNumberOfMessages=10,
                                         WaitTimeSeconds=wait_s)
            for message in answer.get("Messages", []):
                event = json.loads(message["Body"])
                for target in rule.properties.get("Targets", []):
                    self._deliver(rule, target, event)
                sqs.delete_message(QueueUrl=tap, ReceiptHandle=message["ReceiptHandle"])

    def _deliver(self, rule: Deployed, target: dict[str, Any], event: dict[str, Any]) -> None:
        arn = str(target.get("Arn", ""))
        rule_arn = str(rule.physical.attributes["Arn"])
        payload = target_input(target, event, rule_arn)
        if ":lambda:" not in arn:
            self._ledger.leave_out(f"EventBridge target {arn.split(':')[2]} of rule "
                                   f"{rule.physical.ref} (events only reach its tap queue)")
            return
        retries = target.get("RetryPolicy", {}).get("MaximumRetryAttempts")
        attempts = 1 + int(retries) if retries is not None else DEFAULT_ATTEMPTS
        error = ""
        for attempt in range(1, attempts + 1):
            invocation = self._lambdas.invoke(arn, payload)
            if invocation.ok:
                self._record(Delivery(str(rule.physical.ref), arn, payload, attempt, True))
                return
            error = invocation.error
            time.sleep(0.2 * attempt)
        dead_letter = target.get("DeadLetterConfig", {}).get("Arn", "")
        if dead_letter:
            self._dead_letter(rule, dead_letter, arn, event, error)
        self._record(Delivery(str(rule.physical.ref), arn, payload, attempts, False, error,
                              dead_letter))

    def scheduled_rules(self) -> list[Deployed]:
        return [rule for rule in self._deployment.deployed("AWS::Events::Rule")
                if rule.properties.get("ScheduleExpression")]

    def fire(self, rule: Deployed) -> list[str]:
        """The scheduled rule's moment, now: every target gets the scheduled event; returns
        the ARNs of the ECS tasks started (`RunTaskRefused` when one could not be)."""
        event = scheduled_event(rule)
        started: list[str] = []
        for target in rule.properties.get("Targets", []):
            if "EcsParameters" not in target:
                self._deliver(rule, target, event)
                continue
            arn = str(target.get("Arn", ""))
            payload = target_input(target, event, str(rule.physical.attributes["Arn"]))
            try:
                tasks = ecs_target.run_task(self._deployment, self._aws, rule, target, payload)
            except ecs_target.RunTaskRefused as exc:
                dead_letter = target.get("DeadLetterConfig", {}).get("Arn", "")
                if dead_letter:
                    self._dead_letter(rule, dead_letter, arn, event, f"RunTask: {exc}")
                self._record(Delivery(str(rule.physical.ref), arn, payload, 1, False, str(exc),
                                      dead_letter))
                raise
            self._record(Delivery(str(rule.physical.ref), arn, payload, 1, True))
            started += tasks
        return started

    def _dead_letter(self, rule: Deployed, queue_arn: str, target_arn: str,
                     event: dict[str, Any], error: str) -> None:
        queue = self._deployment.find("AWS::SQS::Queue", queue_arn)
        if queue is None:
            return
        code, _, message = error.partition(": ")
        attributes = {
            "RULE_ARN": rule.physical.attributes["Arn"], "TARGET_ARN": target_arn,
            "ERROR_CODE": code or "Unknown", "ERROR_MESSAGE": message[:256] or "error",
        }
        self._aws.client("sqs", rule.stack.region).send_message(
            QueueUrl=queue.physical.ref, MessageBody=json.dumps(event),
            MessageAttributes={k: {"DataType": "String", "StringValue": str(v)}
                               for k, v in attributes.items()},
        )

    def _record(self, delivery: Delivery) -> None:
        with self._lock:
            self.deliveries.append(delivery)

    def delivered(self) -> list[Delivery]:
        with self._lock:
            return list(self.deliveries)


def scheduled_event(rule: Deployed) -> dict[str, Any]:
    """What EventBridge sends a scheduled rule's targets."""
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
        "source": "aws.events", "account": rule.stack.account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "region": rule.stack.region,
        "resources": [str(rule.physical.attributes["Arn"])], "detail": {},
    }
