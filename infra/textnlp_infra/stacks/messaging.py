"""Design section 6, messaging: the FIFO generation queue and its DLQ, the batch queue and its
DLQ, the validation queue and its DLQ, SNS.

The batch and validation queues are standard queues, so their dead-letter queues are standard
too (SQS pairs a FIFO source with a FIFO DLQ only). Every queue's name reaches the containers
under the app's own setting names (`queue_names`).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from textnlp_infra.config import EnvConfig
from textnlp_infra.imports import imported_key
from textnlp_infra.stacks.security import SecurityStack


class MessagingStack(Stack):
    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig, security: SecurityStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        messaging = config.messaging
        key = imported_key(self, "MessagingKey", security.keys.messaging)
        encryption: dict[str, Any] = {
            "encryption": sqs.QueueEncryption.KMS,
            "encryption_master_key": key,
            "data_key_reuse": Duration.minutes(5),
            "enforce_ssl": True,
        }
        self.dead_letter_queue = sqs.Queue(
            self, "DeadLetterQueue",
            queue_name=config.resource_name("dlq.fifo"),
            fifo=True,
            # A job stays inspectable in the DLQ as long as SQS allows.
            retention_period=Duration.seconds(messaging.generation_retention_s),
            **encryption,
        )
        self.generation_queue = sqs.Queue(
            self, "GenerationQueue",
            queue_name=config.resource_name("generation-queue.fifo"),
            fifo=True,
            content_based_deduplication=True,
            visibility_timeout=Duration.seconds(messaging.generation_visibility_s),
            retention_period=Duration.seconds(messaging.generation_retention_s),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=messaging.max_receive_count
            ),
            **encryption,
        )
        self.batch_dead_letter_queue = sqs.Queue(
            self, "BatchDeadLetterQueue",
            queue_name=config.resource_name("batch-dlq"),
            retention_period=Duration.seconds(messaging.generation_retention_s),
            **encryption,
        )
        self.batch_queue = sqs.Queue(
            self, "BatchQueue",
            queue_name=config.resource_name("batch-queue"),
            visibility_timeout=Duration.seconds(messaging.batch_visibility_s),
            receive_message_wait_time=Duration.seconds(messaging.batch_receive_wait_s),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.batch_dead_letter_queue, max_receive_count=messaging.max_receive_count
            ),
            # As designed: only the generation queue may use this queue as its dead-letter
            # target. (SQS pairs FIFO sources with FIFO DLQs, so in practice this closes the
            # batch queue to every redrive source.)
            redrive_allow_policy=sqs.RedriveAllowPolicy(
                redrive_permission=sqs.RedrivePermission.BY_QUEUE,
                source_queues=[self.generation_queue],
            ),
            **encryption,
        )
        self.validation_dead_letter_queue = sqs.Queue(
            self, "ValidationDeadLetterQueue",
            queue_name=config.resource_name("validation-dlq"),
            retention_period=Duration.seconds(messaging.generation_retention_s),
            **encryption,
        )
        self.validation_queue = sqs.Queue(
            self, "ValidationQueue",
            queue_name=config.resource_name("validation-queue"),
            visibility_timeout=Duration.seconds(messaging.validation_visibility_s),
            receive_message_wait_time=Duration.seconds(messaging.batch_receive_wait_s),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.validation_dead_letter_queue,
                max_receive_count=messaging.max_receive_count,
            ),
            **encryption,
        )
        #: Queue names by the app's `queue` setting that names them.
        self.queue_names = {
            "generation_queue": self.generation_queue.queue_name,
            "dead_letter_queue": self.dead_letter_queue.queue_name,
            "batch_queue": self.batch_queue.queue_name,
            "batch_dead_letter_queue": self.batch_dead_letter_queue.queue_name,
            "validation_queue": self.validation_queue.queue_name,
            "validation_dead_letter_queue": self.validation_dead_letter_queue.queue_name,
        }
        self.job_notifications = sns.Topic(
            self, "JobNotifications",
            topic_name=f"{config.name}-job-notifications",
            display_name="TextNLP job notifications",
            master_key=key,
            enforce_ssl=True,
        )
        # Finished and failed jobs (the app publishes `job.<state>` events) reach these.
        for url in config.job_notification_urls:
            self.job_notifications.add_subscription(subscriptions.UrlSubscription(url))
