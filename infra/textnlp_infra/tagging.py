"""The design's required cost-allocation tags, applied to every taggable resource.

An Aspect (rather than `Tags.of(app).add` scattered in stacks) visits every construct after the
app is built, so a resource added later by anyone is tagged too, and the test that every tagged
resource carries all five tags guards it.
"""

from __future__ import annotations

import jsii
from aws_cdk import CfnResource, IAspect, TagManager
from constructs import IConstruct

from textnlp_infra.config import EnvConfig

REQUIRED_TAG_KEYS = ("Environment", "Application", "CostCenter", "Owner", "Terraform")


def required_tags(config: EnvConfig) -> dict[str, str]:
    return {
        "Environment": config.environment.value,
        "Application": "textnlp",
        "CostCenter": config.tags.cost_center,
        "Owner": config.tags.owner,
        # This deployment is CDK, not Terraform; the design's tag records which tool owns it.
        "Terraform": "false",
    }


@jsii.implements(IAspect)
class RequiredTagsAspect:
    """Sets the required tags on every construct that CloudFormation can tag."""

    def __init__(self, config: EnvConfig) -> None:
        self._tags = required_tags(config)

    def visit(self, node: IConstruct) -> None:
        # Only CloudFormation resources: L2 wrappers forward to them, and visiting both would
        # tag twice. Newer L1s expose their manager as `cdk_tag_manager` ("v2").
        if not isinstance(node, CfnResource):
            return
        if TagManager.is_taggable(node):
            manager = node.tags  # type: ignore[attr-defined]
        elif TagManager.is_taggable_v2(node):
            manager = node.cdk_tag_manager  # type: ignore[attr-defined]
        else:
            return
        for key, value in self._tags.items():
            # Priority above the default (100) so a stray Tags.of(...) cannot override them.
            manager.set_tag(key, value, 200, True)
