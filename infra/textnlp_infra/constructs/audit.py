"""Design section 9's detective controls: GuardDuty, AWS Config with managed rules, Security Hub.

These are account-and-region singletons: deploying into an account where one is already enabled
fails, so `enable_account_services` (context `accountServices=false`) turns them off there.
Also here: the central access-log bucket, which Config, S3, the ALB and CloudFront write to.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_config as config_
from aws_cdk import aws_guardduty as guardduty
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_securityhub as securityhub
from constructs import Construct

from textnlp_infra.checkov import skip_checks
from textnlp_infra.config import EnvConfig

# ELB's log-delivery account for us-east-1 (the region's documented principal).
_ELB_ACCOUNT = {"us-east-1": "127311923021", "us-west-2": "797873946194"}

MANAGED_RULES = (
    "S3_BUCKET_SERVER_SIDE_ENCRYPTION_ENABLED",
    "S3_BUCKET_PUBLIC_READ_PROHIBITED",
    "RDS_STORAGE_ENCRYPTED",
    "ENCRYPTED_VOLUMES",
    "IAM_ROOT_ACCESS_KEY_CHECK",
    "VPC_FLOW_LOGS_ENABLED",
)


class AccessLogBucket(Construct):
    def __init__(self, scope: Construct, id_: str, *, config: EnvConfig) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        self.bucket = s3.Bucket(
            self, "Bucket",
            bucket_name=config.access_logs_bucket_name,
            # S3 server access logs and ALB logs can only be written with SSE-S3.
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            # CloudFront standard logging writes through ACLs.
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[
                s3.LifecycleRule(id="ExpireLogs", expiration=Duration.days(365),
                                 noncurrent_version_expiration=Duration.days(30)),
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        same_account = {"StringEquals": {"aws:SourceAccount": stack.account}}
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("logging.s3.amazonaws.com")],
                actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects("s3/*")],
                conditions=same_account,
            )
        )
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.AccountPrincipal(_ELB_ACCOUNT[config.region])],
                actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects(f"alb/AWSLogs/{stack.account}/*")],
            )
        )
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("config.amazonaws.com")],
                actions=["s3:GetBucketAcl", "s3:ListBucket"],
                resources=[self.bucket.bucket_arn],
                conditions=same_account,
            )
        )
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("config.amazonaws.com")],
                actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects(f"config/AWSLogs/{stack.account}/*")],
                conditions={
                    "StringEquals": {
                        "aws:SourceAccount": stack.account,
                        "s3:x-amz-acl": "bucket-owner-full-control",
                    }
                },
            )
        )
        skip_checks(
            self.bucket,
            ("CKV_AWS_18", "This is the access-log target; logging it into itself would loop."),
        )


class AccountSecurityServices(Construct):
    def __init__(self, scope: Construct, id_: str, *, log_bucket: s3.IBucket) -> None:
        super().__init__(scope, id_)
        guardduty.CfnDetector(
            self, "GuardDuty", enable=True, finding_publishing_frequency="FIFTEEN_MINUTES"
        )
        securityhub.CfnHub(self, "SecurityHub", enable_default_standards=True)

        role = iam.Role(
            self, "ConfigRole",
            assumed_by=iam.ServicePrincipal("config.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AWS_ConfigRole")
            ],
        )
        recorder = config_.CfnConfigurationRecorder(
            self, "Recorder",
            role_arn=role.role_arn,
            recording_group=config_.CfnConfigurationRecorder.RecordingGroupProperty(
                all_supported=True, include_global_resource_types=True
            ),
        )
        # Config delivers to a bucket of this account with the recorder's role (the bucket's
        # policy for config.amazonaws.com serves delivery from another account only);
        # AWS_ConfigRole lets it read resources, not write the bucket.
        account = Stack.of(self).account
        role.add_to_policy(iam.PolicyStatement(
            actions=["s3:GetBucketAcl"], resources=[log_bucket.bucket_arn],
        ))
        role.add_to_policy(iam.PolicyStatement(
            actions=["s3:PutObject"],
            resources=[log_bucket.arn_for_objects(f"config/AWSLogs/{account}/*")],
        ))
        channel = config_.CfnDeliveryChannel(
            self, "DeliveryChannel",
            s3_bucket_name=log_bucket.bucket_name,
            s3_key_prefix="config",
        )
        # A delivery channel needs its recorder first (NoAvailableConfigurationRecorder) and a
        # bucket it may write to (InsufficientDeliveryPolicyException): CloudFormation would
        # otherwise create it as soon as the bucket exists, before either.
        channel.add_dependency(recorder)
        channel.node.add_dependency(role)
        if log_bucket.policy is not None:
            channel.node.add_dependency(log_bucket.policy)
        for identifier in MANAGED_RULES:
            rule = config_.ManagedRule(
                self, identifier.title().replace("_", ""), identifier=identifier
            )
            # A rule can only be created once the recorder and its channel exist.
            rule.node.add_dependency(recorder)
            rule.node.add_dependency(channel)
