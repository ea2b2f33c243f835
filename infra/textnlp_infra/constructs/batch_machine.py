"""Design sections 2, 6, 7 and 12: the state machine that runs the batch processor per upload.

The batch-trigger Lambda starts one execution per uploaded prompt file, with the input
`{"bucket", "key", "etag"}` (`textnlp.lambdas.batch_trigger.EXECUTION_INPUT_FIELDS`). Then:

1. `RunBatchProcessor` (`arn:aws:states:::ecs:runTask.sync`) runs the batch-processor task
   (`textnlp worker --queues batch --once`) on FARGATE_SPOT, the design's "Spot instances for
   batch processing", with `S3_BUCKET`/`S3_KEY` container overrides from the input, and waits
   until it stops. Step Functions fails the state (`States.TaskFailed`, the stopped task's
   description as the cause) when the task does not exit 0.
2. ECS API errors (throttling, `RunTask` answering `failures` such as no Spot capacity, which
   the integration raises as `AmazonECS.Unknown`) are retried with backoff.
3. A Spot interruption (the task's `StopCode` is `SpotInterruption`) runs the task again, up to
   `SPOT_RERUNS` times. The batch processor resumes: the upload's job is keyed by the object
   and its records by (job, index), so nothing is generated twice. Retry rules can only match
   error names, and ECS reports every stopped task as `States.TaskFailed`, so a Choice on the
   cause tells an interruption from a failure.
4. Any other failure, or interruptions beyond that, sends the upload (with the error and the
   execution) to the batch dead-letter queue for a person to look at (the workers' dead-letter
   sweep leaves messages that are no job messages where they are), publishes `failed` to the
   job-notifications topic, and fails the execution. A finished run publishes `succeeded`.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct
from textnlp.lambdas.batch_trigger import EXECUTION_INPUT_FIELDS

from textnlp_infra.checkov import skip_checks
from textnlp_infra.config import EnvConfig
from textnlp_infra.constructs.worker_services import BATCH_CAPACITY_PROVIDER, BATCH_CONTAINER
from textnlp_infra.retention import retention_days

#: Runs of the batch processor after Spot interruptions, beyond the first.
SPOT_RERUNS = 3
SPOT_INTERRUPTION = "SpotInterruption"
#: The container overrides: the variables the batch processor's CLI reads, and the execution
#: input field each one takes its value from.
OBJECT_VARIABLES = {"S3_BUCKET": "bucket", "S3_KEY": "key"}
#: The input fields that name the upload in the dead-letter message and the notifications.
OBJECT_FIELDS = tuple(OBJECT_VARIABLES.values())
#: ECS errors worth another try: API errors and `RunTask` answers that hold `failures`.
ECS_TRANSIENT_ERRORS = ["ECS.AmazonECSException", "AmazonECS.Unknown"]
#: Where a Catch puts the error (`Error`, `Cause`) in the state.
FAILURE_PATH = "$.failure"


def _state_of(spot_reruns: str | int) -> dict[str, object]:
    """The execution input plus the count of Spot reruns so far: each loop starts from this."""
    state: dict[str, object] = {f"{name}.$": f"$.{name}" for name in EXECUTION_INPUT_FIELDS}
    if isinstance(spot_reruns, int):
        state["spotReruns"] = spot_reruns
    else:
        state["spotReruns.$"] = spot_reruns
    return state


class BatchOrchestration(Construct):
    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig, cluster: ecs.ICluster,
        task_definition: ecs.TaskDefinition, subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup, topic: sns.ITopic, dead_letter_queue: sqs.IQueue,
        messaging_key: kms.IKey, logs_key: kms.IKey,
    ) -> None:
        super().__init__(scope, id_)
        task_timeout = Duration.seconds(config.messaging.batch_visibility_s)
        run = self._run_task(cluster, task_definition, subnets, security_group, task_timeout)
        notify_failed = self._notify("NotifyFailed", topic, "failed", {
            "error": f"{FAILURE_PATH}.Error",
        })
        failed = (
            tasks.SqsSendMessage(
                self, "SendToDeadLetterQueue",
                queue=dead_letter_queue,
                message_body=sfn.TaskInput.from_object({
                    "source": "batch-orchestration",
                    "execution": sfn.JsonPath.execution_id,
                    **{name: sfn.JsonPath.string_at(f"$.{name}") for name in OBJECT_FIELDS},
                    "error": sfn.JsonPath.string_at(f"{FAILURE_PATH}.Error"),
                    "cause": sfn.JsonPath.string_at(f"{FAILURE_PATH}.Cause"),
                }),
                result_path=sfn.JsonPath.DISCARD,
            )
            .next(notify_failed)
            .next(sfn.Fail(self, "BatchFailed", error="BatchProcessorFailed",
                           cause="The batch processor did not finish; see the batch DLQ"))
        )
        rerun = sfn.Pass(
            self, "CountSpotRerun", parameters=_state_of("States.MathAdd($.spotReruns, 1)"),
        ).next(run)
        interrupted = sfn.Condition.and_(
            sfn.Condition.string_matches(f"{FAILURE_PATH}.Cause", f"*{SPOT_INTERRUPTION}*"),
            sfn.Condition.number_less_than("$.spotReruns", SPOT_RERUNS),
        )
        after_failure = (
            sfn.Choice(self, "SpotInterrupted").when(interrupted, rerun).otherwise(failed)
        )
        run.add_retry(errors=ECS_TRANSIENT_ERRORS, interval=Duration.seconds(30),
                      max_attempts=4, backoff_rate=2, jitter_strategy=sfn.JitterType.FULL)
        run.add_catch(after_failure, errors=["States.TaskFailed"], result_path=FAILURE_PATH)
        run.add_catch(failed, errors=["States.ALL"], result_path=FAILURE_PATH)
        definition = (
            sfn.Pass(self, "Start", parameters=_state_of(0))
            .next(run)
            .next(self._notify("NotifySucceeded", topic, "succeeded", {
                "taskArn": "$.task.taskArn",
            }))
            .next(sfn.Succeed(self, "Done"))
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
            # Every run may take the task's whole timeout.
            timeout=Duration.seconds(task_timeout.to_seconds() * (SPOT_RERUNS + 1) + 3600),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL),
        )
        messaging_key.grant_encrypt_decrypt(self.state_machine)
        # RunTask propagates the task definition's tags to the task: tagging on creation needs
        # ecs:TagResource too (AWS docs, "Grant permission to tag resources on creation").
        self.state_machine.add_to_role_policy(iam.PolicyStatement(
            actions=["ecs:TagResource"],
            resources=[Stack.of(self).format_arn(
                service="ecs", resource="task", resource_name=f"{cluster.cluster_name}/*")],
            conditions={"StringEquals": {"ecs:CreateAction": "RunTask"}},
        ))
        skip_checks(
            self.state_machine.role.node.find_child("DefaultPolicy"),
            ("CKV_AWS_111", "As CDK grants them for an ecs:runTask.sync state: ecs:StopTask and "
             "ecs:DescribeTasks act on a task ARN not known until the task starts; the "
             "logs:*LogDelivery actions of Step Functions logging and xray:Put* take no "
             "resource-level ARN (AWS docs). RunTask, PassRole, SQS, SNS and KMS are scoped."),
        )

    def _run_task(
        self, cluster: ecs.ICluster, task_definition: ecs.TaskDefinition,
        subnets: ec2.SubnetSelection, security_group: ec2.ISecurityGroup, timeout: Duration,
    ) -> tasks.EcsRunTask:
        container = task_definition.find_container(BATCH_CONTAINER)
        if container is None:
            raise ValueError(f"the batch task definition has no container {BATCH_CONTAINER!r}")
        return tasks.EcsRunTask(
            self, "RunBatchProcessor",
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            cluster=cluster,
            task_definition=task_definition,
            launch_target=tasks.EcsFargateLaunchTarget(
                platform_version=ecs.FargatePlatformVersion.LATEST,
                capacity_provider_options=tasks.CapacityProviderOptions.custom([
                    ecs.CapacityProviderStrategy(
                        capacity_provider=BATCH_CAPACITY_PROVIDER, weight=1),
                ]),
            ),
            subnets=subnets,
            security_groups=[security_group],
            assign_public_ip=False,
            container_overrides=[tasks.ContainerOverride(
                container_definition=container,
                environment=[
                    tasks.TaskEnvironmentVariable(
                        name=variable, value=sfn.JsonPath.string_at(f"$.{field}"))
                    for variable, field in OBJECT_VARIABLES.items()
                ],
            )],
            propagated_tag_source=ecs.PropagatedTagSource.TASK_DEFINITION,
            task_timeout=sfn.Timeout.duration(timeout),
            result_selector={"taskArn": sfn.JsonPath.string_at("$.TaskArn")},
            result_path="$.task",
        )

    def _notify(
        self, id_: str, topic: sns.ITopic, outcome: str, extra: dict[str, str],
    ) -> tasks.SnsPublish:
        """`extra`: more message fields, each by the JSONPath of its value."""
        message: dict[str, object] = {
            "outcome": outcome,
            "execution": sfn.JsonPath.execution_id,
            **{name: sfn.JsonPath.string_at(f"$.{name}") for name in OBJECT_FIELDS},
            **{name: sfn.JsonPath.string_at(path) for name, path in extra.items()},
        }
        return tasks.SnsPublish(
            self, id_,
            topic=topic,
            subject=f"TextNLP batch {outcome}",
            message=sfn.TaskInput.from_object(message),
            message_attributes={"outcome": tasks.MessageAttribute(value=outcome)},
            result_path=sfn.JsonPath.DISCARD,
        )

