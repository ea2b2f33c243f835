"""Design section 6/7, batch orchestration with EventBridge and Step Functions.

1. An EventBridge rule turns S3 "Object Created" events under `prompts/user-uploads/` into the
   S3-notification shape the design's batch-trigger Lambda reads (`Records[].s3.bucket.name`,
   `Records[].s3.object.key`; the key arrives unencoded) and invokes it. The bucket publishes
   to EventBridge, which keeps the data stack free of references to later stacks.
2. A second rule watches the batch-processor tasks stop and starts a state machine that
   publishes the outcome (succeeded/failed, exit code, reason) to the job-notifications topic.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from textnlp_infra.config import EnvConfig
from textnlp_infra.constructs.storage import UPLOADS_PREFIX
from textnlp_infra.retention import retention_days

_S3_NOTIFICATION_SHAPE = {
    "Records": [{
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "bucket": {"name": events.EventField.from_path("$.detail.bucket.name")},
            "object": {
                "key": events.EventField.from_path("$.detail.object.key"),
                "size": events.EventField.from_path("$.detail.object.size"),
                # The object's version: the trigger's RunTask idempotency token includes it.
                "eTag": events.EventField.from_path("$.detail.object.etag"),
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


class BatchOrchestration(Construct):
    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig, cluster: ecs.ICluster,
        batch_family: str, topic: sns.ITopic, messaging_key: kms.IKey, logs_key: kms.IKey,
    ) -> None:
        super().__init__(scope, id_)
        exit_code = "$.detail.containers[0].exitCode"
        message = {
            "taskArn": sfn.JsonPath.string_at("$.detail.taskArn"),
            "stoppedReason": sfn.JsonPath.string_at("$.detail.stoppedReason"),
            "overrides": sfn.JsonPath.object_at("$.detail.overrides"),
        }

        def notify(id_: str, outcome: str) -> tasks.SnsPublish:
            return tasks.SnsPublish(
                self, id_,
                topic=topic,
                subject=f"TextNLP batch {outcome}",
                message=sfn.TaskInput.from_object({"outcome": outcome, **message}),
                message_attributes={
                    "outcome": tasks.MessageAttribute(value=outcome),
                },
                result_path=sfn.JsonPath.DISCARD,
            )

        succeeded = sfn.Condition.and_(
            sfn.Condition.is_present(exit_code), sfn.Condition.number_equals(exit_code, 0)
        )
        definition = (
            sfn.Choice(self, "ExitedCleanly")
            .when(succeeded, notify("NotifySucceeded", "succeeded").next(
                sfn.Succeed(self, "Done")))
            .otherwise(notify("NotifyFailed", "failed").next(
                sfn.Fail(self, "BatchFailed", error="BatchProcessorFailed",
                         cause="The batch-processor task stopped with an error")))
        )
        log_group = logs.LogGroup(
            self, "Logs",
            log_group_name=f"/aws/vendedlogs/states/{config.name}-batch-orchestration",
            retention=retention_days(config.compute.log_retention_days),
            encryption_key=logs_key,
        )
        self.state_machine = sfn.StateMachine(
            self, "StateMachine",
            state_machine_name=f"{config.name}-batch-orchestration",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            timeout=Duration.minutes(5),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL),
        )
        messaging_key.grant_encrypt_decrypt(self.state_machine)

        self.rule = events.Rule(
            self, "TaskStopped",
            rule_name=f"{config.name}-batch-task-stopped",
            description="Batch-processor tasks that stop, for notification",
            event_pattern=events.EventPattern(
                source=["aws.ecs"],
                detail_type=["ECS Task State Change"],
                detail={
                    "clusterArn": [cluster.cluster_arn],
                    "group": [f"family:{batch_family}"],
                    "lastStatus": ["STOPPED"],
                },
            ),
        )
        self.rule.add_target(targets.SfnStateMachine(self.state_machine))
