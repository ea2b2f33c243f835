"""Design section 2, the Fargate API service `textnlp-api` and its target-tracking scaling.

Its deployment controller is CodeDeploy: the delivery stack shifts traffic blue -> green
(ECSLinear10PercentEvery1Minutes) between the two target groups of the load balancer.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from constructs import Construct
from textnlp import deployment
from textnlp.observability.emf import REQUESTS_PER_TASK, SERVICE_DIMENSION

from textnlp_infra.config import EnvConfig, ScalingConfig
from textnlp_infra.constructs.containers import ContainerFactory
from textnlp_infra.constructs.load_balancer import ApiLoadBalancer


def custom_metric(config: EnvConfig, name: str, service_name: str) -> cw.Metric:
    """A metric the application publishes (EMF, `textnlp.observability.emf`) under the
    design's `Custom` namespace, per ECS service."""
    return cw.Metric(
        namespace=config.monitoring.metrics_namespace,
        metric_name=name,
        dimensions_map={SERVICE_DIMENSION: service_name},
        statistic="Average",
        period=Duration.minutes(1),
    )


def track_cpu(scaling: ecs.ScalableTaskCount, scaling_config: ScalingConfig) -> None:
    scaling.scale_on_cpu_utilization(
        "CpuTarget",
        target_utilization_percent=scaling_config.cpu_target_percent,
        scale_in_cooldown=Duration.seconds(scaling_config.scale_in_cooldown_s),
        scale_out_cooldown=Duration.seconds(scaling_config.scale_out_cooldown_s),
    )


class ApiService(Construct):
    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig, cluster: ecs.ICluster,
        security_group: ec2.ISecurityGroup, execution_role: iam.IRole, task_role: iam.IRole,
        containers: ContainerFactory, load_balancer: ApiLoadBalancer,
    ) -> None:
        super().__init__(scope, id_)
        compute = config.compute
        self.service_name = config.resource_name("api")
        task = ecs.FargateTaskDefinition(
            self, "Task",
            family=self.service_name,
            cpu=compute.api_cpu,
            memory_limit_mib=compute.api_memory_mib,
            execution_role=execution_role,
            task_role=task_role,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        containers.add_app_container(
            task, name="api", component="api", repository="textnlp-api",
            command=deployment.API_COMMAND, service_name=self.service_name,
            port=deployment.API_PORT,
        )
        containers.add_xray_sidecar(task, "api")
        self.task_definition = task
        self.service = ecs.FargateService(
            self, "Service",
            service_name=self.service_name,
            cluster=cluster,
            task_definition=task,
            desired_count=compute.api_desired_count,
            security_groups=[security_group],
            vpc_subnets=ec2.SubnetSelection(subnet_group_name="private"),
            assign_public_ip=False,
            deployment_controller=ecs.DeploymentController(
                type=ecs.DeploymentControllerType.CODE_DEPLOY
            ),
            health_check_grace_period=Duration.seconds(60),
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
        )
        self.service.attach_to_application_target_group(load_balancer.blue)

        scaling_config = compute.scaling
        scaling = self.service.auto_scale_task_count(
            min_capacity=scaling_config.min_capacity, max_capacity=scaling_config.max_capacity
        )
        track_cpu(scaling, scaling_config)
        scaling.scale_to_track_custom_metric(
            "RequestsPerTask",
            metric=custom_metric(config, REQUESTS_PER_TASK, self.service_name),
            target_value=scaling_config.requests_per_task,
            scale_in_cooldown=Duration.seconds(scaling_config.scale_in_cooldown_s),
            scale_out_cooldown=Duration.seconds(scaling_config.scale_out_cooldown_s),
        )
