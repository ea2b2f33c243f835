"""What every TextNLP container shares: image, logs, secrets, X-Ray sidecar, read-only root.

The application reads its settings from `TEXTNLP_*` variables (DESIGN.md, "one settings
object"); the names set here are the contract between this deployment and `textnlp.config`.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as sm
from constructs import Construct

from textnlp_infra.config import EnvConfig
from textnlp_infra.retention import retention_days

XRAY_DAEMON_IMAGE = "public.ecr.aws/xray/aws-xray-daemon:3.3.12"
HEALTH_COMMAND = (
    "python -c \"import urllib.request; "
    "urllib.request.urlopen('http://localhost:{port}/api/v1/admin/health', timeout=3)\""
)


@dataclass(frozen=True)
class AppEnvironment:
    """Where the application finds its AWS resources (plain values and secrets)."""

    variables: dict[str, str]
    secrets: dict[str, ecs.Secret]


def app_environment(
    config: EnvConfig, *, database_secret: sm.ISecret, cache_secret: sm.ISecret,
    jwt_secret: sm.ISecret, database_host: str, cache_host: str, queue_urls: dict[str, str],
    notifications_topic_arn: str,
) -> AppEnvironment:
    variables = {
        "AWS_REGION": config.region,
        "ENVIRONMENT": config.environment.value,
        "TEXTNLP_PROFILE": "aws",
        "TEXTNLP_STORAGE__BUCKET": config.bucket_name,
        "TEXTNLP_DATABASE__HOST": database_host,
        "TEXTNLP_DATABASE__NAME": config.aurora.database_name,
        "TEXTNLP_DATABASE__USER": config.aurora.master_username,
        "TEXTNLP_CACHE__HOST": cache_host,
        "TEXTNLP_QUEUE__GENERATION_URL": queue_urls["generation"],
        "TEXTNLP_QUEUE__BATCH_URL": queue_urls["batch"],
        "TEXTNLP_QUEUE__DLQ_URL": queue_urls["dlq"],
        "TEXTNLP_NOTIFICATIONS__TOPIC_ARN": notifications_topic_arn,
        "TEXTNLP_MODELS__SAGEMAKER_ENDPOINT": config.model_serving.endpoint_name,
        "TEXTNLP_OBSERVABILITY__METRICS_NAMESPACE": config.monitoring.metrics_namespace,
        "AWS_XRAY_DAEMON_ADDRESS": "localhost:2000",
    }
    secrets = {
        # The design's DB_PASSWORD, injected by ECS from Secrets Manager at task start.
        "DB_PASSWORD": ecs.Secret.from_secrets_manager(database_secret, "password"),
        "TEXTNLP_CACHE__AUTH_TOKEN": ecs.Secret.from_secrets_manager(cache_secret),
        "TEXTNLP_AUTH__JWT_SECRET": ecs.Secret.from_secrets_manager(jwt_secret),
    }
    return AppEnvironment(variables, secrets)


class ContainerFactory:
    """Adds TextNLP's containers to task definitions with the shared settings."""

    def __init__(
        self, scope: Construct, *, config: EnvConfig, logs_key: kms.IKey,
        environment: AppEnvironment,
    ) -> None:
        self._scope = scope
        self._config = config
        self._logs_key = logs_key
        self._environment = environment

    def log_group(self, component: str) -> logs.LogGroup:
        return logs.LogGroup(
            self._scope, f"{component.title().replace('-', '')}Logs",
            log_group_name=f"/ecs/{self._config.resource_name(component)}",
            retention=retention_days(self._config.compute.log_retention_days),
            encryption_key=self._logs_key,
            removal_policy=RemovalPolicy.RETAIN if self._config.is_production
            else RemovalPolicy.DESTROY,
        )

    def add_app_container(
        self, task: ecs.TaskDefinition, *, name: str, component: str, repository: str,
        command: list[str] | None = None, port: int | None = None, gpus: int = 0,
        extra_variables: dict[str, str] | None = None,
    ) -> ecs.ContainerDefinition:
        repo = ecr.Repository.from_repository_name(
            self._scope, f"{name.title().replace('-', '')}Repository", repository
        )
        health = None
        if port is not None:
            health = ecs.HealthCheck(command=["CMD-SHELL", HEALTH_COMMAND.format(port=port)])
        container = task.add_container(
            name,
            image=ecs.ContainerImage.from_ecr_repository(repo, self._config.image_tag),
            command=command,
            environment={**self._environment.variables, **(extra_variables or {})},
            secrets=self._environment.secrets,
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix=name, log_group=self.log_group(component)
            ),
            port_mappings=[ecs.PortMapping(container_port=port)] if port else None,
            gpu_count=gpus or None,
            health_check=health,
            readonly_root_filesystem=True,
            essential=True,
        )
        # The root filesystem is read-only; scratch space is a task-local volume.
        task.add_volume(name=f"{name}-tmp")
        container.add_mount_points(
            ecs.MountPoint(container_path="/tmp", source_volume=f"{name}-tmp", read_only=False)
        )
        return container

    def add_xray_sidecar(self, task: ecs.TaskDefinition, component: str) -> None:
        """X-Ray on the services (design section 10): the app sends segments to localhost."""
        task.add_container(
            "xray-daemon",
            image=ecs.ContainerImage.from_registry(XRAY_DAEMON_IMAGE),
            cpu=32,
            memory_reservation_mib=256,
            essential=False,
            readonly_root_filesystem=True,
            port_mappings=[ecs.PortMapping(container_port=2000, protocol=ecs.Protocol.UDP)],
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix="xray", log_group=self.log_group(f"{component}-xray")
            ),
        )
