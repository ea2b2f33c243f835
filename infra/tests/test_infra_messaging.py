"""Design section 6: queues, DLQ, topic."""

from __future__ import annotations

from aws_cdk.assertions import Match

from infra_assembly import Assembly


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
    template = assembly.template("Serverless")
    template.resource_count_is("AWS::StepFunctions::StateMachine", 1)
    template.has_resource_properties("AWS::Events::Rule", {
        "EventPattern": Match.object_like({"source": ["aws.ecs"]}),
    })
