"""Design sections 4, 5, 11: S3 bucket, Aurora, Redis, replication."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match

from infra_assembly import Assembly


def _bucket(assembly: Assembly) -> dict:
    buckets = assembly.resources("Data", "AWS::S3::Bucket").values()
    return next(
        b["Properties"] for b in buckets
        if b["Properties"]["BucketName"] == "textnlp-production"
    )


def test_bucket_protection(assembly: Assembly) -> None:
    bucket = _bucket(assembly)
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True,
        "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
    }
    sse = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"


def test_lifecycle(assembly: Assembly) -> None:
    rules = {r["Id"]: r for r in _bucket(assembly)["LifecycleConfiguration"]["Rules"]}
    archive = rules["ArchiveOldGenerations"]
    assert archive["Prefix"] == "generated/"
    assert [(t["StorageClass"], t["TransitionInDays"]) for t in archive["Transitions"]] == [
        ("STANDARD_IA", 30), ("GLACIER", 90)
    ]
    assert (rules["DeleteTempFiles"]["Prefix"], rules["DeleteTempFiles"]["ExpirationInDays"]) == (
        "temp/", 7
    )
    tiering = [r for r in rules.values()
               if any(t["StorageClass"] == "INTELLIGENT_TIERING" for t in r.get("Transitions", []))]
    assert tiering


def test_replication_to_us_west_2(assembly: Assembly) -> None:
    (rule,) = _bucket(assembly)["ReplicationConfiguration"]["Rules"]
    assert rule["Destination"]["Bucket"] == "arn:aws:s3:::textnlp-production-replica-us-west-2"
    assert rule["Destination"]["StorageClass"] == "STANDARD_IA"
    assert ":us-west-2:" in rule["Destination"]["EncryptionConfiguration"]["ReplicaKmsKeyID"]
    assembly.template("DisasterRecovery").has_resource_properties(
        "AWS::S3::Bucket", {"BucketName": "textnlp-production-replica-us-west-2",
                            "VersioningConfiguration": {"Status": "Enabled"}},
    )


def test_aurora_cluster(assembly: Assembly) -> None:
    template = assembly.template("Data")
    template.has_resource_properties("AWS::RDS::DBCluster", {
        "Engine": "aurora-postgresql", "EngineVersion": "15.10",
        "DBClusterIdentifier": "textnlp-production", "DatabaseName": "textnlp",
        "BackupRetentionPeriod": 30, "PreferredBackupWindow": "03:00-04:00",
        "EnableCloudwatchLogsExports": ["postgresql"], "DeletionProtection": True,
        "StorageEncrypted": True,
        "MasterUsername": Match.any_value(), "MasterUserPassword": Match.any_value(),
    })
    instances = sorted(
        (i["Properties"]["PromotionTier"], i["Properties"]["DBInstanceClass"])
        for i in assembly.resources("Data", "AWS::RDS::DBInstance").values()
    )
    assert instances == [(0, "db.r6g.2xlarge"), (1, "db.r6g.xlarge"), (2, "db.r6g.xlarge")]
    assembly.template("Security").has_resource_properties("AWS::SecretsManager::Secret", {
        "Name": "/textnlp/production/database/master-password",
        "GenerateSecretString": Match.object_like(
            {"SecretStringTemplate": '{"username": "textnlp_admin"}'}),
    })


def test_redis_cluster_mode(assembly: Assembly) -> None:
    template = assembly.template("Data")
    template.has_resource_properties("AWS::ElastiCache::ReplicationGroup", {
        "CacheNodeType": "cache.r6g.xlarge", "Engine": "redis", "EngineVersion": "7.0",
        "NumNodeGroups": 3, "ReplicasPerNodeGroup": 2,
        "AtRestEncryptionEnabled": True, "TransitEncryptionEnabled": True,
        "ReplicationGroupId": "textnlp-production-redis",  # kept: the id is immutable
    })
    (group,) = assembly.resources("Data", "AWS::ElastiCache::ReplicationGroup").values()
    assert "{{resolve:secretsmanager:" in json.dumps(group["Properties"]["AuthToken"])
    template.has_resource_properties("AWS::ElastiCache::ParameterGroup", {"Properties": {
        "cluster-enabled": "yes", "maxmemory-policy": "allkeys-lru",
        "timeout": "300", "tcp-keepalive": "60",
    }})


def test_regional_recovery_copies_backups_images_and_secrets(assembly: Assembly) -> None:
    """Design section 11: what a failover to us-west-2 restores from is there."""
    dr = assembly.template("DisasterRecovery")
    dr.has_resource_properties(
        "AWS::Backup::BackupVault", {"BackupVaultName": "textnlp-production-dr-vault"}
    )
    plans = assembly.resources("Backup", "AWS::Backup::BackupPlan").values()
    aurora = next(r for plan in plans for r in plan["Properties"]["BackupPlan"]["BackupPlanRule"]
                  if r["RuleName"] == "AuroraDaily")
    assert aurora["CopyActions"] == [{
        "DestinationBackupVaultArn":
            "arn:aws:backup:us-west-2:123456789012:backup-vault:textnlp-production-dr-vault",
        "Lifecycle": {"DeleteAfterDays": 30},
    }]
    (replication,) = assembly.resources(
        "Registry", "AWS::ECR::ReplicationConfiguration"
    ).values()
    (rule,) = replication["Properties"]["ReplicationConfiguration"]["Rules"]
    assert rule["Destinations"] == [{"Region": "us-west-2", "RegistryId": "123456789012"}]
    for secret in assembly.resources("Security", "AWS::SecretsManager::Secret").values():
        assert secret["Properties"]["ReplicaRegions"] == [{
            "Region": "us-west-2",
            "KmsKeyId": "arn:aws:kms:us-west-2:123456789012:alias/textnlp-production-replica",
        }]
