"""Design section 3, model serving: SageMaker models and the `textnlp-multi-model` endpoint.

The endpoint runs in the isolated subnets behind Model-SG; SageMaker itself fetches the model
archives from `s3://textnlp-<env>/models/...` (through the S3 gateway endpoint) and the inference
image from AWS's registry, so the containers need no network at all (network isolation).
Bedrock needs no infrastructure: its invoke permission sits on the application role.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from textnlp_infra.checkov import skip_checks
from textnlp_infra.config import EnvConfig
from textnlp_infra.imports import imported_key
from textnlp_infra.stacks.network import ISOLATED, NetworkStack
from textnlp_infra.stacks.security import SecurityStack


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
        self.models = {}
        for variant in serving.variants:
            model = sagemaker.CfnModel(
                self, f"Model{variant.name.title().replace('-', '')}",
                model_name=variant.model_name,
                execution_role_arn=role.role_arn,
                primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                    image=serving.inference_image,
                    model_data_url=f"s3://{config.bucket_name}/{variant.model_data_key}",
                    environment={"HF_MODEL_ID": "/opt/ml/model", "SM_NUM_GPUS": "1"},
                ),
                vpc_config=vpc_config,
                enable_network_isolation=True,
            )
            model.node.add_dependency(role)
            self.models[variant.name] = model

        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self, "EndpointConfig",
            endpoint_config_name=serving.endpoint_config_name,
            kms_key_id=data_key.key_arn,
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
        self.endpoint = sagemaker.CfnEndpoint(
            self, "Endpoint",
            endpoint_name=serving.endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
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
