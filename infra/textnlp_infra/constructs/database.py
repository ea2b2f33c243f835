"""Design section 4, the Aurora PostgreSQL cluster."""

from __future__ import annotations

from aws_cdk import Duration, Fn, RemovalPolicy, SecretValue
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as sm
from constructs import Construct

from textnlp_infra.config import EnvConfig
from textnlp_infra.retention import retention_days


def _engine_version(version: str) -> rds.AuroraPostgresEngineVersion:
    """CDK's constant for ``version`` (``"15.10"`` -> ``VER_15_10``)."""
    constant = getattr(rds.AuroraPostgresEngineVersion, "VER_" + version.replace(".", "_"), None)
    if constant is None:
        raise ValueError(f"unknown Aurora PostgreSQL version {version!r}")
    return constant  # type: ignore[no-any-return]


def _instance_type(db_class: str) -> ec2.InstanceType:
    # CDK prefixes "db." itself.
    return ec2.InstanceType(db_class.removeprefix("db."))


class AuroraDatabase(Construct):
    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig, vpc: ec2.IVpc,
        security_group: ec2.ISecurityGroup, key: kms.IKey, logs_key: kms.IKey,
        master_secret: sm.ISecret, secrets_key: kms.IKey,
    ) -> None:
        super().__init__(scope, id_)
        aurora = config.aurora
        identifier = config.name
        removal = RemovalPolicy.SNAPSHOT if config.is_production else RemovalPolicy.DESTROY

        # Created here, not by RDS, so that it has a retention and our key; RDS then writes to
        # it. (CDK's cloudwatchLogsRetention would add a custom-resource Lambda instead.)
        log_group = logs.LogGroup(
            self, "PostgresqlLogs",
            log_group_name=f"/aws/rds/cluster/{identifier}/postgresql",
            retention=retention_days(config.compute.log_retention_days),
            encryption_key=logs_key,
            removal_policy=removal if removal is not RemovalPolicy.SNAPSHOT
            else RemovalPolicy.RETAIN,
        )

        def instance(id_: str, db_class: str, tier: int) -> rds.IClusterInstance:
            return rds.ClusterInstance.provisioned(
                id_,
                instance_type=_instance_type(db_class),
                promotion_tier=tier,
                enable_performance_insights=True,
                performance_insight_encryption_key=key,
                auto_minor_version_upgrade=True,
                publicly_accessible=False,
            )

        self.cluster = rds.DatabaseCluster(
            self, "Cluster",
            engine=rds.DatabaseClusterEngine.aurora_postgres(
                version=_engine_version(aurora.engine_version)
            ),
            cluster_identifier=identifier,
            credentials=rds.Credentials.from_secret(master_secret),
            default_database_name=aurora.database_name,
            writer=instance("Writer", aurora.writer_class, 0),
            readers=[
                instance(f"Reader{tier}", db_class, tier)
                for tier, db_class in enumerate(aurora.reader_classes, start=1)
            ],
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_group_name="database"),
            security_groups=[security_group],
            backup=rds.BackupProps(
                retention=Duration.days(aurora.backup_retention_days),
                preferred_window=aurora.backup_window,
            ),
            preferred_maintenance_window=aurora.maintenance_window,
            cloudwatch_logs_exports=["postgresql"],
            deletion_protection=aurora.deletion_protection,
            storage_encrypted=True,
            storage_encryption_key=key,
            iam_authentication=True,
            copy_tags_to_snapshot=True,
            monitoring_interval=Duration.seconds(60),
            removal_policy=removal,
        )
        self.cluster.node.add_dependency(log_group)

        # The design's `database/connection-string`: everything but the password, which the
        # application reads from `database/master-password`.
        self.connection_string = sm.Secret(
            self, "ConnectionString",
            secret_name=f"{config.secrets_prefix}/database/connection-string",
            encryption_key=secrets_key,
            secret_string_value=SecretValue.unsafe_plain_text(Fn.join("", [
                f"postgresql://{aurora.master_username}@",
                self.cluster.cluster_endpoint.socket_address,
                f"/{aurora.database_name}?sslmode=require",
            ])),
        )
