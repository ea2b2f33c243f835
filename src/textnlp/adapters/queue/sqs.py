"""SQS queues through boto3, with the design's settings.

``textnlp-generation-queue.fifo``: FIFO, content-based deduplication, visibility 3600 s,
redrive to ``textnlp-dlq.fifo`` after 3 receives. ``textnlp-batch-queue``: standard,
visibility 43200 s, long polling 20 s (a standard queue cannot redrive into a FIFO DLQ, so
its dead-letter queue is ``textnlp-batch-dlq``). ``textnlp-validation-queue``: standard, with
``textnlp-validation-dlq``. Workers receive with the short visibility of the settings and
extend it while they work. In AWS the infrastructure code creates the queues;
``ensure_sqs_queues`` creates the same ones for moto and development accounts.

Every call goes through ``_call``: an SQS that cannot be reached (refused, timed out, 5xx,
throttled, once botocore's own retries are spent) is ``ServiceUnavailable(dependency="queue")``.

SQS cannot lower a message's ``ApproximateReceiveCount``, so ``hand_back`` (a worker stopping,
or waiting out an outage, gives a job back without it counting) sends a fresh copy and deletes
the delivery: the copy's count starts at zero. That is why the worker decides that a job has
failed for good on the job's own stored attempts, not on the receive count alone.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from textnlp.adapters.aws_outage import aws_unavailable
from textnlp.adapters.queue.base import QueueMessage
from textnlp.config import Settings
from textnlp.errors import ConfigError

#: Time a dead-lettered message is left alone after ``dead_letters`` returned it.
DLQ_REVIEW_S = 3600


class SqsQueue:
    """One SQS queue and its dead-letter queue."""

    def __init__(
        self,
        client: Any,
        name: str,
        *,
        dead_letter_queue: str,
        max_receives: int = 3,
        visibility_timeout_s: int = 3600,
        wait_time_s: int = 20,
    ) -> None:
        self.client = client
        self.name = name
        self.dead_letter_queue = dead_letter_queue
        self.max_receives = max_receives
        self.visibility_timeout_s = visibility_timeout_s
        self.wait_time_s = wait_time_s
        self.fifo = name.endswith(".fifo")
        self._urls: dict[str, str] = {}

    def _call(self, operation: str, **kwargs: Any) -> Any:
        with aws_unavailable("queue", "the queue (SQS)"):
            return getattr(self.client, operation)(**kwargs)

    def _url(self, name: str) -> str:
        if name not in self._urls:
            try:
                self._urls[name] = self._call("get_queue_url", QueueName=name)["QueueUrl"]
            except self.client.exceptions.QueueDoesNotExist:
                raise ConfigError(f"SQS queue {name} does not exist") from None
        return self._urls[name]

    def send(
        self, body: str, *, group_id: str, dedup_id: str, trace_header: str | None = None
    ) -> str:
        return self._send(
            self.name, body, group_id=group_id, dedup_id=dedup_id, trace_header=trace_header
        )

    def _send(
        self,
        queue: str,
        body: str,
        *,
        group_id: str,
        dedup_id: str,
        trace_header: str | None = None,
    ) -> str:
        kwargs: dict[str, Any] = {"QueueUrl": self._url(queue), "MessageBody": body}
        if queue.endswith(".fifo"):
            kwargs.update(MessageGroupId=group_id, MessageDeduplicationId=dedup_id)
        if trace_header:  # X-Ray's own attribute: the consumer's segment joins the trace
            kwargs["MessageSystemAttributes"] = {
                "AWSTraceHeader": {"DataType": "String", "StringValue": trace_header}
            }
        return str(self._call("send_message", **kwargs)["MessageId"])

    def receive(self, max_messages: int = 1, wait_s: float = 0.0) -> list[QueueMessage]:
        return self._receive(self.name, max_messages, wait_s, self.visibility_timeout_s)

    def _receive(
        self, queue: str, max_messages: int, wait_s: float, visibility: int
    ) -> list[QueueMessage]:
        answer = self._call(
            "receive_message",
            QueueUrl=self._url(queue),
            MaxNumberOfMessages=max(1, min(10, max_messages)),
            WaitTimeSeconds=int(min(wait_s, self.wait_time_s)),
            VisibilityTimeout=visibility,
            MessageSystemAttributeNames=[
                "ApproximateReceiveCount",
                "MessageGroupId",
                "AWSTraceHeader",
            ],
        )
        return [
            QueueMessage(
                id=m["MessageId"],
                body=m["Body"],
                receipt=m["ReceiptHandle"],
                receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
                queue=queue,
                group_id=str(m.get("Attributes", {}).get("MessageGroupId", "")),
                trace_header=m.get("Attributes", {}).get("AWSTraceHeader"),
            )
            for m in answer.get("Messages", [])
        ]

    def extend(self, message: QueueMessage, timeout_s: int) -> None:
        self._visibility(message, timeout_s)

    def release(self, message: QueueMessage, delay_s: int = 0) -> None:
        self._visibility(message, delay_s)  # at most 43,200 s: settings bound it

    def hand_back(self, message: QueueMessage) -> None:
        # Copy first, delete second: a failure in between leaves a duplicate, never a loss.
        # A new deduplication id, or a FIFO queue would drop the copy as a repeat.
        self._send(
            message.queue,
            message.body,
            group_id=message.group_id or message.id,
            dedup_id=uuid.uuid4().hex,
        )
        self.delete(message)

    def _visibility(self, message: QueueMessage, timeout_s: int) -> None:
        self._call(
            "change_message_visibility",
            QueueUrl=self._url(message.queue),
            ReceiptHandle=message.receipt,
            VisibilityTimeout=timeout_s,
        )

    def delete(self, message: QueueMessage) -> None:
        self._call(
            "delete_message", QueueUrl=self._url(message.queue), ReceiptHandle=message.receipt
        )

    def dead_letter(self, message: QueueMessage, reason: str) -> None:
        # Send first, delete second: a crash in between leaves a duplicate, never a loss.
        self._send(
            self.dead_letter_queue,
            json.dumps({"reason": reason[:2000], "body": message.body}),
            group_id="dead-letters",
            dedup_id=message.id,
        )
        self.delete(message)

    def dead_letters(self, max_messages: int = 10) -> list[QueueMessage]:
        return self._receive(self.dead_letter_queue, max_messages, 0, DLQ_REVIEW_S)

    def close(self) -> None:
        """The boto3 client needs no closing beyond garbage collection."""


def ensure_sqs_queues(client: Any, settings: Settings) -> None:
    """Create the design's queues (idempotent); returns nothing, raises on conflicting ones."""
    q = settings.queue
    dlq_url = client.create_queue(
        QueueName=q.dead_letter_queue,
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    batch_dlq_url = client.create_queue(QueueName=q.batch_dead_letter_queue)["QueueUrl"]
    validation_dlq_url = client.create_queue(QueueName=q.validation_dead_letter_queue)["QueueUrl"]

    def arn(url: str) -> str:
        attrs = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return str(attrs["Attributes"]["QueueArn"])

    client.create_queue(
        QueueName=q.generation_queue,
        Attributes={
            "FifoQueue": "true",
            "ContentBasedDeduplication": "true",
            "VisibilityTimeout": str(q.visibility_timeout_s),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": arn(dlq_url), "maxReceiveCount": q.max_receives}
            ),
        },
    )
    for name, dead_letters in (
        (q.batch_queue, batch_dlq_url),
        (q.validation_queue, validation_dlq_url),
    ):
        client.create_queue(
            QueueName=name,
            Attributes={
                "ReceiveMessageWaitTimeSeconds": str(q.wait_time_s),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": arn(dead_letters), "maxReceiveCount": q.max_receives}
                ),
            },
        )
