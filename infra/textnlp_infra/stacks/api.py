"""Design section 8 and the edge: API Gateway (REST and WebSocket), CloudFront, Route 53.

Request path: CloudFront (`api.<domain>`, WAF) -> API Gateway REST (authorizer, throttling,
cache) -> ALB (`origin.<domain>`, WAF; compute stack) -> ECS API service. CloudFront tells the
app the viewer's address in a way it can check (constructs/viewer_address.py).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, CfnResource, SecretValue, Stack
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as targets
from aws_cdk import aws_s3 as s3
from constructs import Construct
from textnlp.deployment import VIEWER_VERIFY_HEADER

from textnlp_infra.config import EnvConfig
from textnlp_infra.constructs.rest_api import RestApi
from textnlp_infra.constructs.viewer_address import viewer_address_function
from textnlp_infra.constructs.waf import WebAcl
from textnlp_infra.constructs.websocket_api import WebSocketApi
from textnlp_infra.imports import imported_key
from textnlp_infra.stacks.compute import hosted_zone
from textnlp_infra.stacks.security import SecurityStack
from textnlp_infra.stacks.serverless import ServerlessStack


class ApiStack(Stack):
    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig, security: SecurityStack,
        serverless: ServerlessStack, **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        logs_key = imported_key(self, "LogsKey", security.keys.logs)
        # Imported, so that the invoke permissions are created here, beside the APIs.
        authorizer = lambda_.Function.from_function_attributes(
            self, "AuthorizerFunction",
            function_arn=serverless.authorizer.function_arn, same_environment=True,
        )
        # A dynamic reference: CloudFormation resolves it at deployment; the template holds
        # only the secret's name.
        origin_verify = SecretValue.secrets_manager(
            security.secrets.origin_verify.secret_arn
        ).unsafe_unwrap()
        zone = hosted_zone(self, config)
        self.rest = RestApi(
            self, "Rest", config=config, authorizer_function=authorizer, logs_key=logs_key,
            origin_verify=origin_verify,
        )
        self.websocket = WebSocketApi(
            self, "WebSocket", config=config, authorizer_function=authorizer, logs_key=logs_key,
            origin_verify=origin_verify, zone=zone,
        )
        # Both stages log to CloudWatch, which API Gateway refuses until the account's logging
        # role is set: the REST API's `AWS::ApiGateway::Account` (its `cloud_watch_role`). CDK
        # orders the REST stage after it; the WebSocket stage, a few quick creates away, would
        # otherwise race it in a fresh account ("CloudWatch Logs role ARN must be set").
        account = self.rest.api.node.find_child("Account")
        assert isinstance(account, CfnResource)
        self.websocket.stage.add_dependency(account)
        self.distribution = self._distribution(config, zone, security)
        alias = route53.RecordTarget.from_alias(targets.CloudFrontTarget(self.distribution))
        route53.ARecord(self, "ApiRecord", zone=zone, record_name=config.api_host, target=alias)
        route53.AaaaRecord(
            self, "ApiRecordIpv6", zone=zone, record_name=config.api_host, target=alias
        )
        CfnOutput(self, "ApiUrl", value=f"https://{config.api_host}/api/v1")
        CfnOutput(self, "WebSocketUrl", value=self.websocket.url)

    def _distribution(
        self, config: EnvConfig, zone: route53.IHostedZone, security: SecurityStack
    ) -> cloudfront.Distribution:
        certificate = acm.Certificate(
            self, "Certificate",
            domain_name=config.api_host,
            validation=acm.CertificateValidation.from_dns(zone),
        )
        # CLOUDFRONT-scope ACLs must live in us-east-1, which this stack is.
        web_acl = WebAcl(self, "Waf", config=config, waf_scope="CLOUDFRONT").web_acl
        log_bucket = s3.Bucket.from_bucket_name(
            self, "AccessLogs", security.access_logs.bucket_name
        )
        # A dynamic reference, as the gateway's origin header: the template holds only the name.
        viewer_verify = SecretValue.secrets_manager(
            security.secrets.viewer_verify.secret_arn
        ).unsafe_unwrap()
        return cloudfront.Distribution(
            self, "Distribution",
            comment=f"{config.name} API",
            domain_names=[config.api_host],
            certificate=certificate,
            minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_ALL,  # the design's global edge
            web_acl_id=web_acl.attr_arn,
            enable_logging=True,
            log_bucket=log_bucket,
            log_file_prefix="cloudfront/",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.RestApiOrigin(
                    self.rest.api, custom_headers={VIEWER_VERIFY_HEADER: viewer_verify}
                ),
                function_associations=[cloudfront.FunctionAssociation(
                    function=viewer_address_function(
                        self, "ViewerAddress", config.resource_name("viewer-address")
                    ),
                    event_type=cloudfront.FunctionEventType.VIEWER_REQUEST,
                )],
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
                # API Gateway caches what may be cached, per route; CloudFront passes through.
                cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
                origin_request_policy=(
                    cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER
                ),
            ),
        )
