"""KMS keys: one per kind of data, so a key policy names only the services that need it."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from textnlp_infra.config import EnvConfig


class Keys(Construct):
    def __init__(self, scope: Construct, id_: str, *, config: EnvConfig) -> None:
        super().__init__(scope, id_)
        removal = RemovalPolicy.RETAIN if config.is_production else RemovalPolicy.DESTROY

        def key(id_: str, purpose: str) -> kms.Key:
            return kms.Key(
                self, id_,
                alias=f"alias/{config.name}-{purpose}",
                description=f"TextNLP {config.environment.value}: {purpose}",
                enable_key_rotation=True,
                removal_policy=removal,
            )

        self.data = key("DataKey", "data")
        self.messaging = key("MessagingKey", "messaging")
        self.logs = key("LogsKey", "logs")
        self.secrets = key("SecretsKey", "secrets")

        stack = Stack.of(self)
        # CloudWatch Logs encrypts log groups only when the key policy lets the regional
        # service principal use it, scoped to this account's log groups.
        self.logs.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                         "kms:Describe*"],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn":
                            f"arn:aws:logs:{stack.region}:{stack.account}:log-group:*"
                    }
                },
            )
        )
        # Alarms (CloudWatch) and rules (EventBridge) publish to encrypted SNS topics.
        self.messaging.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[
                    iam.ServicePrincipal("cloudwatch.amazonaws.com"),
                    iam.ServicePrincipal("events.amazonaws.com"),
                ],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )
