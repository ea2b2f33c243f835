"""Design section 6/7, the upload trigger: an EventBridge rule turns S3 "Object Created"
events under `prompts/user-uploads/` into the S3-notification shape the design's batch-trigger
Lambda reads (`Records[].s3.bucket.name`, `Records[].s3.object.key`; the key arrives unencoded,
and each record says so: `upload_events.KEY_ENCODING_FIELD`)
and invokes it. The bucket publishes to EventBridge, which keeps the data stack free of
references to later stacks. The Lambda starts the batch state machine (`batch_machine`).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from textnlp.lambdas.upload_events import KEY_ENCODING_FIELD, RAW_KEY

from textnlp_infra.config import EnvConfig
from textnlp_infra.constructs.storage import UPLOADS_PREFIX

_S3_NOTIFICATION_SHAPE = {
    "Records": [{
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "bucket": {"name": events.EventField.from_path("$.detail.bucket.name")},
            "object": {
                "key": events.EventField.from_path("$.detail.object.key"),
                "size": events.EventField.from_path("$.detail.object.size"),
                # The object's version: the trigger's execution name includes it.
                "eTag": events.EventField.from_path("$.detail.object.etag"),
                # EventBridge does not URL-encode the key, as S3 notifications do.
                KEY_ENCODING_FIELD: RAW_KEY,
            },
        },
    }]
}


class UploadTrigger(Construct):
    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig, function: lambda_.IFunction,
        dead_letter_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, id_)
        self.rule = events.Rule(
            self, "Rule",
            rule_name=f"{config.name}-user-uploads",
            description=f"New objects under {UPLOADS_PREFIX} start a batch",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [config.bucket_name]},
                    "object": {"key": [{"prefix": UPLOADS_PREFIX}]},
                },
            ),
        )
        self.rule.add_target(targets.LambdaFunction(
            function,
            event=events.RuleTargetInput.from_object(_S3_NOTIFICATION_SHAPE),
            dead_letter_queue=dead_letter_queue,
            retry_attempts=3,
            max_event_age=Duration.hours(6),
        ))
