"""Design section 7, the two Lambda functions, built from the application's own source.

The code asset (`textnlp_infra.lambda_asset`) is the `textnlp` package plus the pure-Python
distributions its handlers need beyond the runtime (PyJWT), assembled offline at synthesis.
The handlers (`textnlp.deployment.AUTHORIZER_HANDLER`, `BATCH_TRIGGER_HANDLER`) import only the
standard library, those distributions, boto3 (part of the Lambda runtime) and `textnlp` modules
that need nothing else; `infra/tests/test_lambda_assets.py` imports them from the synthesised
asset in a bare interpreter.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from textnlp_infra.checkov import skip_checks
from textnlp_infra.config import EnvConfig
from textnlp_infra.lambda_asset import build_lambda_asset
from textnlp_infra.retention import retention_days


def application_code() -> lambda_.Code:
    return lambda_.Code.from_asset(str(build_lambda_asset()))


class VpcFunction(Construct):
    """A Python Lambda in the private subnets: own log group, KMS-encrypted environment,
    X-Ray tracing and a concurrency ceiling. Its environment is exactly `environment`: each
    handler declares what it reads. `retry_attempts` bounds Lambda's own retries of a failed
    asynchronous invocation (before `dead_letter_queue`)."""

    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig, name: str, handler: str,
        code: lambda_.Code, vpc: ec2.IVpc, security_group: ec2.ISecurityGroup,
        key: kms.IKey, logs_key: kms.IKey, environment: dict[str, str],
        reserved_concurrency: int, timeout: Duration,
        dead_letter_queue: sqs.IQueue | None = None, retry_attempts: int | None = None,
    ) -> None:
        super().__init__(scope, id_)
        function_name = f"{config.name}-{name}"
        log_group = logs.LogGroup(
            self, "Logs",
            log_group_name=f"/aws/lambda/{function_name}",
            retention=retention_days(config.compute.log_retention_days),
            encryption_key=logs_key,
        )
        self.function = lambda_.Function(
            self, "Function",
            function_name=function_name,
            runtime=lambda_.Runtime.PYTHON_3_12,
            handler=handler,
            code=code,
            memory_size=512,
            timeout=timeout,
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_group_name="private"),
            security_groups=[security_group],
            environment=environment,
            environment_encryption=key,
            tracing=lambda_.Tracing.ACTIVE,
            reserved_concurrent_executions=reserved_concurrency,
            log_group=log_group,
            dead_letter_queue=dead_letter_queue,
            retry_attempts=retry_attempts,
        )
        self.role: iam.IRole = self.function.role  # type: ignore[assignment]


def authorizer_skips(function: lambda_.Function) -> None:
    skip_checks(
        function,
        ("CKV_AWS_116", "Invoked synchronously by API Gateway; a DLQ only ever receives "
         "failed asynchronous invocations."),
    )
