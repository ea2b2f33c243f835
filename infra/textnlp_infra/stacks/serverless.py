"""Design section 7, serverless: the authorizer and batch-trigger Lambdas and their triggers.

Each function's environment is named by what its handler reads: the authorizer's by the app's
settings schema (`textnlp.config.env_name`), the batch trigger's by
`textnlp.lambdas.batch_trigger.CONFIG_VARIABLES`, so a renamed variable fails synthesis.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from textnlp.config import AuthSettings, env_name
from textnlp.deployment import AUTHORIZER_HANDLER, BATCH_TRIGGER_HANDLER
from textnlp.lambdas.batch_trigger import CONFIG_VARIABLES

from textnlp_infra.config import EnvConfig
from textnlp_infra.constructs.batch_machine import BatchOrchestration
from textnlp_infra.constructs.functions import VpcFunction, application_code, authorizer_skips
from textnlp_infra.constructs.orchestration import UploadTrigger
from textnlp_infra.constructs.session_table import allow_session_reads, session_environment
from textnlp_infra.constructs.storage import UPLOADS_PREFIX
from textnlp_infra.imports import immutable_security_group, imported_key, imported_secret
from textnlp_infra.stacks.compute import ComputeStack
from textnlp_infra.stacks.messaging import MessagingStack
from textnlp_infra.stacks.network import PRIVATE, NetworkStack
from textnlp_infra.stacks.security import SecurityStack


def authorizer_environment(config: EnvConfig) -> dict[str, str]:
    """The key comes from Secrets Manager at the path the API reads (`/textnlp/<env>/api/
    jwt-secret`); issuer, audience and algorithm are the schema's defaults, as the API's."""
    auth = AuthSettings()
    return {
        env_name("environment"): config.environment.value,
        env_name("secrets", "backend"): "aws",
        env_name("auth", "issuer"): auth.issuer,
        env_name("auth", "audience"): auth.audience,
        env_name("auth", "jwt_algorithm"): auth.jwt_algorithm,
        # Revoked and logged-out tokens: the session table the API writes.
        **session_environment(config),
    }


def batch_trigger_environment(values: Mapping[str, str]) -> dict[str, str]:
    """`values` for exactly the variables the handler declares; a missing or extra one fails."""
    missing = [name for name in CONFIG_VARIABLES if not values.get(name)]
    unknown = sorted(set(values) - set(CONFIG_VARIABLES))
    if missing or unknown:
        raise ValueError(
            f"batch trigger environment: missing {missing or 'none'}, unknown {unknown or 'none'}"
        )
    return {name: values[name] for name in CONFIG_VARIABLES}


class ServerlessStack(Stack):
    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig, network: NetworkStack,
        security: SecurityStack, messaging: MessagingStack, compute: ComputeStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        keys = security.keys
        secrets_key = imported_key(self, "SecretsKey", keys.secrets)
        messaging_key = imported_key(self, "MessagingKey", keys.messaging)
        logs_key = imported_key(self, "LogsKey", keys.logs)
        app_sg = immutable_security_group(self, "ApiSg", network.security_groups.api)
        code = application_code()
        common: dict[str, Any] = {
            "config": config, "code": code, "vpc": network.vpc, "security_group": app_sg,
            "key": secrets_key, "logs_key": logs_key,
        }

        jwt_secret = imported_secret(self, "JwtSecret", security.secrets.jwt)
        self.authorizer = VpcFunction(
            self, "Authorizer", name="authorizer", handler=AUTHORIZER_HANDLER,
            environment=authorizer_environment(config),
            # Every API request may call it (results are cached per token for 5 minutes).
            reserved_concurrency=200, timeout=Duration.seconds(10), **common,
        ).function
        authorizer_skips(self.authorizer)
        jwt_secret.grant_read(self.authorizer)
        secrets_key.grant_decrypt(self.authorizer)
        allow_session_reads(
            self.authorizer, config, region=self.region, account=self.account,
            data_key=imported_key(self, "DataKey", keys.data),
        )

        self.trigger_dlq = sqs.Queue(
            self, "BatchTriggerDlq",
            queue_name=config.resource_name("batch-trigger-dlq"),
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=messaging_key,
            retention_period=Duration.days(14),
            enforce_ssl=True,
        )
        batch = compute.batch
        # The state machine runs the batch processor; the trigger only starts it per upload.
        self.orchestration = BatchOrchestration(
            self, "Orchestration", config=config, cluster=compute.cluster,
            task_definition=batch.task_definition,
            subnets=ec2.SubnetSelection(subnet_group_name=PRIVATE), security_group=app_sg,
            topic=messaging.job_notifications,
            dead_letter_queue=messaging.batch_dead_letter_queue,
            messaging_key=messaging_key, logs_key=logs_key,
        )
        self.batch_trigger = VpcFunction(
            self, "BatchTrigger", name="batch-trigger", handler=BATCH_TRIGGER_HANDLER,
            environment=batch_trigger_environment({
                "STATE_MACHINE_ARN": self.orchestration.state_machine.state_machine_arn,
            }),
            reserved_concurrency=20, timeout=Duration.seconds(60),
            # A failed start raises: Lambda retries the event twice, then dead-letters it.
            dead_letter_queue=self.trigger_dlq, retry_attempts=2, **common,
        ).function
        self.orchestration.state_machine.grant_start_execution(self.batch_trigger)
        self._allow_upload_head(config)
        messaging_key.grant_encrypt_decrypt(self.batch_trigger)

        UploadTrigger(
            self, "UploadTrigger", config=config, function=self.batch_trigger,
            dead_letter_queue=self.trigger_dlq,
        )

    def _allow_upload_head(self, config: EnvConfig) -> None:
        # HeadObject needs s3:GetObject and nothing from KMS: it returns metadata only and
        # never decrypts the object's data key.
        self.batch_trigger.add_to_role_policy(iam.PolicyStatement(
            actions=["s3:GetObject"],
            resources=[f"arn:aws:s3:::{config.bucket_name}/{UPLOADS_PREFIX}*"],
        ))
