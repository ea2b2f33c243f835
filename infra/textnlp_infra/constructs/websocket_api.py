"""Design "API Gateway (WS) for streaming": a WebSocket API in front of the app's gateway route.

L1 resources, because CDK ships no HTTP-proxy integration for WebSocket APIs. Clients connect to
`wss://stream.<domain>/?access_token=<access token or API key>` (the app's own query parameter);
the same authorizer Lambda checks it on `$connect` (REQUEST type). Every event of a connection is
POSTed to the app's `textnlp.deployment.GATEWAY_STREAM_PATH` on the ALB, naming the connection
and the route in headers, with the origin header; `$connect` also forwards the credential, which
the app checks itself. The app posts each token back through the management API of the custom
domain (`https://stream.<domain>/@connections/<id>`), which the API tasks know from their
settings: no reference from the compute stack to this one.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as targets
from constructs import Construct
from textnlp.deployment import (
    ACCESS_TOKEN_PARAMETER,
    GATEWAY_STREAM_PATH,
    ORIGIN_VERIFY_HEADER,
    WEBSOCKET_ORIGIN_HEADER,
)

from textnlp_infra.checkov import skip_checks
from textnlp_infra.config import EnvConfig
from textnlp_infra.retention import retention_days


class WebSocketApi(Construct):
    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig,
        authorizer_function: lambda_.IFunction, logs_key: kms.IKey, origin_verify: str,
        zone: route53.IHostedZone,
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        api_config = config.api
        self.api = apigwv2.CfnApi(
            self, "Api",
            name=config.websocket_api_name,
            description="TextNLP token streaming",
            protocol_type="WEBSOCKET",
            route_selection_expression="$request.body.action",
        )
        authorizer = apigwv2.CfnAuthorizer(
            self, "Authorizer",
            api_id=self.api.ref,
            name=f"{config.name}-ws-jwt",
            authorizer_type="REQUEST",
            identity_source=[f"route.request.querystring.{ACCESS_TOKEN_PARAMETER}"],
            authorizer_uri=(
                f"arn:aws:apigateway:{stack.region}:lambda:path/2015-03-31/functions/"
                f"{authorizer_function.function_arn}/invocations"
            ),
        )
        lambda_.CfnPermission(
            self, "AuthorizerPermission",
            action="lambda:InvokeFunction",
            function_name=authorizer_function.function_arn,
            principal="apigateway.amazonaws.com",
            source_arn=(
                f"arn:aws:execute-api:{stack.region}:{stack.account}:{self.api.ref}"
                f"/authorizers/{authorizer.ref}"
            ),
        )
        def integration(route_key: str) -> apigwv2.CfnIntegration:
            parameters = {
                "integration.request.header.X-Connection-Id": "context.connectionId",
                "integration.request.header.X-Route-Key": "context.routeKey",
                f"integration.request.header.{ORIGIN_VERIFY_HEADER}": f"'{origin_verify}'",
                # Only this integration sends it: the app's bridge refuses calls without it.
                f"integration.request.header.{WEBSOCKET_ORIGIN_HEADER}": f"'{origin_verify}'",
            }
            if route_key == "$connect":
                parameters["integration.request.header.X-Access-Token"] = (
                    f"route.request.querystring.{ACCESS_TOKEN_PARAMETER}"
                )
            return apigwv2.CfnIntegration(
                self, f"{route_key.strip('$').title()}Integration",
                api_id=self.api.ref,
                integration_type="HTTP_PROXY",
                integration_method="POST",
                integration_uri=f"https://{config.origin_host}{GATEWAY_STREAM_PATH}",
                request_parameters=parameters,
                timeout_in_millis=29000,
            )

        routes = []
        for route_key in ("$connect", "$disconnect", "$default"):
            authorized = route_key == "$connect"
            route = apigwv2.CfnRoute(
                self, f"Route{route_key.strip('$').title()}",
                api_id=self.api.ref,
                route_key=route_key,
                target=f"integrations/{integration(route_key).ref}",
                authorization_type="CUSTOM" if authorized else "NONE",
                authorizer_id=authorizer.ref if authorized else None,
            )
            if not authorized:
                skip_checks(
                    route,
                    ("CKV_AWS_309", "WebSocket APIs authorize on $connect only; later frames "
                     "travel on the connection that $connect authorized."),
                )
            routes.append(route)

        access_logs = logs.LogGroup(
            self, "AccessLogs",
            log_group_name=f"/aws/apigateway/{config.name}-websocket-access",
            retention=retention_days(config.compute.log_retention_days),
            encryption_key=logs_key,
        )
        self.stage = apigwv2.CfnStage(
            self, "Stage",
            api_id=self.api.ref,
            stage_name=api_config.stage_name,
            auto_deploy=True,
            default_route_settings=apigwv2.CfnStage.RouteSettingsProperty(
                throttling_rate_limit=api_config.throttling_rate_limit,
                throttling_burst_limit=api_config.throttling_burst_limit,
                logging_level="INFO",
                detailed_metrics_enabled=True,
            ),
            access_log_settings=apigwv2.CfnStage.AccessLogSettingsProperty(
                destination_arn=access_logs.log_group_arn,
                format=(
                    '{"requestId":"$context.requestId","ip":"$context.identity.sourceIp",'
                    '"routeKey":"$context.routeKey","status":"$context.status",'
                    '"connectionId":"$context.connectionId"}'
                ),
            ),
        )
        for route in routes:
            self.stage.add_resource_dependency(route)
        self._custom_domain(config, zone)
        self.url = f"wss://{config.stream_host}"

    def _custom_domain(self, config: EnvConfig, zone: route53.IHostedZone) -> None:
        """`stream.<domain>` for clients, and the management endpoint the API tasks post to."""
        certificate = acm.Certificate(
            self, "Certificate",
            domain_name=config.stream_host,
            validation=acm.CertificateValidation.from_dns(zone),
        )
        domain = apigwv2.CfnDomainName(
            self, "Domain",
            domain_name=config.stream_host,
            domain_name_configurations=[apigwv2.CfnDomainName.DomainNameConfigurationProperty(
                certificate_arn=certificate.certificate_arn,
                endpoint_type="REGIONAL",
                security_policy="TLS_1_2",
            )],
        )
        mapping = apigwv2.CfnApiMapping(
            self, "Mapping",
            api_id=self.api.ref, domain_name=domain.ref, stage=self.stage.ref,
        )
        mapping.add_dependency(self.stage)
        route53.ARecord(
            self, "Record",
            zone=zone,
            record_name=config.stream_host,
            target=route53.RecordTarget.from_alias(targets.ApiGatewayv2DomainProperties(
                domain.attr_regional_domain_name, domain.attr_regional_hosted_zone_id,
            )),
        )
