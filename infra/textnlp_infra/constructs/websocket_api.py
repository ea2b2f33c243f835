"""Design "API Gateway (WS) for streaming": a WebSocket API in front of the stream router.

L1 resources, because CDK ships no HTTP-proxy integration for WebSocket APIs. Clients connect
with `?token=<access token>`; the same authorizer Lambda checks it on `$connect` (REQUEST type,
so the handler receives `queryStringParameters.token` instead of `authorizationToken`). Each
frame is POSTed to `https://origin.<domain>/api/v1/stream` with the connection id in a header;
the API streams tokens back through the `@connections` management API.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from textnlp_infra.checkov import skip_checks
from textnlp_infra.config import EnvConfig
from textnlp_infra.retention import retention_days


class WebSocketApi(Construct):
    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig,
        authorizer_function: lambda_.IFunction, logs_key: kms.IKey,
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        api_config = config.api
        self.api = apigwv2.CfnApi(
            self, "Api",
            name=api_config.websocket_api_name,
            description="TextNLP token streaming",
            protocol_type="WEBSOCKET",
            route_selection_expression="$request.body.action",
        )
        authorizer = apigwv2.CfnAuthorizer(
            self, "Authorizer",
            api_id=self.api.ref,
            name=f"{config.name}-ws-jwt",
            authorizer_type="REQUEST",
            identity_source=["route.request.querystring.token"],
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
        integration = apigwv2.CfnIntegration(
            self, "StreamIntegration",
            api_id=self.api.ref,
            integration_type="HTTP_PROXY",
            integration_method="POST",
            integration_uri=f"https://{config.origin_host}/api/v1/stream",
            request_parameters={
                "integration.request.header.X-Connection-Id": "context.connectionId",
                "integration.request.header.X-Route-Key": "context.routeKey",
            },
            timeout_in_millis=29000,
        )
        target = f"integrations/{integration.ref}"
        routes = []
        for route_key in ("$connect", "$disconnect", "$default"):
            authorized = route_key == "$connect"
            route = apigwv2.CfnRoute(
                self, f"Route{route_key.strip('$').title()}",
                api_id=self.api.ref,
                route_key=route_key,
                target=target,
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
        self.url = f"wss://{self.api.ref}.execute-api.{stack.region}.amazonaws.com/" + (
            api_config.stage_name
        )
