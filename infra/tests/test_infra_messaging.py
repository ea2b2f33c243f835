"""Design section 6: queues, DLQ, topic."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from aws_cdk.assertions import Match, Template

from infra_assembly import Assembly
from textnlp_infra.app import build_app
from textnlp_infra.config import for_environment


def test_generation_queue_and_dlq(assembly: Assembly) -> None:
    template = assembly.template("Messaging")
    template.has_resource_properties("AWS::SQS::Queue", {
        "QueueName": "textnlp-generation-queue.fifo", "FifoQueue": True,
        "ContentBasedDeduplication": True, "VisibilityTimeout": 3600,
        "MessageRetentionPeriod": 1209600,
        "RedrivePolicy": {"deadLetterTargetArn": Match.any_value(), "maxReceiveCount": 3},
    })
    template.has_resource_properties("AWS::SQS::Queue", {
        "QueueName": "textnlp-dlq.fifo", "FifoQueue": True,
    })


def test_batch_queue(assembly: Assembly) -> None:
    assembly.template("Messaging").has_resource_properties("AWS::SQS::Queue", {
        "QueueName": "textnlp-batch-queue", "VisibilityTimeout": 43200,
        "ReceiveMessageWaitTimeSeconds": 20,
        "RedriveAllowPolicy": {"redrivePermission": "byQueue",
                               "sourceQueueArns": [Match.any_value()]},
    })


def test_everything_is_encrypted(assembly: Assembly) -> None:
    for section in ("Messaging", "Serverless", "Monitoring"):
        for queue in assembly.resources(section, "AWS::SQS::Queue").values():
            assert "KmsMasterKeyId" in queue["Properties"]
        for topic in assembly.resources(section, "AWS::SNS::Topic").values():
            assert "KmsMasterKeyId" in topic["Properties"]


def test_orchestration(assembly: Assembly) -> None:
    # What the machine does: test_infra_orchestration.py.
    assembly.template("Serverless").resource_count_is("AWS::StepFunctions::StateMachine", 1)


def test_the_deployers_context_reaches_the_stacks(tmp_path: Path) -> None:
    """Topic subscriptions and the Owner tag from `cdk deploy -c ...`."""
    # A synthesis of its own (with the deployer's context); no AWS variable leaks in.
    saved = {key: os.environ.pop(key) for key in list(os.environ) if key.startswith("AWS_")}
    try:
        _synthesise_with_subscriptions(tmp_path)
    finally:
        os.environ.update(saved)


def _synthesise_with_subscriptions(tmp_path: Path) -> None:
    app, stacks = build_app("production", outdir=str(tmp_path), context={
        "alarmEmails": "oncall@example.com,lead@example.com",
        "jobNotificationUrls": "https://hooks.example.com/textnlp",
        "owner": "data-platform@corp.example",  # `cdk deploy -c owner=...` (it was dropped)
    })
    app.synth()
    queue = Template.from_stack(stacks["Messaging"]).find_resources("AWS::SQS::Queue")
    for resource in queue.values():
        tags = {t["Key"]: t["Value"] for t in resource["Properties"]["Tags"]}
        assert tags["Owner"] == "data-platform@corp.example"
    alarms = Template.from_stack(stacks["Monitoring"])
    alarms.resource_count_is("AWS::SNS::Subscription", 2)
    alarms.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "oncall@example.com"}
    )
    Template.from_stack(stacks["Messaging"]).has_resource_properties(
        "AWS::SNS::Subscription",
        {"Protocol": "https", "Endpoint": "https://hooks.example.com/textnlp"},
    )


def test_job_notifications_must_be_https() -> None:
    with pytest.raises(ValueError, match="https://"):
        for_environment("production", {"jobNotificationUrls": "http://hooks.example.com/x"})
