"""Deployers for SQS queues, SNS topics and EventBridge rules (in moto).

A rule keeps its event pattern; its own targets (Lambda functions, state machines) are not
called by moto: the rehearsal adds one target, a "tap" queue, so that moto does the matching,
and `rehearsal.events` delivers what arrives there to the rule's targets as EventBridge would.
A scheduled rule keeps its schedule, which nothing fires but a journey step (`events.fire`).
"""

from __future__ import annotations

import json
from typing import Any

from rehearsal.deploy import DeployContext, Deployer
from rehearsal.names import short_hash
from rehearsal.template import Physical

_QUEUE_ATTRIBUTES = (
    "ContentBasedDeduplication", "DeduplicationScope", "DelaySeconds", "FifoQueue",
    "FifoThroughputLimit", "MaximumMessageSize", "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds", "VisibilityTimeout",
)
_KMS = ("KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds", "SqsManagedSseEnabled")
NOT_EMULATED_KMS = "KMS: encryption keys and their policies (queues, topics, bucket, secrets)"
TAP_PREFIX = "rehearsal-tap-"


def _attribute(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower()
    return str(value)


def deploy_queue(c: DeployContext) -> Physical:
    props = c.properties
    fifo = _attribute(props.get("FifoQueue", False)) == "true"
    name = props.get("QueueName") or c.generated_name(80, ".fifo" if fifo else "")
    attributes = {key: _attribute(props[key]) for key in _QUEUE_ATTRIBUTES if key in props}
    for key in ("RedrivePolicy", "RedriveAllowPolicy"):
        if key in props:
            attributes[key] = json.dumps(props[key])
    if any(key in props for key in _KMS):
        c.ledger.leave_out(NOT_EMULATED_KMS)
    sqs = c.client("sqs")
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return Physical(url, {"Arn": arn, "QueueName": name, "QueueUrl": url})


def deploy_topic(c: DeployContext) -> Physical:
    props = c.properties
    fifo = _attribute(props.get("FifoTopic", False)) == "true"
    name = props.get("TopicName") or c.generated_name(256, ".fifo" if fifo else "")
    attributes = {
        key: _attribute(props[key]) for key in ("FifoTopic", "ContentBasedDeduplication")
        if key in props
    }
    if "KmsMasterKeyId" in props:
        c.ledger.leave_out(NOT_EMULATED_KMS)
    sns = c.client("sns")
    arn = sns.create_topic(Name=name, Attributes=attributes)["TopicArn"]
    for subscription in props.get("Subscription", []):
        sns.subscribe(TopicArn=arn, Protocol=subscription["Protocol"],
                      Endpoint=subscription["Endpoint"])
    return Physical(arn, {"TopicArn": arn, "TopicName": name})


def deploy_subscription(c: DeployContext) -> Physical:
    props = c.properties
    answer = c.client("sns").subscribe(
        TopicArn=props["TopicArn"], Protocol=props["Protocol"], Endpoint=props["Endpoint"],
        Attributes={
            key: json.dumps(props[key]) if isinstance(props[key], dict) else _attribute(props[key])
            for key in ("FilterPolicy", "RawMessageDelivery", "RedrivePolicy") if key in props
        },
        ReturnSubscriptionArn=True,
    )
    return Physical(answer["SubscriptionArn"])


def deploy_rule(c: DeployContext) -> Physical:
    props = c.properties
    name = props.get("Name") or c.generated_name(64)
    bus = props.get("EventBusName") or "default"
    arn = f"arn:aws:events:{c.region}:{c.account}:rule/" + (
        name if bus == "default" else f"{bus}/{name}"
    )
    events = c.client("events")
    schedule = str(props.get("ScheduleExpression", ""))
    if "EventPattern" not in props and schedule:
        # moto keeps the rule; no clock fires it: a journey step does (`events.fire`).
        events.put_rule(Name=name, EventBusName=bus, ScheduleExpression=schedule,
                        State=props.get("State", "ENABLED"))
        c.ledger.leave_out(f"EventBridge's clock: the schedule {schedule} of rule {name} "
                           "(the journey fires its targets)")
        return Physical(name, {"Arn": arn})
    if "EventPattern" not in props:
        c.ledger.leave_out(f"EventBridge rules without a pattern or schedule (rule {name})")
        return Physical(name, {"Arn": arn})
    events.put_rule(
        Name=name, EventBusName=bus, EventPattern=json.dumps(props["EventPattern"]),
        State=props.get("State", "ENABLED"),
    )
    sqs = c.client("sqs")
    tap_url = sqs.create_queue(QueueName=TAP_PREFIX + short_hash(c.stack.name, c.logical_id))[
        "QueueUrl"
    ]
    tap_arn = sqs.get_queue_attributes(QueueUrl=tap_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    # The raw event: moto's S3 -> EventBridge path skips input transformers, so the rehearsal
    # applies each target's own Input/InputTransformer when it delivers (rehearsal.events).
    events.put_targets(Rule=name, EventBusName=bus,
                       Targets=[{"Id": "rehearsal-tap", "Arn": tap_arn}])
    return Physical(name, {"Arn": arn, "Rehearsal.TapQueueUrl": tap_url})


DEPLOYERS: dict[str, Deployer] = {
    "AWS::SQS::Queue": deploy_queue,
    "AWS::SNS::Topic": deploy_topic,
    "AWS::SNS::Subscription": deploy_subscription,
    "AWS::Events::Rule": deploy_rule,
}
