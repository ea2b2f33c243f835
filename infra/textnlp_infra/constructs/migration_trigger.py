"""The deployment runs the migration task before it creates or updates the services.

The services refuse an older schema (`textnlp.adapters.db.schema.check_schema`), and
CloudFormation waits for a new service to reach a steady state: without this, a first deploy
fails in the Compute stack, and the migration task could not be run beforehand because its task
definition and cluster are created in that same stack.

A CDK trigger (`aws_cdk.triggers.Trigger`, a `Custom::Trigger` resource) invokes the
`textnlp.lambdas.migration_trigger` handler after the cluster and the migration task definition
exist and before the services (they depend on it); the handler runs the task and fails the
deployment unless it exits 0. The trigger runs again when its properties change: the task
definition's ARN is one of them, so each new revision (a new image) migrates before its
services roll. (The trigger's own `HandlerArn`, the function's version, does not follow the
revision: the version's hash sees the template's `Ref`, not the ARN it resolves to.)
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import CfnResource, Duration, Stack, triggers
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct
from textnlp.deployment import MIGRATION_TRIGGER_HANDLER
from textnlp.lambdas.migration_trigger import CONFIG_VARIABLES

from textnlp_infra.checkov import skip_checks
from textnlp_infra.config import EnvConfig
from textnlp_infra.constructs.functions import VpcFunction
from textnlp_infra.constructs.worker_services import MIGRATION_CONTAINER, MigrationTask

#: The handler polls within this; the trigger's invocation waits a minute longer.
FUNCTION_TIMEOUT = Duration.minutes(13)
INVOCATION_TIMEOUT = Duration.minutes(14)
#: CDK's id of the trigger provider (a singleton per stack, `AWSCDK.TriggerCustomResourceProvider`).
PROVIDER_ID = "AWSCDK.TriggerCustomResourceProviderCustomResourceProvider"


def migration_trigger_environment(values: dict[str, str]) -> dict[str, str]:
    """`values` for exactly the variables the handler declares; a missing or extra one fails."""
    missing = [name for name in CONFIG_VARIABLES if not values.get(name)]
    unknown = sorted(set(values) - set(CONFIG_VARIABLES))
    if missing or unknown:
        raise ValueError(
            f"migration trigger environment: missing {missing or 'none'}, "
            f"unknown {unknown or 'none'}"
        )
    return {name: values[name] for name in CONFIG_VARIABLES}


class MigrationTrigger(Construct):
    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig, migration: MigrationTask,
        cluster: ecs.Cluster, vpc: ec2.IVpc, security_group: ec2.ISecurityGroup,
        code: lambda_.Code, key: kms.IKey, logs_key: kms.IKey,
        execution_role: iam.IRole, task_role: iam.IRole, run_before: Sequence[Construct],
    ) -> None:
        super().__init__(scope, id_)
        subnets = vpc.select_subnets(subnet_group_name="private").subnet_ids
        task_definition = migration.task_definition
        self.function = VpcFunction(
            self, "Function", config=config, name="migrate-trigger",
            handler=MIGRATION_TRIGGER_HANDLER, code=code, vpc=vpc,
            security_group=security_group, key=key, logs_key=logs_key,
            environment=migration_trigger_environment({
                "CLUSTER": cluster.cluster_name,
                "TASK_DEFINITION_ARN": task_definition.task_definition_arn,
                "CONTAINER_NAME": MIGRATION_CONTAINER,
                "SUBNETS": ",".join(subnets),
                "SECURITY_GROUPS": security_group.security_group_id,
            }),
            # One deployment at a time; CloudFormation invokes it synchronously.
            reserved_concurrency=1, timeout=FUNCTION_TIMEOUT,
        ).function
        skip_checks(self.function, (
            "CKV_AWS_116", "Invoked synchronously by the deployment's trigger; a DLQ only ever "
            "receives failed asynchronous invocations."))
        self._allow_run(config, migration, cluster, execution_role, task_role)
        key.grant_decrypt(self.function)

        self.trigger = triggers.Trigger(
            self, "Trigger", handler=self.function, timeout=INVOCATION_TIMEOUT,
            execute_after=[cluster, task_definition], execute_before=list(run_before),
        )
        resource = self.trigger.node.default_child
        cfn = resource.node.default_child if resource is not None else None
        if not isinstance(cfn, CfnResource):
            raise TypeError("the CDK trigger has no Custom::Trigger resource to extend")
        cfn.add_property_override("TaskDefinitionArn", task_definition.task_definition_arn)
        _provider_skips(Stack.of(self))

    def _allow_run(
        self, config: EnvConfig, migration: MigrationTask, cluster: ecs.Cluster,
        execution_role: iam.IRole, task_role: iam.IRole,
    ) -> None:
        stack = Stack.of(self)
        prefix = f"arn:{stack.partition}:ecs:{stack.region}:{stack.account}"
        self.function.add_to_role_policy(iam.PolicyStatement(
            actions=["ecs:RunTask"],
            resources=[f"{prefix}:task-definition/{migration.family}:*"],
            conditions={"ArnEquals": {"ecs:cluster": cluster.cluster_arn}},
        ))
        self.function.add_to_role_policy(iam.PolicyStatement(
            actions=["ecs:DescribeTasks"],
            resources=[f"{prefix}:task/{config.name}/*"],
        ))
        self.function.add_to_role_policy(iam.PolicyStatement(
            actions=["iam:PassRole"],
            resources=[execution_role.role_arn, task_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
        ))


def _provider_skips(stack: Stack) -> None:
    """CDK's trigger provider: a Node.js function outside the VPC that only invokes ours."""
    provider = stack.node.try_find_child(PROVIDER_ID)
    handler = provider.node.try_find_child("Handler") if provider is not None else None
    if not isinstance(handler, CfnResource) or handler.get_metadata("checkov"):
        return
    skip_checks(
        handler,
        ("CKV_AWS_116", "CDK's trigger provider is a CloudFormation custom resource handler, "
         "invoked synchronously; CloudFormation reports its failures."),
        ("CKV_AWS_117", "CDK's trigger provider calls only lambda:InvokeFunction on the "
         "migration trigger, which itself runs in the VPC."),
        ("CKV_AWS_115", "CDK's trigger provider runs once per deployment."),
        ("CKV_AWS_173", "CDK's trigger provider has no environment variables."),
    )
