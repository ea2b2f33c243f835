"""Checkov suppressions, kept next to the resource they concern.

Checkov reads `Metadata.checkov.skip` on a CloudFormation resource. Every skip in this app goes
through `skip_checks`, which insists on a reason, so `grep skip_checks` lists them all.
"""

from __future__ import annotations

from aws_cdk import CfnResource
from constructs import IConstruct


def skip_checks(construct: IConstruct, *checks: tuple[str, str]) -> None:
    """Suppress `(check_id, reason)` pairs on `construct`'s CloudFormation resource."""
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource to annotate")
    existing = resource.get_metadata("checkov") or {"skip": []}
    for check_id, reason in checks:
        if not reason.strip():
            raise ValueError(f"checkov skip {check_id} on {construct.node.path} needs a reason")
        existing["skip"].append({"id": check_id, "comment": reason})
    resource.add_metadata("checkov", existing)
