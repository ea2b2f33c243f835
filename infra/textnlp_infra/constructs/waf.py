"""A WAF web ACL: AWS managed rule groups plus a per-IP rate rule (design: "ALB + WAF"); at
CloudFront also a per-IP limit on the auth routes (login guesses), stopped at the edge before
they reach the gateway (the app limits them per viewer address too: viewer_address.py)."""

from __future__ import annotations

from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from textnlp_infra.config import EnvConfig

MANAGED_RULE_GROUPS = (
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",  # includes the Log4Shell signatures
    "AWSManagedRulesAmazonIpReputationList",
    "AWSManagedRulesSQLiRuleSet",
)


#: Rules that would refuse the platform's own traffic, counted (CloudWatch, sampled requests)
#: instead of blocking. Request bodies are prompts, uploaded prompt files and datasets: often
#: over the 8 KB ``SizeRestrictions_BODY`` allows, and by design holding SQL, HTML, paths or
#: URLs as text (a text-to-SQL or a security dataset's prompts). The app bounds every body itself
#: (``api.max_body_bytes``, ``api.max_file_bytes``), builds no SQL from text (bound parameters),
#: escapes what it shows, and opens no path or URL a body names.
COUNTED_RULES: dict[str, tuple[str, ...]] = {
    "AWSManagedRulesCommonRuleSet": (
        "SizeRestrictions_BODY", "CrossSiteScripting_BODY", "GenericLFI_BODY",
        "GenericRFI_BODY", "EC2MetaDataSSRF_BODY",
    ),
    "AWSManagedRulesSQLiRuleSet": ("SQLi_BODY", "SQLiExtendedPatterns_BODY"),
}


def _visibility(metric: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=True
    )


class WebAcl(Construct):
    """`scope` is REGIONAL for the ALB and API Gateway, CLOUDFRONT for the distribution."""

    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig, waf_scope: str,
        trusted_header: tuple[str, str] | None = None,
    ) -> None:
        """``trusted_header`` (name, value): requests carrying it come through our own gateway,
        whose addresses every client shares, so the per-IP rule counts only the others."""
        super().__init__(scope, id_)
        name = f"{config.name}-{waf_scope.lower()}"
        rules = [
            wafv2.CfnWebACL.RuleProperty(
                name=group,
                priority=priority,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS", name=group,
                        rule_action_overrides=[
                            wafv2.CfnWebACL.RuleActionOverrideProperty(
                                name=rule,
                                action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={}),
                            )
                            for rule in COUNTED_RULES.get(group, ())
                        ] or None,
                    )
                ),
                visibility_config=_visibility(group),
            )
            for priority, group in enumerate(MANAGED_RULE_GROUPS)
        ]
        rules.append(
            wafv2.CfnWebACL.RuleProperty(
                name="RateLimitPerIp",
                priority=len(MANAGED_RULE_GROUPS),
                action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                        limit=config.api.waf_rate_limit_per_5min, aggregate_key_type="IP",
                        scope_down_statement=(
                            _lacks_header(*trusted_header) if trusted_header else None
                        ),
                    )
                ),
                visibility_config=_visibility("RateLimitPerIp"),
            )
        )
        if waf_scope == "CLOUDFRONT":  # only the edge sees the viewer's address
            rules.append(_login_rate_rule(config, priority=len(rules)))
        self.web_acl = wafv2.CfnWebACL(
            self, "WebAcl",
            name=name,
            scope=waf_scope,
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility(name),
            rules=rules,
        )


#: The auth routes (login, refresh) whose attempts the edge limits per viewer address.
AUTH_PATH_PREFIX = "/api/v1/auth/"


def _login_rate_rule(config: EnvConfig, *, priority: int) -> wafv2.CfnWebACL.RuleProperty:
    auth_paths = wafv2.CfnWebACL.StatementProperty(
        byte_match_statement=wafv2.CfnWebACL.ByteMatchStatementProperty(
            field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(uri_path={}),
            positional_constraint="STARTS_WITH",
            search_string=AUTH_PATH_PREFIX,
            text_transformations=[
                wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="LOWERCASE")
            ],
        )
    )
    return wafv2.CfnWebACL.RuleProperty(
        name="LoginRateLimitPerIp",
        priority=priority,
        action=wafv2.CfnWebACL.RuleActionProperty(block={}),
        statement=wafv2.CfnWebACL.StatementProperty(
            rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                limit=config.api.waf_login_rate_limit_per_5min,
                aggregate_key_type="IP",
                scope_down_statement=auth_paths,
            )
        ),
        visibility_config=_visibility("LoginRateLimitPerIp"),
    )


def _lacks_header(name: str, value: str) -> wafv2.CfnWebACL.StatementProperty:
    """Requests whose header ``name`` is not exactly ``value``."""
    return wafv2.CfnWebACL.StatementProperty(
        not_statement=wafv2.CfnWebACL.NotStatementProperty(
            statement=wafv2.CfnWebACL.StatementProperty(
                byte_match_statement=wafv2.CfnWebACL.ByteMatchStatementProperty(
                    field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(
                        single_header={"Name": name.lower()}
                    ),
                    positional_constraint="EXACTLY",
                    search_string=value,
                    text_transformations=[
                        wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")
                    ],
                )
            )
        )
    )
