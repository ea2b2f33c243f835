"""Design section 2, CPU workers: the validation service, the batch-processor task and the
one-off migration task.

The validation service consumes the validation queue: finished jobs that ask for a gate are
validated there (CPU, the validation extras) and finished, succeeded or failed by the gate.
The batch processor is no service: the batch state machine runs one task per upload
(`ecs:runTask.sync`, `batch_machine`) on FARGATE_SPOT, the design's "Spot instances for batch
processing". The
migration task (`textnlp db upgrade`) runs once per release before the services roll (the
deployment's trigger, `migration_trigger`, and the pipeline's `Migrate` stage); services refuse
to start on an older schema.
"""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from constructs import Construct
from textnlp import deployment

from textnlp_infra.config import EnvConfig
from textnlp_infra.constructs.api_service import track_cpu
from textnlp_infra.constructs.containers import WORKER_STOP_TIMEOUT_S, ContainerFactory

BATCH_CAPACITY_PROVIDER = "FARGATE_SPOT"
BATCH_CONTAINER = "batch-processor"
MIGRATION_CONTAINER = "migrate"


class ValidationService(Construct):
    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig, cluster: ecs.ICluster,
        security_group: ec2.ISecurityGroup, execution_role: iam.IRole, task_role: iam.IRole,
        containers: ContainerFactory,
    ) -> None:
        super().__init__(scope, id_)
        compute = config.compute
        self.service_name = config.resource_name("validation")
        task = ecs.FargateTaskDefinition(
            self, "Task",
            family=self.service_name,
            cpu=compute.validation_cpu,
            memory_limit_mib=compute.validation_memory_mib,
            execution_role=execution_role,
            task_role=task_role,
        )
        containers.add_app_container(
            task, name="validation", component="validation", repository="textnlp-validation",
            command=deployment.VALIDATION_COMMAND, service_name=self.service_name,
            stop_timeout_s=WORKER_STOP_TIMEOUT_S,
        )
        containers.add_xray_sidecar(task, "validation")
        self.service = ecs.FargateService(
            self, "Service",
            service_name=self.service_name,
            cluster=cluster,
            task_definition=task,
            desired_count=compute.validation_desired_count,
            security_groups=[security_group],
            vpc_subnets=ec2.SubnetSelection(subnet_group_name="private"),
            assign_public_ip=False,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
        )
        scaling = self.service.auto_scale_task_count(
            min_capacity=compute.validation_desired_count,
            max_capacity=compute.scaling.max_capacity,
        )
        track_cpu(scaling, compute.scaling)


class BatchProcessorTask(Construct):
    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig, execution_role: iam.IRole,
        task_role: iam.IRole, containers: ContainerFactory,
    ) -> None:
        super().__init__(scope, id_)
        compute = config.compute
        self.family = config.resource_name("batch-processor")
        self.task_definition = ecs.FargateTaskDefinition(
            self, "Task",
            family=self.family,
            cpu=compute.batch_cpu,
            memory_limit_mib=compute.batch_memory_mib,
            execution_role=execution_role,
            task_role=task_role,
        )
        # S3_BUCKET and S3_KEY arrive as container overrides from the state machine (design §7).
        containers.add_app_container(
            self.task_definition, name=BATCH_CONTAINER, component="batch-processor",
            # The CPU image: batch work calls hosted models (SageMaker, Bedrock) or the queue.
            repository="textnlp-api",
            command=deployment.BATCH_PROCESSOR_COMMAND, service_name=self.family,
            stop_timeout_s=WORKER_STOP_TIMEOUT_S,
        )
        containers.add_xray_sidecar(self.task_definition, "batch-processor")


class MigrationTask(Construct):
    """`textnlp db upgrade`, run once per release before services roll (`MigrationTrigger`)."""

    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig, execution_role: iam.IRole,
        task_role: iam.IRole, containers: ContainerFactory,
    ) -> None:
        super().__init__(scope, id_)
        self.family = config.resource_name("migrate")
        self.task_definition = one_off_task(
            self, family=self.family, container=MIGRATION_CONTAINER, component="migrate",
            command=deployment.MIGRATE_COMMAND, execution_role=execution_role,
            task_role=task_role, containers=containers,
        )


def one_off_task(
    scope: Construct, *, family: str, container: str, component: str, command: tuple[str, ...],
    execution_role: iam.IRole, task_role: iam.IRole, containers: ContainerFactory,
) -> ecs.FargateTaskDefinition:
    """A one-off command of the API image (a migration, a purge) as a small Fargate task of
    its own, traced, run by a trigger or a schedule rather than a service."""
    task_definition = ecs.FargateTaskDefinition(
        scope, "Task",
        family=family,
        cpu=512,
        memory_limit_mib=1024,
        execution_role=execution_role,
        task_role=task_role,
    )
    containers.add_app_container(
        task_definition, name=container, component=component, repository="textnlp-api",
        command=command, service_name=family,
    )
    containers.add_xray_sidecar(task_definition, component)
    return task_definition
