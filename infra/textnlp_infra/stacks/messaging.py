"""Design section 6, messaging: the FIFO generation queue and its DLQ, the batch queue, SNS."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from textnlp_infra.config import EnvConfig
from textnlp_infra.imports import imported_key
from textnlp_infra.stacks.security import SecurityStack


class MessagingStack(Stack):
    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig, security: SecurityStack,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        messaging = config.messaging
        key = imported_key(self, "MessagingKey", security.keys.messaging)
        encryption = {
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
        self.batch_queue = sqs.Queue(
            self, "BatchQueue",
            queue_name=config.resource_name("batch-queue"),
            visibility_timeout=Duration.seconds(messaging.batch_visibility_s),
            receive_message_wait_time=Duration.seconds(messaging.batch_receive_wait_s),
            # As designed: only the generation queue may use this queue as its dead-letter
            # target. (SQS pairs FIFO sources with FIFO DLQs, so in practice this closes the
            # batch queue to every redrive source.)
            redrive_allow_policy=sqs.RedriveAllowPolicy(
                redrive_permission=sqs.RedrivePermission.BY_QUEUE,
                source_queues=[self.generation_queue],
            ),
            **encryption,
        )
        self.job_notifications = sns.Topic(
            self, "JobNotifications",
            topic_name=f"{config.name}-job-notifications",
            display_name="TextNLP job notifications",
            master_key=key,
            enforce_ssl=True,
        )
