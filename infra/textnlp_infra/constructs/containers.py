"""What every TextNLP container shares: image, logs, secrets, X-Ray sidecar, read-only root.

The environment is the contract with the application, and the application owns it: every
variable is named through `textnlp.config.env_name` (a field the app's `Settings` lacks stops
synthesis with one line naming it), and commands, port, health check and the writable path
come from `textnlp.deployment`. The database and cache arrive as the parts AWS provides (the
Aurora endpoint and master secret, the ElastiCache configuration endpoint and auth token),
which `Settings` assembles into URLs; ECS injects the secret parts at task start. Secrets the
app reads at run time by name (the JWT key, model API keys) stay in Secrets Manager.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as sm
from constructs import Construct
from textnlp import deployment
from textnlp.config import env_name

from textnlp_infra.config import EnvConfig
from textnlp_infra.constructs.session_table import session_environment
from textnlp_infra.constructs.task_roles import bedrock_batch_role_arn
from textnlp_infra.retention import retention_days

#: The AWS Distro for OpenTelemetry collector: receives the app's OTLP spans on localhost and
#: sends them to X-Ray as segments (the X-Ray daemon speaks only the X-Ray SDKs' UDP format).
TRACE_COLLECTOR_IMAGE = "public.ecr.aws/aws-observability/aws-otel-collector:v0.43.1"
TRACE_COLLECTOR_PORT = 4318
#: How long ECS waits after a worker's SIGTERM before it kills it (its default: 30 s). A worker
#: stores its finished records and hands its job back within seconds (textnlp.worker.runner's
#: STOP_GRACE_S, then a database write and a queue call); a slow database must not make ECS
#: kill it mid-write, which costs the records it held. Fargate allows at most 120 s.
WORKER_STOP_TIMEOUT_S = 120
TRACE_ENDPOINT = f"http://localhost:{TRACE_COLLECTOR_PORT}/v1/traces"
#: OTLP over HTTP in, X-Ray out: traces only (metrics go as EMF through the logs).
TRACE_COLLECTOR_CONFIG = f"""receivers:
  otlp:
    protocols:
      http:
        endpoint: 0.0.0.0:{TRACE_COLLECTOR_PORT}
processors:
  batch: {{}}
exporters:
  awsxray: {{}}
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [awsxray]
"""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: str


@dataclass(frozen=True)
class AppResources:
    """The AWS resources the application is pointed at."""

    database: Endpoint
    database_secret: sm.ISecret
    cache: Endpoint
    cache_secret: sm.ISecret
    origin_verify_secret: sm.ISecret
    viewer_verify_secret: sm.ISecret
    #: Queue names by setting (`generation_queue`, `dead_letter_queue`, `batch_queue`...).
    queues: dict[str, str]
    notifications_topic_arn: str
    websocket_callback_url: str


@dataclass(frozen=True)
class AppEnvironment:
    """Plain variables and ECS-injected secrets of the app's containers."""

    variables: dict[str, str]
    secrets: dict[str, ecs.Secret]


def app_environment(config: EnvConfig, resources: AppResources) -> AppEnvironment:
    """The settings every TextNLP container runs with (its service name is added per service)."""
    aurora = config.aurora
    variables = {
        env_name("profile"): "aws",
        env_name("environment"): config.environment.value,
        env_name("home"): deployment.CONTAINER_HOME,
        env_name("aws", "region"): config.region,
        env_name("storage", "bucket"): config.bucket_name,
        env_name("storage", "archive_after_days"): str(config.storage.glacier_after_days),
        env_name("database", "host"): resources.database.host,
        env_name("database", "port"): resources.database.port,
        env_name("database", "name"): aurora.database_name,
        env_name("database", "sslmode"): "require",
        env_name("cache", "host"): resources.cache.host,
        env_name("cache", "port"): resources.cache.port,
        # ElastiCache here has in-transit encryption and cluster mode (RedisConfig).
        env_name("cache", "tls"): "true",
        env_name("cache", "cluster"): "true",
        env_name("queue", "notify_topic_arn"): resources.notifications_topic_arn,
        env_name("api", "websocket_callback_url"): resources.websocket_callback_url,
        env_name("observability", "emf_namespace"): config.monitoring.metrics_namespace,
        # Traces go to the task's collector sidecar, which sends them to X-Ray.
        env_name("observability", "trace_exporter"): "otlp",
        env_name("observability", "otlp_endpoint"): TRACE_ENDPOINT,
        # The service role Bedrock runs a job's batch inference as (`--provider-batch`).
        env_name("models", "bedrock_batch_role_arn"): bedrock_batch_role_arn(config),
        # Refresh-token families and revocations, in the table the authorizer reads too.
        **session_environment(config),
        **deployment.SCRATCH_ENVIRONMENT,
    }
    for setting, name in resources.queues.items():
        variables[env_name("queue", setting)] = name
    secrets = {
        env_name("database", "user"): ecs.Secret.from_secrets_manager(
            resources.database_secret, "username"
        ),
        env_name("database", "password"): ecs.Secret.from_secrets_manager(
            resources.database_secret, "password"
        ),
        env_name("cache", "auth_token"): ecs.Secret.from_secrets_manager(resources.cache_secret),
        env_name("api", "origin_verify"): ecs.Secret.from_secrets_manager(
            resources.origin_verify_secret
        ),
        # Behind CloudFront, API Gateway and the ALB the app's peer is the ALB: the client's
        # address is the distribution's `X-Viewer-Address` on requests carrying this secret
        # (constructs/viewer_address.py), so the app's per-address login limit, and the bucket
        # of an address a user logged in from, stay on (the settings' defaults).
        env_name("api", "viewer_verify"): ecs.Secret.from_secrets_manager(
            resources.viewer_verify_secret
        ),
    }
    return AppEnvironment(variables, secrets)


def service_variables(service_name: str) -> dict[str, str]:
    """Per service: the `ServiceName` its metrics carry (the dashboard and scaling read it)."""
    return {env_name("observability", "service_name"): service_name}


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
        command: tuple[str, ...], service_name: str, port: int | None = None, gpus: int = 0,
        stop_timeout_s: int | None = None,
    ) -> ecs.ContainerDefinition:
        """``stop_timeout_s``: a worker's (``WORKER_STOP_TIMEOUT_S``); None keeps ECS's 30 s."""
        repo = ecr.Repository.from_repository_name(
            self._scope, f"{name.title().replace('-', '')}Repository", repository
        )
        health = None
        if port is not None:
            health = ecs.HealthCheck(command=["CMD-SHELL", deployment.HEALTH_CHECK_COMMAND])
        container = task.add_container(
            name,
            image=ecs.ContainerImage.from_ecr_repository(repo, self._config.image_tag),
            command=list(command),
            environment={**self._environment.variables, **service_variables(service_name)},
            secrets=self._environment.secrets,
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix=name, log_group=self.log_group(component)
            ),
            port_mappings=[ecs.PortMapping(container_port=port)] if port else None,
            gpu_count=gpus or None,
            health_check=health,
            readonly_root_filesystem=True,
            essential=True,
            stop_timeout=Duration.seconds(stop_timeout_s) if stop_timeout_s else None,
        )
        # The root filesystem is read-only; the app writes below one task-local volume.
        task.add_volume(name=f"{name}-scratch")
        container.add_mount_points(
            ecs.MountPoint(
                container_path=deployment.SCRATCH_PATH, source_volume=f"{name}-scratch",
                read_only=False,
            )
        )
        return container

    def add_xray_sidecar(self, task: ecs.TaskDefinition, component: str) -> None:
        """X-Ray on the services (design section 10): the app exports OTLP to this collector
        on localhost, which sends the segments to X-Ray (the task role may put them)."""
        task.add_container(
            "trace-collector",
            image=ecs.ContainerImage.from_registry(TRACE_COLLECTOR_IMAGE),
            cpu=64,
            memory_reservation_mib=256,
            essential=False,
            readonly_root_filesystem=True,
            environment={"AOT_CONFIG_CONTENT": TRACE_COLLECTOR_CONFIG},
            port_mappings=[ecs.PortMapping(container_port=TRACE_COLLECTOR_PORT)],
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix="otel", log_group=self.log_group(f"{component}-otel")
            ),
        )
