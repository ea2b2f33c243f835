"""Design section 4, the S3 bucket `textnlp-<env>`: key layout, lifecycle, replication."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from textnlp_infra.config import EnvConfig

# The design's key layout. S3 has no folders; the prefixes are the contract between the
# application (DESIGN.md, Jobs), the lifecycle rules, the upload trigger and the IAM policies
# (`tests/test_app_contract.py` holds the app's `Keys` and the rules to it). The app writes
# user uploads, generated/batch-jobs/ and validation results; models/ holds SageMaker's
# archives; the others are the design's, unused (templates ship with the app, backups go to
# AWS Backup's vaults).
KEY_LAYOUT = (
    "prompts/templates/",
    "prompts/user-uploads/",
    "prompts/archived/",
    "generated/",  # generated/yyyy/mm/dd/... and generated/batch-jobs/...
    "generated/batch-jobs/",
    "models/checkpoints/",
    "models/fine-tuned/",
    "models/configs/",
    "validation/results/",
    "validation/human-eval/",
    "validation/metrics/",
    "backups/database/",
    "backups/configurations/",
    "temp/",
)
UPLOADS_PREFIX = "prompts/user-uploads/"
# Prefixes whose access pattern nobody can predict: Intelligent-Tiering moves each object
# between tiers by its own access history, which fixed-age transitions cannot.
INTELLIGENT_TIERING_PREFIXES = ("models/", "validation/")


def replica_key_alias(config: EnvConfig) -> str:
    return f"alias/{config.name}-replica"


class DataBucket(Construct):
    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig, key: kms.IKey,
        access_logs: s3.IBucket,
    ) -> None:
        super().__init__(scope, id_)
        storage = config.storage
        self.bucket = s3.Bucket(
            self, "Bucket",
            bucket_name=config.bucket_name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix=f"s3/{config.bucket_name}/",
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ArchiveOldGenerations",
                    prefix="generated/",
                    transitions=[
                        s3.Transition(storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                                      transition_after=Duration.days(storage.ia_after_days)),
                        s3.Transition(storage_class=s3.StorageClass.GLACIER,
                                      transition_after=Duration.days(storage.glacier_after_days)),
                    ],
                ),
                s3.LifecycleRule(
                    id="DeleteTempFiles", prefix="temp/",
                    expiration=Duration.days(storage.temp_expiry_days),
                ),
                *(
                    s3.LifecycleRule(
                        id=f"IntelligentTiering-{prefix.rstrip('/')}",
                        prefix=prefix,
                        transitions=[
                            s3.Transition(
                                storage_class=s3.StorageClass.INTELLIGENT_TIERING,
                                transition_after=Duration.days(
                                    storage.intelligent_tiering_after_days
                                ),
                            )
                        ],
                    )
                    for prefix in INTELLIGENT_TIERING_PREFIXES
                ),
                s3.LifecycleRule(
                    id="ExpireOldVersions",
                    noncurrent_version_expiration=Duration.days(storage.noncurrent_expiry_days),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                ),
            ],
        )
        cfn_bucket = self.bucket.node.default_child
        assert isinstance(cfn_bucket, s3.CfnBucket)
        # Events go to EventBridge, set on the L1: the L2 would add a custom-resource Lambda,
        # and the consumers (upload trigger, orchestration) live in later stacks.
        cfn_bucket.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            event_bridge_configuration=s3.CfnBucket.EventBridgeConfigurationProperty(
                event_bridge_enabled=True
            )
        )
        self._replicate(config, key, cfn_bucket)

    def _replicate(self, config: EnvConfig, key: kms.IKey, cfn_bucket: s3.CfnBucket) -> None:
        """Cross-region replication to the DR region (design section 11), by name.

        The replica bucket and key live in the DR stack; they are addressed by their fixed
        name and alias so this stack holds no cross-region reference.
        """
        stack = Stack.of(self)
        replica_region = config.storage.replica_region
        replica_bucket_arn = f"arn:aws:s3:::{config.replica_bucket_name}"
        replica_key_arn = (
            f"arn:aws:kms:{replica_region}:{stack.account}:{replica_key_alias(config)}"
        )
        role = iam.Role(
            self, "ReplicationRole", assumed_by=iam.ServicePrincipal("s3.amazonaws.com")
        )
        role.add_to_policy(iam.PolicyStatement(
            actions=["s3:GetReplicationConfiguration", "s3:ListBucket"],
            resources=[self.bucket.bucket_arn],
        ))
        role.add_to_policy(iam.PolicyStatement(
            actions=["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl",
                     "s3:GetObjectVersionTagging"],
            resources=[self.bucket.arn_for_objects("*")],
        ))
        role.add_to_policy(iam.PolicyStatement(
            actions=["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
            resources=[f"{replica_bucket_arn}/*"],
        ))
        role.add_to_policy(iam.PolicyStatement(actions=["kms:Decrypt"], resources=[key.key_arn]))
        role.add_to_policy(iam.PolicyStatement(
            actions=["kms:Encrypt", "kms:GenerateDataKey"],
            resources=[f"arn:aws:kms:{replica_region}:{stack.account}:key/*"],
            conditions={
                "ForAnyValue:StringEquals": {"kms:ResourceAliases": replica_key_alias(config)}
            },
        ))
        cfn_bucket.replication_configuration = s3.CfnBucket.ReplicationConfigurationProperty(
            role=role.role_arn,
            rules=[
                s3.CfnBucket.ReplicationRuleProperty(
                    id="ReplicateToDrRegion",
                    status="Enabled",
                    priority=1,
                    filter=s3.CfnBucket.ReplicationRuleFilterProperty(prefix=""),
                    delete_marker_replication=s3.CfnBucket.DeleteMarkerReplicationProperty(
                        status="Enabled"
                    ),
                    source_selection_criteria=s3.CfnBucket.SourceSelectionCriteriaProperty(
                        sse_kms_encrypted_objects=s3.CfnBucket.SseKmsEncryptedObjectsProperty(
                            status="Enabled"
                        )
                    ),
                    destination=s3.CfnBucket.ReplicationDestinationProperty(
                        bucket=replica_bucket_arn,
                        storage_class="STANDARD_IA",
                        encryption_configuration=s3.CfnBucket.EncryptionConfigurationProperty(
                            replica_kms_key_id=replica_key_arn
                        ),
                    ),
                )
            ],
        )
