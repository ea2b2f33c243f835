"""Cross-stack references that must not write back into the stack that owns the resource.

Passing an L2 object from one stack to another lets CDK add grants and security-group rules to
the owner, which creates dependency cycles and hides permissions away from where they are
declared. Consumers therefore take immutable views: every rule and permission lives, explicitly,
in the owning stack (security groups in the network stack, roles in the security stack).
"""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as sm
from constructs import Construct


def immutable_security_group(
    scope: Construct, id_: str, group: ec2.ISecurityGroup
) -> ec2.ISecurityGroup:
    return ec2.SecurityGroup.from_security_group_id(
        scope, id_, group.security_group_id, mutable=False, allow_all_outbound=True
    )


def immutable_role(scope: Construct, id_: str, role: iam.IRole) -> iam.IRole:
    return iam.Role.from_role_arn(scope, id_, role.role_arn, mutable=False)


def imported_key(scope: Construct, id_: str, key: kms.IKey) -> kms.IKey:
    # The key policies (security stack) delegate to IAM, so grants on the consumer's side suffice.
    return kms.Key.from_key_arn(scope, id_, key.key_arn)


def imported_secret(scope: Construct, id_: str, secret: sm.ISecret) -> sm.ISecret:
    # An imported secret makes `secret.attach(cluster)` create the attachment in the consumer's
    # stack instead of the security stack (which would then depend on the consumer).
    return sm.Secret.from_secret_complete_arn(scope, id_, secret.secret_arn)
