"""Design section 2, compute: the ECS cluster, its services and the ALB in front of the API.

The ALB (design "Edge") lives here rather than in the API stack because the API service's
blue/green target groups and listeners are part of the service's deployment. The one-off tasks
live here too: the migration (run by the deployment's trigger) and the jobs' purge (run daily by
an EventBridge schedule, `constructs/jobs_purge.py`).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import SecretValue, Stack, Token
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_s3 as s3
from constructs import Construct

from textnlp_infra.config import EnvConfig
from textnlp_infra.constructs.api_service import ApiService
from textnlp_infra.constructs.containers import (
    AppResources,
    ContainerFactory,
    Endpoint,
    app_environment,
)
from textnlp_infra.constructs.functions import application_code
from textnlp_infra.constructs.generation_service import GenerationService
from textnlp_infra.constructs.jobs_purge import JobsPurgeSchedule, JobsPurgeTask
from textnlp_infra.constructs.load_balancer import ApiLoadBalancer
from textnlp_infra.constructs.migration_trigger import MigrationTrigger
from textnlp_infra.constructs.worker_services import (
    BatchProcessorTask,
    MigrationTask,
    ValidationService,
)
from textnlp_infra.imports import (
    immutable_role,
    immutable_security_group,
    imported_key,
    imported_secret,
)
from textnlp_infra.stacks.data import DataStack
from textnlp_infra.stacks.messaging import MessagingStack
from textnlp_infra.stacks.network import NetworkStack
from textnlp_infra.stacks.security import SecurityStack


def hosted_zone(scope: Construct, config: EnvConfig) -> route53.IHostedZone:
    """The deployer's zone, named by context (`hostedZoneId`, `domainName`): no lookup."""
    return route53.HostedZone.from_hosted_zone_attributes(
        scope, "Zone", hosted_zone_id=config.hosted_zone_id, zone_name=config.domain_name
    )


class ComputeStack(Stack):
    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig, network: NetworkStack,
        security: SecurityStack, data: DataStack, messaging: MessagingStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        groups = network.security_groups
        app_sg = immutable_security_group(self, "ApiSg", groups.api)
        self.app_security_group = app_sg
        execution_role = immutable_role(self, "ExecutionRole", security.roles.execution)
        task_role = immutable_role(self, "TaskRole", security.roles.application)
        secrets = security.secrets

        self.cluster = ecs.Cluster(
            self, "Cluster",
            cluster_name=config.name,
            vpc=network.vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
            enable_fargate_capacity_providers=True,
        )
        cluster_endpoint = data.database.cluster.cluster_endpoint
        cache = data.cache.replication_group
        environment = app_environment(config, AppResources(
            database=Endpoint(cluster_endpoint.hostname, Token.as_string(cluster_endpoint.port)),
            database_secret=imported_secret(self, "DbSecret", secrets.database_master),
            cache=Endpoint(
                cache.attr_configuration_end_point_address,
                cache.attr_configuration_end_point_port,
            ),
            cache_secret=imported_secret(self, "CacheSecret", secrets.cache_auth_token),
            origin_verify_secret=imported_secret(self, "OriginVerify", secrets.origin_verify),
            viewer_verify_secret=imported_secret(self, "ViewerVerify", secrets.viewer_verify),
            queues=messaging.queue_names,
            notifications_topic_arn=messaging.job_notifications.topic_arn,
            websocket_callback_url=f"https://{config.stream_host}",
        ))
        logs_key = imported_key(self, "LogsKey", security.keys.logs)
        containers = ContainerFactory(
            self, config=config, logs_key=logs_key,
            environment=environment,
        )
        self.load_balancer = ApiLoadBalancer(
            self, "LoadBalancer", config=config, vpc=network.vpc,
            security_group=immutable_security_group(self, "AlbSg", groups.alb),
            zone=hosted_zone(self, config),
            access_logs=s3.Bucket.from_bucket_name(
                self, "AccessLogs", security.access_logs.bucket_name
            ),
            # A dynamic reference: CloudFormation resolves it; the template holds only the name.
            origin_verify=SecretValue.secrets_manager(
                secrets.origin_verify.secret_arn
            ).unsafe_unwrap(),
        )
        roles = {"execution_role": execution_role, "task_role": task_role}
        self.api = ApiService(
            self, "Api", config=config, cluster=self.cluster, security_group=app_sg,
            containers=containers, load_balancer=self.load_balancer, **roles,
        )
        self.generation = GenerationService(
            self, "Generation", config=config, cluster=self.cluster, security_group=app_sg,
            containers=containers, **roles,
        )
        self.validation = ValidationService(
            self, "Validation", config=config, cluster=self.cluster, security_group=app_sg,
            containers=containers, **roles,
        )
        self.batch = BatchProcessorTask(
            self, "BatchProcessor", config=config, containers=containers, **roles
        )
        self.migration = MigrationTask(
            self, "Migration", config=config, containers=containers, **roles
        )
        # The schema is migrated before any service is created or updated (they refuse an
        # older one): CloudFormation runs the migration task through this trigger.
        self.migration_trigger = MigrationTrigger(
            self, "MigrationTrigger", config=config, migration=self.migration,
            cluster=self.cluster, vpc=network.vpc, security_group=app_sg,
            code=application_code(), key=imported_key(self, "SecretsKey", security.keys.secrets),
            logs_key=logs_key, execution_role=execution_role, task_role=task_role,
            run_before=[self.api.service, self.generation.service, self.validation.service],
        )
        # The jobs' retention: the purge task, run daily by an EventBridge schedule.
        self.jobs_purge = JobsPurgeTask(
            self, "JobsPurge", config=config, containers=containers, **roles
        )
        self.jobs_purge_schedule = JobsPurgeSchedule(
            self, "JobsPurgeSchedule", config=config, task=self.jobs_purge,
            cluster=self.cluster, security_group=app_sg,
            messaging_key=imported_key(self, "MessagingKey", security.keys.messaging), **roles,
        )
