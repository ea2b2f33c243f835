"""Design section 11, the DR region's side, in us-west-2: the replica bucket, the backup vault
that Aurora's backups are copied to, and the key of both (and of the replicated secrets).

Deployed before the data stack (S3 refuses a replication rule whose destination does not
exist). The primary region addresses all of them by name and alias, never by cross-region
reference. The failover runbook is in infra/README.md ("Regional recovery").
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_backup as backup
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from textnlp_infra.checkov import skip_checks
from textnlp_infra.config import EnvConfig
from textnlp_infra.constructs.storage import replica_key_alias


class DisasterRecoveryStack(Stack):
    def __init__(self, scope: Construct, id_: str, *, config: EnvConfig, **kwargs: Any) -> None:
        super().__init__(scope, id_, **kwargs)
        key = kms.Key(
            self, "ReplicaKey",
            alias=replica_key_alias(config),
            description=f"TextNLP {config.environment.value}: replicated data (DR region)",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.bucket = s3.Bucket(
            self, "ReplicaBucket",
            bucket_name=config.replica_bucket_name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireOldVersions",
                    noncurrent_version_expiration=Duration.days(
                        config.storage.noncurrent_expiry_days
                    ),
                )
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        # Copies of the primary region's Aurora backups (the backup stack's copy rule).
        self.vault = backup.BackupVault(
            self, "DrVault",
            backup_vault_name=config.dr_vault_name,
            encryption_key=key,
            removal_policy=RemovalPolicy.RETAIN,
        )
        skip_checks(
            self.bucket,
            ("CKV_AWS_18", "Written only by S3 replication; client access is logged on the "
             "source bucket, and the DR region has no log bucket until a failover."),
        )
