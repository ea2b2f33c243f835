"""Design section 1, network: the VPC, its four subnet tiers, security groups and endpoints."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack, Tags
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from textnlp_infra.checkov import skip_checks
from textnlp_infra.config import EnvConfig
from textnlp_infra.retention import retention_days

PUBLIC, PRIVATE, DATABASE, ISOLATED = "public", "private", "database", "isolated"


class SecurityGroups:
    """The design's five security groups and exactly the ingress it lists."""

    def __init__(self, scope: Construct, vpc: ec2.IVpc, config: EnvConfig) -> None:
        def group(id_: str, name: str, description: str) -> ec2.SecurityGroup:
            sg = ec2.SecurityGroup(
                scope, id_, vpc=vpc, security_group_name=f"{config.name}-{name}",
                description=description, allow_all_outbound=True,
            )
            Tags.of(sg).add("Name", f"{config.name}-{name}")
            return sg

        self.alb = group("AlbSg", "alb-sg", "ALB-SG: HTTP/HTTPS from anywhere")
        self.api = group("ApiSg", "api-sg", "API-SG: application tier, reachable from the ALB only")
        self.db = group("DbSg", "db-sg", "DB-SG: PostgreSQL from the application tier")
        self.cache = group("CacheSg", "cache-sg", "Cache-SG: Redis from the application tier")
        self.model = group("ModelSg", "model-sg", "Model-SG: inference from the application tier")

        self.alb.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS from anywhere")
        self.alb.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(80), "HTTP, redirected")
        self.api.add_ingress_rule(
            self.alb, ec2.Port.tcp(config.compute.api_port), "API from ALB-SG only"
        )
        self.db.add_ingress_rule(self.api, ec2.Port.tcp(5432), "PostgreSQL from API-SG")
        self.cache.add_ingress_rule(self.api, ec2.Port.tcp(6379), "Redis from API-SG")
        self.model.add_ingress_rule(self.api, ec2.Port.tcp(443), "Inference from API-SG")
        skip_checks(
            self.alb,
            ("CKV_AWS_260", "Design: ALB-SG admits port 80 from 0.0.0.0/0; the listener only "
             "redirects it to HTTPS."),
        )


class NetworkStack(Stack):
    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig, logs_key: kms.IKey,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        net = config.network
        self.vpc = ec2.Vpc(
            self, "Vpc",
            vpc_name=config.name,
            ip_addresses=ec2.IpAddresses.cidr(net.cidr),
            max_azs=3,
            nat_gateways=net.nat_gateways,
            # Groups in the design's order; PRIVATE_ISOLATED twice: databases and SageMaker
            # both live without a route to the internet.
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name=PUBLIC, subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24
                ),
                ec2.SubnetConfiguration(
                    name=PRIVATE, subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=24
                ),
                ec2.SubnetConfiguration(
                    name=DATABASE, subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24
                ),
                ec2.SubnetConfiguration(
                    name=ISOLATED, subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24
                ),
            ],
            restrict_default_security_group=False,
        )
        self._pin_subnet_cidrs(config)
        self._add_flow_logs(config, logs_key)
        self.security_groups = SecurityGroups(self, self.vpc, config)
        self._add_endpoints(config)

    def _pin_subnet_cidrs(self, config: EnvConfig) -> None:
        # The L2 allocator packs subnets contiguously (10.0.0.0/24, 10.0.1.0/24, ...); the design
        # fixes each subnet's range, so the L1 CIDRs are set to the design's values.
        net = config.network
        tiers = {
            PUBLIC: net.public_cidrs, PRIVATE: net.private_cidrs,
            DATABASE: net.database_cidrs, ISOLATED: net.isolated_cidrs,
        }
        for tier, cidrs in tiers.items():
            subnets = self.vpc.select_subnets(subnet_group_name=tier).subnets
            for subnet, cidr in zip(subnets, cidrs, strict=True):
                cfn_subnet = subnet.node.default_child
                assert isinstance(cfn_subnet, ec2.CfnSubnet)
                cfn_subnet.cidr_block = cidr
            if tier == PUBLIC:
                for subnet in subnets:
                    # Public subnets hold only the ALB and NAT gateways, which get their own
                    # addresses; instances launched there must not get a public IP silently.
                    cfn_subnet = subnet.node.default_child
                    assert isinstance(cfn_subnet, ec2.CfnSubnet)
                    cfn_subnet.map_public_ip_on_launch = False

    def _add_flow_logs(self, config: EnvConfig, logs_key: kms.IKey) -> None:
        group = logs.LogGroup(
            self, "FlowLogs",
            log_group_name=f"/vpc/{config.name}/flow-logs",
            retention=retention_days(config.network.flow_log_retention_days),
            encryption_key=logs_key,
        )
        role = iam.Role(
            self, "FlowLogsRole", assumed_by=iam.ServicePrincipal("vpc-flow-logs.amazonaws.com")
        )
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(group, role),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )

    def _add_endpoints(self, config: EnvConfig) -> None:
        """Isolated subnets (SageMaker) reach AWS APIs through endpoints, never the internet."""
        isolated = ec2.SubnetSelection(subnet_group_name=ISOLATED)
        self.vpc.add_gateway_endpoint(
            "S3Endpoint",
            service=ec2.GatewayVpcEndpointAwsService.S3,
            subnets=[isolated, ec2.SubnetSelection(subnet_group_name=PRIVATE)],
        )
        endpoint_sg = ec2.SecurityGroup(
            self, "EndpointSg", vpc=self.vpc, security_group_name=f"{config.name}-endpoint-sg",
            description="Interface endpoints: HTTPS from inside the VPC",
            allow_all_outbound=False,
        )
        endpoint_sg.add_ingress_rule(
            ec2.Peer.ipv4(config.network.cidr), ec2.Port.tcp(443), "HTTPS from the VPC"
        )
        services = {
            "SageMakerRuntime": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_RUNTIME,
            "BedrockRuntime": ec2.InterfaceVpcEndpointAwsService.BEDROCK_RUNTIME,
            "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
            "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
        }
        for id_, service in services.items():
            self.vpc.add_interface_endpoint(
                f"{id_}Endpoint", service=service, subnets=isolated,
                security_groups=[endpoint_sg], private_dns_enabled=True,
            )
