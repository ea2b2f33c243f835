"""Design section "Edge": the multi-AZ ALB with WAF, and its two target groups for blue/green.

The ALB is the origin that API Gateway forwards to (`origin.<domain>`, HTTPS). It has a
production listener (443), an HTTP listener that only redirects, and a test listener (8443) that
CodeDeploy uses to check the green task set before shifting traffic. ALB-SG opens only 80/443,
so the test listener is reachable from inside the VPC alone, which is all CodeDeploy needs.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as targets
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct
from textnlp import deployment

from textnlp_infra.config import EnvConfig
from textnlp_infra.constructs.waf import WebAcl

HEALTH_PATH = deployment.HEALTH_PATH
TEST_LISTENER_PORT = 8443


class ApiLoadBalancer(Construct):
    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig, vpc: ec2.IVpc,
        security_group: ec2.ISecurityGroup, zone: route53.IHostedZone,
        access_logs: s3.IBucket, origin_verify: str,
    ) -> None:
        """``origin_verify``: the secret API Gateway sends in ``X-Origin-Verify`` (a dynamic
        reference): the WAF's per-IP rule counts only requests without it, since every request
        through the gateway comes from the gateway's few addresses."""
        super().__init__(scope, id_)
        self.alb = elbv2.ApplicationLoadBalancer(
            self, "Alb",
            load_balancer_name=f"{config.name}-api",
            vpc=vpc,
            internet_facing=True,
            vpc_subnets=ec2.SubnetSelection(subnet_group_name="public"),
            security_group=security_group,
            drop_invalid_header_fields=True,
            deletion_protection=config.is_production,
        )
        # Set as attributes: `logAccessLogs` would try to edit the log bucket's policy, which
        # the security stack owns (it already admits the ELB log-delivery account).
        self.alb.set_attribute("access_logs.s3.enabled", "true")
        self.alb.set_attribute("access_logs.s3.bucket", access_logs.bucket_name)
        self.alb.set_attribute("access_logs.s3.prefix", "alb")

        certificate = acm.Certificate(
            self, "Certificate",
            domain_name=config.origin_host,
            validation=acm.CertificateValidation.from_dns(zone),
        )

        def target_group(id_: str) -> elbv2.ApplicationTargetGroup:
            return elbv2.ApplicationTargetGroup(
                self, id_,
                vpc=vpc,
                port=config.compute.api_port,
                protocol=elbv2.ApplicationProtocol.HTTP,
                target_type=elbv2.TargetType.IP,
                deregistration_delay=Duration.seconds(30),
                health_check=elbv2.HealthCheck(
                    path=HEALTH_PATH, healthy_http_codes="200", interval=Duration.seconds(15)
                ),
            )

        self.blue = target_group("BlueTargetGroup")
        self.green = target_group("GreenTargetGroup")
        ssl_policy = elbv2.SslPolicy.RECOMMENDED_TLS
        self.listener = self.alb.add_listener(
            "Https", port=443, protocol=elbv2.ApplicationProtocol.HTTPS,
            certificates=[certificate], ssl_policy=ssl_policy, open=False,
            default_target_groups=[self.blue],
        )
        self.test_listener = self.alb.add_listener(
            "TestHttps", port=TEST_LISTENER_PORT, protocol=elbv2.ApplicationProtocol.HTTPS,
            certificates=[certificate], ssl_policy=ssl_policy, open=False,
            default_target_groups=[self.green],
        )
        self.alb.add_listener(
            "HttpRedirect", port=80, protocol=elbv2.ApplicationProtocol.HTTP, open=False,
            default_action=elbv2.ListenerAction.redirect(protocol="HTTPS", port="443",
                                                         permanent=True),
        )

        web_acl = WebAcl(
            self, "Waf", config=config, waf_scope="REGIONAL",
            trusted_header=(deployment.ORIGIN_VERIFY_HEADER, origin_verify),
        ).web_acl
        wafv2.CfnWebACLAssociation(
            self, "WafAssociation",
            resource_arn=self.alb.load_balancer_arn, web_acl_arn=web_acl.attr_arn,
        )
        route53.ARecord(
            self, "OriginRecord",
            zone=zone,
            record_name=config.origin_host,
            target=route53.RecordTarget.from_alias(targets.LoadBalancerTarget(self.alb)),
        )
