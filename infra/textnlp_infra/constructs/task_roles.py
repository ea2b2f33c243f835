"""Design section 9, the two ECS roles, narrowed from the design's `Resource: *` to least privilege.

Resources are named by pattern (`textnlp-<env>` bucket, the environment's own queues,
`/ecs/textnlp-*` log groups, `/textnlp/<env>/*` secrets, the `textnlp-<env>-sessions` table)
so the roles exist
before the resources they reach, and other stacks import them immutably (see `imports.py`): the
permissions are all here, in one place.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from textnlp_infra.checkov import skip_checks
from textnlp_infra.config import APP_QUEUES, EnvConfig
from textnlp_infra.constructs.session_table import APP_ACTIONS, table_arn

#: Where jobs keep their files (``textnlp.adapters.storage.Keys.BATCH_JOBS``).
BATCH_JOBS_PREFIX = "generated/batch-jobs/"


class TaskRoles(Construct):
    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig,
        secrets_key: kms.IKey, data_key: kms.IKey, messaging_key: kms.IKey,
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        region, account = stack.region, stack.account
        secrets_arn = (
            f"arn:aws:secretsmanager:{region}:{account}:secret:{config.secrets_prefix}/*"
        )

        self.execution = iam.Role(
            self, "TaskExecutionRole",
            role_name=f"{config.name}-ecs-task-execution",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="Pulls TextNLP images, writes container logs, injects secrets",
        )
        execution_policy = iam.Policy(
            self, "TaskExecutionPolicy",
            statements=[
                iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]),
                iam.PolicyStatement(
                    actions=["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer",
                             "ecr:BatchGetImage"],
                    resources=[f"arn:aws:ecr:{region}:{account}:repository/textnlp-*"],
                ),
                iam.PolicyStatement(
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[f"arn:aws:logs:{region}:{account}:log-group:/ecs/textnlp-*:*"],
                ),
                iam.PolicyStatement(
                    actions=["secretsmanager:GetSecretValue"], resources=[secrets_arn]
                ),
                iam.PolicyStatement(
                    actions=["kms:Decrypt"],
                    resources=[secrets_key.key_arn, data_key.key_arn],
                ),
            ],
        )
        execution_policy.attach_to_role(self.execution)
        skip_checks(
            execution_policy,
            ("CKV_AWS_107", "ecr:GetAuthorizationToken has no resource-level permissions; "
             "AWS requires Resource '*' for it (design section 9)."),
        )

        self.application = iam.Role(
            self, "TaskRole",
            role_name=f"{config.name}-ecs-task",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="What TextNLP's API, workers and batch processor may do",
        )
        bucket_arn = f"arn:aws:s3:::{config.bucket_name}"
        model_arns = [
            f"arn:aws:bedrock:{region}::foundation-model/{model}"
            for model in config.model_serving.bedrock_models
        ]
        batch_jobs_arn = f"arn:aws:bedrock:{region}:{account}:model-invocation-job/*"
        self.bedrock_batch = self._bedrock_batch_role(config, bucket_arn, data_key, batch_jobs_arn)
        batch_role_arn = self.bedrock_batch.role_arn
        application_policy = iam.Policy(
            self, "TaskPolicy",
            statements=[
                iam.PolicyStatement(
                    actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                    resources=[f"{bucket_arn}/*"],
                ),
                # Resuming a job lists what it already wrote (DESIGN.md, Jobs).
                iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket_arn]),
                # A generated file the lifecycle moved to Glacier is restored when asked for.
                iam.PolicyStatement(
                    actions=["s3:RestoreObject"], resources=[f"{bucket_arn}/generated/*"]
                ),
                iam.PolicyStatement(
                    actions=["sagemaker:InvokeEndpoint",
                             "sagemaker:InvokeEndpointWithResponseStream"],
                    resources=[
                        f"arn:aws:sagemaker:{region}:{account}:endpoint/{name}"
                        for name in config.model_serving.endpoint_names
                    ],
                ),
                iam.PolicyStatement(
                    actions=["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"],
                    resources=model_arns,
                ),
                # Provider batch jobs (``provider_batch``): Bedrock batch inference, run by Bedrock
                # as the batch role below, which the workers pass to it and to nothing else.
                iam.PolicyStatement(
                    actions=["bedrock:CreateModelInvocationJob"],
                    resources=[*model_arns, batch_jobs_arn],
                ),
                iam.PolicyStatement(
                    actions=["bedrock:GetModelInvocationJob", "bedrock:StopModelInvocationJob"],
                    resources=[batch_jobs_arn],
                ),
                iam.PolicyStatement(
                    actions=["iam:PassRole"],
                    resources=[batch_role_arn],
                    conditions={"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}},
                ),
                # A worker that died between creating a part's job and recording it looks the
                # job up by its name (the action has no resource-level permissions).
                iam.PolicyStatement(
                    actions=["bedrock:ListModelInvocationJobs"], resources=["*"]
                ),
                # Provider batch jobs of SageMaker-hosted models: batch transform with the
                # endpoint's own model (which SageMaker runs as that model's execution role, so
                # no role is passed), jobs named textnlp-<job>-part-<n>.
                iam.PolicyStatement(
                    actions=["sagemaker:CreateTransformJob", "sagemaker:DescribeTransformJob",
                             "sagemaker:StopTransformJob", "sagemaker:AddTags"],
                    resources=[f"arn:aws:sagemaker:{region}:{account}:transform-job/textnlp-*"],
                ),
                iam.PolicyStatement(
                    actions=["sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig",
                             "sagemaker:DescribeInferenceComponent"],
                    resources=[
                        *(f"arn:aws:sagemaker:{region}:{account}:endpoint/{name}"
                          for name in config.model_serving.endpoint_names),
                        *(f"arn:aws:sagemaker:{region}:{account}:endpoint-config/{name}"
                          for name in _endpoint_config_names(config)),
                        f"arn:aws:sagemaker:{region}:{account}:inference-component/*",
                    ],
                ),
                iam.PolicyStatement(
                    actions=["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage",
                             "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes",
                             "sqs:GetQueueUrl"],
                    resources=[f"arn:aws:sqs:{region}:{account}:{config.resource_name(queue)}"
                               for queue in APP_QUEUES],
                ),
                # The session store: logins, refreshes, logouts and every token check.
                iam.PolicyStatement(
                    actions=list(APP_ACTIONS), resources=[table_arn(config, region, account)]
                ),
                iam.PolicyStatement(
                    actions=["sns:Publish"],
                    resources=[f"arn:aws:sns:{region}:{account}:{config.name}-*"],
                ),
                iam.PolicyStatement(
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=[data_key.key_arn, messaging_key.key_arn, secrets_key.key_arn],
                ),
                iam.PolicyStatement(
                    actions=["secretsmanager:GetSecretValue"], resources=[secrets_arn]
                ),
                # The stream router answers WebSocket clients through the management API
                # (POST) and closes a revoked caller's socket (DELETE).
                iam.PolicyStatement(
                    actions=["execute-api:ManageConnections"],
                    resources=[
                        f"arn:aws:execute-api:{region}:{account}:*/"
                        f"{config.api.stage_name}/{method}/@connections/*"
                        for method in ("POST", "DELETE")
                    ],
                ),
                iam.PolicyStatement(
                    actions=["cloudwatch:PutMetricData"],
                    resources=["*"],
                    conditions={
                        "StringEquals": {
                            "cloudwatch:namespace": config.monitoring.metrics_namespace
                        }
                    },
                ),
                iam.PolicyStatement(
                    actions=["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                    resources=["*"],
                ),
            ],
        )
        application_policy.attach_to_role(self.application)
        skip_checks(
            application_policy,
            ("CKV_AWS_111", "cloudwatch:PutMetricData and xray:Put* have no resource-level "
             "permissions; the metric one is narrowed by a namespace condition."),
        )

    def _bedrock_batch_role(
        self, config: EnvConfig, bucket_arn: str, data_key: kms.IKey, batch_jobs_arn: str
    ) -> iam.Role:
        """The service role Bedrock assumes to run a job's batch inference: it reads the
        inputs and writes the outputs of ``generated/batch-jobs/<job>/provider/`` in the
        platform's bucket, for this account's invocation jobs only (confused deputy)."""
        stack = Stack.of(self)
        role = iam.Role(
            self, "BedrockBatchRole",
            role_name=bedrock_batch_role_name(config),
            assumed_by=iam.ServicePrincipal(
                "bedrock.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": batch_jobs_arn},
                },
            ),
            description="Bedrock batch inference of TextNLP provider batch jobs",
        )
        provider = f"{bucket_arn}/{BATCH_JOBS_PREFIX}*/provider"
        policy = iam.Policy(
            self, "BedrockBatchPolicy",
            statements=[
                iam.PolicyStatement(actions=["s3:GetObject"], resources=[f"{provider}/input/*"]),
                iam.PolicyStatement(actions=["s3:PutObject"], resources=[f"{provider}/output/*"]),
                iam.PolicyStatement(
                    actions=["s3:ListBucket"],
                    resources=[bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{BATCH_JOBS_PREFIX}*"]}},
                ),
                iam.PolicyStatement(
                    actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[data_key.key_arn]
                ),
            ],
        )
        policy.attach_to_role(role)
        return role


def _endpoint_config_names(config: EnvConfig) -> tuple[str, ...]:
    """The design endpoint's config, and those named after their endpoint (`model_serving`)."""
    serving = config.model_serving
    return (serving.endpoint_config_name, *serving.endpoint_names[1:])


def bedrock_batch_role_name(config: EnvConfig) -> str:
    """The Bedrock batch role's name; the workers are given its ARN (``containers``)."""
    return f"{config.name}-bedrock-batch"


def bedrock_batch_role_arn(config: EnvConfig) -> str:
    """A plain string (the account is in the config), so the container environment holds no
    token to resolve."""
    return f"arn:aws:iam::{config.account}:role/{bedrock_batch_role_name(config)}"
