"""Design section 5, ElastiCache Redis in cluster mode (L1: CDK has no L2 for it)."""

from __future__ import annotations

from aws_cdk import SecretValue
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as sm
from constructs import Construct

from textnlp_infra.config import EnvConfig


class RedisCluster(Construct):
    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig, vpc: ec2.IVpc,
        security_group: ec2.ISecurityGroup, key: kms.IKey, auth_token: sm.ISecret,
    ) -> None:
        super().__init__(scope, id_)
        redis = config.redis
        subnets = vpc.select_subnets(subnet_group_name="database")
        subnet_group = elasticache.CfnSubnetGroup(
            self, "Subnets",
            cache_subnet_group_name=f"{config.name}-redis",
            description="TextNLP Redis: database subnets",
            subnet_ids=subnets.subnet_ids,
        )
        parameters = elasticache.CfnParameterGroup(
            self, "Parameters",
            cache_parameter_group_family=redis.parameter_family,
            description="TextNLP Redis: cluster mode, LRU eviction",
            properties={
                "cluster-enabled": "yes",
                "maxmemory-policy": redis.maxmemory_policy,
                "timeout": str(redis.timeout_s),
                "tcp-keepalive": str(redis.tcp_keepalive_s),
            },
        )
        self.replication_group = elasticache.CfnReplicationGroup(
            self, "ReplicationGroup",
            # `textnlp-<env>-redis`, not the design's `textnlp-redis`: the id is immutable, and
            # renaming a deployed cluster replaces it (its endpoint is another stack's import).
            replication_group_id=f"{config.name}-redis",
            replication_group_description="TextNLP cache, rate limits and sessions",
            engine="redis",
            engine_version=redis.engine_version,
            cache_node_type=redis.node_type,
            num_node_groups=redis.node_groups,
            replicas_per_node_group=redis.replicas_per_node_group,
            automatic_failover_enabled=True,
            multi_az_enabled=True,
            cache_parameter_group_name=parameters.ref,
            cache_subnet_group_name=subnet_group.ref,
            security_group_ids=[security_group.security_group_id],
            at_rest_encryption_enabled=True,
            kms_key_id=key.key_id,
            transit_encryption_enabled=True,
            # A dynamic reference: CloudFormation resolves it at deployment, the template
            # holds only the secret's name.
            auth_token=SecretValue.secrets_manager(auth_token.secret_arn).unsafe_unwrap(),
            snapshot_retention_limit=redis.snapshot_retention_days,
            auto_minor_version_upgrade=True,
        )
