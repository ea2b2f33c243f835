"""The jobs' retention: an EventBridge schedule runs the one-off `textnlp-jobs-purge` task
(`textnlp jobs purge --older-than DAYS`, `JobsConfig`) once a day.

The task is built like the migration task: the API's image, the app's environment and
secrets, the application task role (whose S3 grants cover the job files a purge deletes), the
private subnets and the API security group. The rule's role may run that task definition family
on this cluster and pass its two roles to ECS, nothing else. The rule names the family, not a
revision: ECS runs its latest revision, which the pipeline's `Migrate` stage registers with each
release's image (an older image would refuse the upgraded schema). A `RunTask` that fails (no
capacity, throttling) is retried and then dead-lettered to `textnlp-jobs-purge-dlq`, which the
Monitoring stack alarms on. Each purge that succeeds publishes its `JobsPurged` count (EMF, 0
included), and the Monitoring stack alarms when none came for over a day: a purge that exits
non-zero, cannot start its container or never runs. One missed purge loses nothing: the next
deletes whatever has aged past the retention by then.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from textnlp import deployment

from textnlp_infra.config import EnvConfig
from textnlp_infra.constructs.containers import ContainerFactory
from textnlp_infra.constructs.worker_services import one_off_task

PURGE_CONTAINER = "jobs-purge"
#: EventBridge's retries of a failed `RunTask`, and how long it keeps trying.
RETRY_ATTEMPTS = 3
MAX_EVENT_AGE = Duration.hours(6)


class JobsPurgeTask(Construct):
    """`textnlp jobs purge --older-than <config.jobs.retention_days>`, run by the schedule."""

    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig, execution_role: iam.IRole,
        task_role: iam.IRole, containers: ContainerFactory,
    ) -> None:
        super().__init__(scope, id_)
        self.family = config.jobs_purge_family
        self.task_definition = one_off_task(
            self, family=self.family, container=PURGE_CONTAINER, component="jobs-purge",
            command=deployment.jobs_purge_command(config.jobs.retention_days),
            execution_role=execution_role, task_role=task_role, containers=containers,
        )


class JobsPurgeSchedule(Construct):
    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig, task: JobsPurgeTask,
        cluster: ecs.ICluster, security_group: ec2.ISecurityGroup, messaging_key: kms.IKey,
        execution_role: iam.IRole, task_role: iam.IRole,
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        rule_name = f"{config.name}-jobs-purge"
        self.dead_letter_queue = sqs.Queue(
            self, "Dlq",
            queue_name=config.resource_name("jobs-purge-dlq"),
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=messaging_key,
            retention_period=Duration.days(14),
            enforce_ssl=True,
        )
        self.role = iam.Role(
            self, "Role",
            description=f"EventBridge runs the {task.family} task ({rule_name})",
            # Only this rule may use the role (the rule's name is fixed, so no reference).
            assumed_by=iam.ServicePrincipal("events.amazonaws.com", conditions={
                "ArnEquals": {"aws:SourceArn":
                              f"arn:{stack.partition}:events:{stack.region}:{stack.account}"
                              f":rule/{rule_name}"},
            }),
        )
        self._allow_run(config, task, cluster, execution_role, task_role)
        self.rule = events.Rule(
            self, "Rule",
            rule_name=rule_name,
            description=f"Daily: delete the jobs that ended over {config.jobs.retention_days} "
                        "days ago, with their records and files",
            schedule=events.Schedule.cron(minute="0", hour=str(config.jobs.purge_hour_utc)),
        )
        # By family (its ARN without a revision): ECS runs the latest revision.
        latest = ecs.FargateTaskDefinition.from_fargate_task_definition_attributes(
            self, "LatestRevision",
            task_definition_arn=f"arn:{stack.partition}:ecs:{stack.region}:{stack.account}"
                                f":task-definition/{task.family}",
            network_mode=ecs.NetworkMode.AWS_VPC,
            task_role=task_role,
            execution_role=execution_role,
        )
        self.rule.node.add_dependency(task.task_definition)
        self.rule.add_target(targets.EcsTask(
            cluster=cluster,
            task_definition=latest,
            # CDK adds its own, wider grants (PassRole to any service, TagResource in any
            # account) to a mutable role: it gets this view; `_allow_run` grants the role.
            role=self.role.without_policy_updates(),
            launch_type=ecs.LaunchType.FARGATE,
            platform_version=ecs.FargatePlatformVersion.LATEST,
            subnet_selection=ec2.SubnetSelection(subnet_group_name="private"),
            security_groups=[security_group],
            assign_public_ip=False,
            propagate_tags=ecs.PropagatedTagSource.TASK_DEFINITION,
            dead_letter_queue=self.dead_letter_queue,
            retry_attempts=RETRY_ATTEMPTS,
            max_event_age=MAX_EVENT_AGE,
        ))

    def _allow_run(
        self, config: EnvConfig, task: JobsPurgeTask, cluster: ecs.ICluster,
        execution_role: iam.IRole, task_role: iam.IRole,
    ) -> None:
        stack = Stack.of(self)
        prefix = f"arn:{stack.partition}:ecs:{stack.region}:{stack.account}"
        self.role.add_to_policy(iam.PolicyStatement(
            actions=["ecs:RunTask"],
            resources=[f"{prefix}:task-definition/{task.family}:*"],
            conditions={"ArnEquals": {"ecs:cluster": cluster.cluster_arn}},
        ))
        # The task carries its definition's tags (cost allocation): RunTask tags it.
        self.role.add_to_policy(iam.PolicyStatement(
            actions=["ecs:TagResource"],
            resources=[f"{prefix}:task/{config.name}/*"],
            conditions={"StringEquals": {"ecs:CreateAction": "RunTask"}},
        ))
        self.role.add_to_policy(iam.PolicyStatement(
            actions=["iam:PassRole"],
            resources=[execution_role.role_arn, task_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
        ))
