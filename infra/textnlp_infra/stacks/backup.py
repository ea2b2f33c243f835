"""Design section 11, AWS Backup: Aurora kept 30 days, EBS volumes snapshotted daily for 7.

Aurora also keeps its own 30-day automated backups (data stack); the plan adds copies that live
in a vault independent of the cluster, and copies each to the DR region's vault
(`textnlp-<env>-dr-vault`, us-west-2), so the design's regional failover has a database to
restore. EBS volumes are chosen by the Application tag, which the GPU hosts' launch template
puts on their volumes (their copies stay in the region: the hosts are replaceable).

Two plans, one per kind of resource: a selection takes every rule of its plan, so with one plan
the volumes would be kept 30 days and copied to the DR region, and Aurora snapshotted twice.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_backup as backup
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from constructs import Construct

from textnlp_infra.config import EnvConfig
from textnlp_infra.imports import imported_key
from textnlp_infra.stacks.security import SecurityStack

DAILY_AT_0500_UTC = events.Schedule.cron(minute="0", hour="5")


class BackupStack(Stack):
    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig, security: SecurityStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        retention = config.backup
        self.vault = backup.BackupVault(
            self, "Vault",
            backup_vault_name=f"{config.name}-vault",
            encryption_key=imported_key(self, "DataKey", security.keys.data),
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.plan = backup.BackupPlan(self, "Plan", backup_plan_name=f"{config.name}-backups")
        self.ebs_plan = backup.BackupPlan(
            self, "EbsPlan", backup_plan_name=f"{config.name}-ebs-backups"
        )
        dr_vault = backup.BackupVault.from_backup_vault_arn(
            self, "DrVault",
            f"arn:aws:backup:{config.storage.replica_region}:{self.account}:backup-vault:"
            f"{config.dr_vault_name}",
        )
        self.plan.add_rule(backup.BackupPlanRule(
            rule_name="AuroraDaily", backup_vault=self.vault,
            schedule_expression=DAILY_AT_0500_UTC,
            delete_after=Duration.days(retention.rds_retention_days),
            copy_actions=[backup.BackupPlanCopyActionProps(
                destination_backup_vault=dr_vault,
                delete_after=Duration.days(retention.rds_retention_days),
            )],
        ))
        self.ebs_plan.add_rule(backup.BackupPlanRule(
            rule_name="EbsDaily", backup_vault=self.vault,
            schedule_expression=DAILY_AT_0500_UTC,
            delete_after=Duration.days(retention.ebs_retention_days),
        ))
        role = iam.Role(
            self, "BackupRole",
            assumed_by=iam.ServicePrincipal("backup.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(
                    "service-role/AWSBackupServiceRolePolicyForBackup"),
                iam.ManagedPolicy.from_aws_managed_policy_name(
                    "service-role/AWSBackupServiceRolePolicyForRestores"),
            ],
        )
        self.plan.add_selection("Aurora", role=role, resources=[
            backup.BackupResource.from_arn(
                f"arn:aws:rds:{self.region}:{self.account}:cluster:{config.name}"
            ),
        ])
        backup.CfnBackupSelection(
            self, "EbsSelection",
            backup_plan_id=self.ebs_plan.backup_plan_id,
            backup_selection=backup.CfnBackupSelection.BackupSelectionResourceTypeProperty(
                selection_name="EbsVolumes",
                iam_role_arn=role.role_arn,
                resources=[f"arn:aws:ec2:{self.region}:{self.account}:volume/*"],
                conditions={
                    "StringEquals": [
                        {"ConditionKey": "aws:ResourceTag/Application",
                         "ConditionValue": "textnlp"},
                        {"ConditionKey": "aws:ResourceTag/Environment",
                         "ConditionValue": config.environment.value},
                    ]
                },
            ),
        )
