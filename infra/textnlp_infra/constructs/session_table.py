"""The design's "DynamoDB (Session Store)": refresh-token families and revoked access tokens.

The API writes and reads it (`textnlp.adapters.sessions.dynamodb`), the gateway's authorizer
reads it (`textnlp.lambdas.authorizer`), so a logged-out or revoked token is refused at the
gateway. The item layout is the app's (`textnlp.auth.session_items`): partition key `pk`, TTL
attribute `expires_at`, so expired sessions go without a purge job. Its name is the app's
default for the environment (`textnlp.deployment.session_table_name`), and both the API's
containers and the authorizer are told it through the settings schema (`session_environment`).
Permissions name the table by ARN pattern, so the roles (security stack) need no reference to
this stack, as for the other data stores.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct
from textnlp.auth.session_items import PARTITION_KEY, TTL_ATTRIBUTE
from textnlp.config import env_name
from textnlp.deployment import session_table_name

from textnlp_infra.config import EnvConfig

#: What the app's store calls (`DynamoDbSessionStore`; infra/tests/test_role_calls.py runs it
#: against the synthesised role), and what the authorizer calls.
APP_ACTIONS = (
    "dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"
)
AUTHORIZER_ACTIONS = ("dynamodb:BatchGetItem",)


def table_name(config: EnvConfig) -> str:
    return session_table_name(config.environment.value)


def table_arn(config: EnvConfig, region: str, account: str) -> str:
    return f"arn:aws:dynamodb:{region}:{account}:table/{table_name(config)}"


def session_environment(config: EnvConfig) -> dict[str, str]:
    """The settings that point the API and the authorizer at the table."""
    return {
        env_name("auth", "session_store"): "dynamodb",
        env_name("auth", "session_table"): table_name(config),
    }


class SessionTable(Construct):
    def __init__(self, scope: Construct, id_: str, *, config: EnvConfig, key: kms.IKey) -> None:
        super().__init__(scope, id_)
        self.table = dynamodb.Table(
            self, "Table",
            table_name=table_name(config),
            partition_key=dynamodb.Attribute(
                name=PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            # Reads follow API traffic (every authenticated request): no capacity to plan.
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute=TTL_ATTRIBUTE,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
            # As the other data stores: kept in production (losing it logs everyone out and
            # forgets revocations), removed with the stack elsewhere.
            deletion_protection=config.is_production,
            removal_policy=RemovalPolicy.RETAIN if config.is_production
            else RemovalPolicy.DESTROY,
        )


def allow_session_reads(
    function: lambda_.IFunction, config: EnvConfig, *, region: str, account: str,
    data_key: kms.IKey,
) -> None:
    """The authorizer's read of the table (and of the key the table is encrypted with)."""
    function.add_to_role_policy(iam.PolicyStatement(
        actions=list(AUTHORIZER_ACTIONS), resources=[table_arn(config, region, account)],
    ))
    function.add_to_role_policy(iam.PolicyStatement(
        actions=["kms:Decrypt"], resources=[data_key.key_arn],
        conditions={"StringEquals": {"kms:ViaService": f"dynamodb.{region}.amazonaws.com"}},
    ))
