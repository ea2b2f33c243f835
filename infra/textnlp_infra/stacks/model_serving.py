"""Design sections 3 and 12, model serving: SageMaker models and their endpoints.

Each model is hosted one of three ways (`config.ModelServingConfig`; infra/README.md says when
each fits):

- **instances** (`variants`): the design's `textnlp-multi-model` endpoint, one production
  variant per model on always-on GPU instances, in the isolated subnets behind Model-SG;
  SageMaker itself fetches the model archives from `s3://textnlp-<env>/models/...` (through the
  S3 gateway endpoint) and the inference image from AWS's registry, so the containers need no
  network at all (network isolation).
- **serverless** (`serverless`): an endpoint per model with a `ServerlessConfig` (memory,
  maximum concurrency) and no instances. Serverless inference supports neither VPC
  configuration nor network isolation (nor GPUs), so these models are created without either:
  the container runs in SageMaker's own network, and reaches only what its execution role
  allows (the model archive, its logs).
- **multi-model** (`multi_model`): an endpoint whose model is in `MultiModel` mode, with an S3
  prefix as its model data: each archive below the prefix is a model, loaded on its first
  request (`TargetModel`), on shared instances in the isolated subnets like the first kind.

Bedrock needs no infrastructure: its invoke permission sits on the application role.

Provider batch jobs of these models run as SageMaker batch transform jobs of the variant's
model: the execution role also reads and writes the jobs' provider files.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from textnlp_infra.checkov import skip_checks
from textnlp_infra.config import EnvConfig, MultiModelEndpoint, ServerlessModel
from textnlp_infra.constructs.task_roles import BATCH_JOBS_PREFIX
from textnlp_infra.imports import imported_key
from textnlp_infra.stacks.network import ISOLATED, NetworkStack
from textnlp_infra.stacks.security import SecurityStack

#: Instance families whose every size has NVMe instance storage, beyond those named with a
#: "d" (g4dn, p4d, m5d, c6gd...; `has_instance_storage`).
_NVME_FAMILIES = frozenset({"g5", "g6", "g6e", "p5", "p5e", "p5en", "trn1", "trn1n", "trn2", "dl1"})
_FAMILY = re.compile(r"ml\.(?P<family>[a-z]+\d+(?P<attributes>[a-z-]*))\.")


def has_instance_storage(instance_type: str) -> bool:
    """Whether SageMaker hosts `instance_type` on local NVMe storage, which the instance's own
    hardware encrypts: CreateEndpointConfig fails when a `KmsKeyId` is asked for with such an
    instance ("You can't request a KmsKeyId when using an instance type with local storage")."""
    match = _FAMILY.match(instance_type)
    if match is None:
        raise ValueError(f"{instance_type!r} is no SageMaker instance type (ml.<family>.<size>)")
    return match["family"] in _NVME_FAMILIES or "d" in match["attributes"]


def volume_key(key_arn: str, instance_types: Iterable[str]) -> str | None:
    """The KMS key of an endpoint config's storage volumes: None when any of its instances has
    instance storage (encrypted by its hardware; SageMaker refuses a key for it)."""
    return None if any(has_instance_storage(t) for t in instance_types) else key_arn


def _skip_volume_key_check(endpoint_config: sagemaker.CfnEndpointConfig) -> None:
    skip_checks(endpoint_config, (
        "CKV_AWS_98", "its instances have NVMe instance storage, encrypted by the instance's "
        "hardware; SageMaker refuses a KmsKeyId for them (CreateEndpointConfig)"))


class ModelServingStack(Stack):
    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig, network: NetworkStack,
        security: SecurityStack, **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        serving = config.model_serving
        data_key = imported_key(self, "DataKey", security.keys.data)
        role = self._execution_role(config, data_key.key_arn)
        subnets = network.vpc.select_subnets(subnet_group_name=ISOLATED)
        vpc_config = sagemaker.CfnModel.VpcConfigProperty(
            security_group_ids=[network.security_groups.model.security_group_id],
            subnets=subnets.subnet_ids,
        )
        self.models: dict[str, sagemaker.CfnModel] = {}
        for variant in serving.variants:
            self.models[variant.name] = self._model(
                f"Model{_pascal(variant.name)}", variant.model_name, role,
                image=serving.inference_image,
                model_data_url=f"s3://{config.bucket_name}/{variant.model_data_key}",
                environment={"HF_MODEL_ID": "/opt/ml/model", "SM_NUM_GPUS": "1"},
                vpc_config=vpc_config,
            )

        key = volume_key(data_key.key_arn, (v.instance_type for v in serving.variants))
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self, "EndpointConfig",
            endpoint_config_name=serving.endpoint_config_name,
            kms_key_id=key,
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=variant.name,
                    model_name=self.models[variant.name].attr_model_name,
                    initial_instance_count=variant.instance_count,
                    instance_type=variant.instance_type,
                    initial_variant_weight=variant.weight,
                )
                for variant in serving.variants
            ],
        )
        if key is None:
            _skip_volume_key_check(self.endpoint_config)
        self.endpoint = sagemaker.CfnEndpoint(
            self, "Endpoint",
            endpoint_name=serving.endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
        )
        self.endpoints = {serving.endpoint_name: self.endpoint}
        for serverless in serving.serverless:
            self._serverless_endpoint(config, serverless, role)
        for shared in serving.multi_model:
            self._multi_model_endpoint(config, shared, role, data_key.key_arn, vpc_config)

    def _model(
        self, id_: str, name: str, role: iam.Role, *, image: str, model_data_url: str,
        environment: dict[str, str] | None = None, mode: str | None = None,
        vpc_config: sagemaker.CfnModel.VpcConfigProperty | None,
    ) -> sagemaker.CfnModel:
        model = sagemaker.CfnModel(
            self, id_,
            model_name=name,
            execution_role_arn=role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image, model_data_url=model_data_url, environment=environment, mode=mode,
            ),
            vpc_config=vpc_config,
            # Network isolation comes with the VPC: serverless inference supports neither.
            enable_network_isolation=vpc_config is not None,
        )
        model.node.add_dependency(role)
        return model

    def _serverless_endpoint(
        self, config: EnvConfig, serverless: ServerlessModel, role: iam.Role,
    ) -> None:
        """No VPC config and no network isolation: serverless endpoints refuse both. No KMS key
        either: serverless endpoint configs take none (SageMaker encrypts with its own key)."""
        id_ = _pascal(serverless.name)
        model = self._model(
            f"Serverless{id_}Model", f"{serverless.name}-model", role,
            image=serverless.image or config.model_serving.cpu_inference_image,
            model_data_url=f"s3://{config.bucket_name}/{serverless.model_data_key}",
            environment={"HF_MODEL_ID": "/opt/ml/model"}, vpc_config=None,
        )
        endpoint_config = sagemaker.CfnEndpointConfig(
            self, f"Serverless{id_}EndpointConfig",
            endpoint_config_name=serverless.endpoint_name,
            production_variants=[sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                variant_name=serverless.name,
                model_name=model.attr_model_name,
                serverless_config=sagemaker.CfnEndpointConfig.ServerlessConfigProperty(
                    memory_size_in_mb=serverless.memory_size_mb,
                    max_concurrency=serverless.max_concurrency,
                ),
            )],
        )
        skip_checks(endpoint_config, (
            "CKV_AWS_98", "Serverless endpoint configs take no KMS key: SageMaker encrypts "
            "their storage with an AWS-owned key."))
        self.endpoints[serverless.endpoint_name] = sagemaker.CfnEndpoint(
            self, f"Serverless{id_}Endpoint",
            endpoint_name=serverless.endpoint_name,
            endpoint_config_name=endpoint_config.attr_endpoint_config_name,
        )

    def _multi_model_endpoint(
        self, config: EnvConfig, shared: MultiModelEndpoint, role: iam.Role, key_arn: str,
        vpc_config: sagemaker.CfnModel.VpcConfigProperty,
    ) -> None:
        id_ = _pascal(shared.name)
        model = self._model(
            f"MultiModel{id_}Model", f"{shared.name}-models", role,
            image=shared.image or config.model_serving.cpu_inference_image,
            model_data_url=f"s3://{config.bucket_name}/{shared.model_data_prefix}",
            mode="MultiModel", vpc_config=vpc_config,
        )
        key = volume_key(key_arn, [shared.instance_type])
        endpoint_config = sagemaker.CfnEndpointConfig(
            self, f"MultiModel{id_}EndpointConfig",
            endpoint_config_name=shared.endpoint_name,
            kms_key_id=key,
            production_variants=[sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                variant_name=shared.name,
                model_name=model.attr_model_name,
                initial_instance_count=shared.instance_count,
                instance_type=shared.instance_type,
                initial_variant_weight=1.0,
            )],
        )
        if key is None:
            _skip_volume_key_check(endpoint_config)
        self.endpoints[shared.endpoint_name] = sagemaker.CfnEndpoint(
            self, f"MultiModel{id_}Endpoint",
            endpoint_name=shared.endpoint_name,
            endpoint_config_name=endpoint_config.attr_endpoint_config_name,
        )

    def _execution_role(self, config: EnvConfig, data_key_arn: str) -> iam.Role:
        role = iam.Role(
            self, "ExecutionRole",
            role_name=f"{config.name}-sagemaker-execution",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
        )
        role.add_to_policy(iam.PolicyStatement(
            actions=["s3:GetObject"],
            resources=[f"arn:aws:s3:::{config.bucket_name}/models/*"],
        ))
        # Batch transform of provider batch jobs runs as this role: it reads the parts' input
        # and writes their output under generated/batch-jobs/<job>/provider/.
        provider = f"arn:aws:s3:::{config.bucket_name}/{BATCH_JOBS_PREFIX}*/provider"
        role.add_to_policy(iam.PolicyStatement(
            actions=["s3:GetObject"], resources=[f"{provider}/input/*"],
        ))
        role.add_to_policy(iam.PolicyStatement(
            actions=["s3:PutObject", "s3:AbortMultipartUpload"],
            resources=[f"{provider}/output/*"],
        ))
        role.add_to_policy(iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[f"arn:aws:s3:::{config.bucket_name}"],
            conditions={"StringLike": {"s3:prefix": [f"{BATCH_JOBS_PREFIX}*"]}},
        ))
        role.add_to_policy(iam.PolicyStatement(
            actions=["kms:Decrypt", "kms:GenerateDataKey", "kms:CreateGrant"],
            resources=[data_key_arn],
        ))
        # The inference image lives in AWS's deep-learning-container registry account.
        registry_account = config.model_serving.inference_image.split(".", 1)[0]
        role.add_to_policy(iam.PolicyStatement(
            actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                     "ecr:BatchCheckLayerAvailability"],
            resources=[f"arn:aws:ecr:{self.region}:{registry_account}:repository/*"],
        ))
        role.add_to_policy(iam.PolicyStatement(
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[f"arn:aws:logs:{self.region}:{self.account}:log-group:/aws/sagemaker/*"],
        ))
        # Placing the endpoint's network interfaces in the isolated subnets (VPC config).
        role.add_to_policy(iam.PolicyStatement(
            actions=["ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission",
                     "ec2:DeleteNetworkInterface", "ec2:DeleteNetworkInterfacePermission"],
            resources=[f"arn:aws:ec2:{self.region}:{self.account}:{kind}/*"
                       for kind in ("network-interface", "subnet", "security-group")],
        ))
        role.add_to_policy(iam.PolicyStatement(
            actions=["ec2:DescribeNetworkInterfaces", "ec2:DescribeVpcs",
                     "ec2:DescribeDhcpOptions", "ec2:DescribeSubnets",
                     "ec2:DescribeSecurityGroups"],
            resources=["*"],
        ))
        unscoped = iam.Policy(
            self, "UnscopedActions",
            statements=[iam.PolicyStatement(
                actions=["ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"],
                resources=["*"],
            )],
        )
        unscoped.attach_to_role(role)
        skip_checks(unscoped, ("CKV_AWS_111", "ecr:GetAuthorizationToken and "
                               "cloudwatch:PutMetricData have no resource-level permissions."))
        return role


def _pascal(name: str) -> str:
    """`gpt-j-6b` -> `GptJ6b`: a logical-id part."""
    return name.title().replace("-", "").replace("_", "")
