"""Design section 7, the two Lambda functions, built from the application's own source.

The code asset is the repository's `src/` directory as it stands (no bundling, so no Docker):
the handlers are `textnlp.lambdas.authorizer.handler` and `textnlp.lambdas.batch_trigger.handler`.
They may import only the standard library, boto3 (part of the Lambda runtime) and `textnlp`
modules that need nothing else; a third-party dependency would need a layer.
"""

from __future__ import annotations

from pathlib import Path

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
from textnlp_infra.retention import retention_days

SOURCE_DIR = Path(__file__).resolve().parents[3] / "src"
AUTHORIZER_HANDLER = "textnlp.lambdas.authorizer.handler"
BATCH_TRIGGER_HANDLER = "textnlp.lambdas.batch_trigger.handler"
# Everything under src/ that is not Python source: caches, build metadata, local data.
SOURCE_EXCLUDES = ["**/__pycache__", "**/*.pyc", "*.egg-info", "**/.textnlp", "**/*.gguf"]


def application_code() -> lambda_.Code:
    if not SOURCE_DIR.is_dir():
        raise FileNotFoundError(f"Lambda source {SOURCE_DIR} is missing; run from a checkout")
    return lambda_.Code.from_asset(str(SOURCE_DIR), exclude=SOURCE_EXCLUDES)


class VpcFunction(Construct):
    """A Python Lambda in the private subnets: own log group, KMS-encrypted environment,
    X-Ray tracing and a concurrency ceiling."""

    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig, name: str, handler: str,
        code: lambda_.Code, vpc: ec2.IVpc, security_group: ec2.ISecurityGroup,
        key: kms.IKey, logs_key: kms.IKey, environment: dict[str, str],
        reserved_concurrency: int, timeout: Duration,
        dead_letter_queue: sqs.IQueue | None = None,
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
            environment={"ENVIRONMENT": config.environment.value, **environment},
            environment_encryption=key,
            tracing=lambda_.Tracing.ACTIVE,
            reserved_concurrent_executions=reserved_concurrency,
            log_group=log_group,
            dead_letter_queue=dead_letter_queue,
        )
        self.role: iam.IRole = self.function.role  # type: ignore[assignment]


def authorizer_skips(function: lambda_.Function) -> None:
    skip_checks(
        function,
        ("CKV_AWS_116", "Invoked synchronously by API Gateway; a DLQ only ever receives "
         "failed asynchronous invocations."),
    )
