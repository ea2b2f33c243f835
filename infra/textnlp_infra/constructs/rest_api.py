"""Design section 8, API Gateway REST `textnlp-api`: the resource tree, authorizer, stage.

Every method is an HTTP proxy to the ALB (`https://origin.<domain>/api/v1/...`), which routes to
the ECS API service. The Lambda authorizer guards all routes except the ones a client calls
before it has a token (login, refresh) and the health probe.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from textnlp_infra.checkov import skip_checks
from textnlp_infra.config import EnvConfig
from textnlp_infra.retention import retention_days


@dataclass(frozen=True)
class Route:
    path: str  # below /api/v1
    method: str
    public: bool = False
    cached: bool = False


# The design's resource tree. GETs whose answer is the same for every caller are cached at the
# stage; per-user or live answers (job status, metrics, health) never are.
ROUTES = (
    Route("auth/login", "POST", public=True),
    Route("auth/refresh", "POST", public=True),
    Route("auth/logout", "POST"),
    Route("generate/text", "POST"),
    Route("generate/batch", "POST"),
    Route("generate/status/{job_id}", "GET"),
    Route("validate/quality", "POST"),
    Route("validate/similarity", "POST"),
    Route("validate/metrics", "GET"),
    Route("models/list", "GET", cached=True),
    Route("models/{model_id}", "GET", cached=True),
    Route("models/{model_id}/invoke", "POST"),
    Route("admin/health", "GET", public=True),
    Route("admin/metrics", "GET"),
    Route("admin/cache/clear", "POST"),
)
API_PREFIX = "api/v1"


def _path_parameters(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


class RestApi(Construct):
    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig,
        authorizer_function: lambda_.IFunction, logs_key: kms.IKey,
    ) -> None:
        super().__init__(scope, id_)
        api_config = config.api
        access_logs = logs.LogGroup(
            self, "AccessLogs",
            log_group_name=f"/aws/apigateway/{config.name}-rest-access",
            retention=retention_days(config.compute.log_retention_days),
            encryption_key=logs_key,
        )
        uncached = {
            f"/{API_PREFIX}/{route.path}/{route.method}": apigw.MethodDeploymentOptions(
                caching_enabled=False
            )
            for route in ROUTES
            if route.method == "GET" and not route.cached
        }
        self.api = apigw.RestApi(
            self, "Api",
            rest_api_name=api_config.rest_api_name,
            description="TextNLP REST API (design section 8)",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # API Gateway needs an account-wide role to write logs; kept on stack deletion
            # because other APIs in the account may rely on it.
            cloud_watch_role=True,
            deploy_options=apigw.StageOptions(
                stage_name=api_config.stage_name,
                throttling_rate_limit=api_config.throttling_rate_limit,
                throttling_burst_limit=api_config.throttling_burst_limit,
                cache_cluster_enabled=True,
                cache_cluster_size=api_config.cache_cluster_size,
                caching_enabled=True,
                cache_ttl=Duration.seconds(api_config.cache_ttl_s),
                cache_data_encrypted=True,
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.INFO,
                data_trace_enabled=False,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False, http_method=True, ip=True, protocol=True,
                    request_time=True, resource_path=True, response_length=True,
                    status=True, user=True,
                ),
                method_options=uncached,
            ),
        )
        self.authorizer = apigw.TokenAuthorizer(
            self, "Authorizer",
            authorizer_name=f"{config.name}-jwt",
            handler=authorizer_function,
            identity_source=apigw.IdentitySource.header("Authorization"),
            results_cache_ttl=Duration.minutes(5),
        )
        self.validator = apigw.RequestValidator(
            self, "Validator",
            rest_api=self.api,
            request_validator_name="body-and-parameters",
            validate_request_body=True,
            validate_request_parameters=True,
        )
        root = self.api.root.add_resource("api").add_resource("v1")
        self.methods = [self._add_route(root, route, config) for route in ROUTES]

    def _add_route(
        self, root: apigw.IResource, route: Route, config: EnvConfig
    ) -> apigw.Method:
        resource = root
        for part in route.path.split("/"):
            resource = resource.get_resource(part) or resource.add_resource(part)
        parameters = _path_parameters(route.path)
        integration = apigw.HttpIntegration(
            f"https://{config.origin_host}/{API_PREFIX}/{route.path}",
            http_method=route.method,
            proxy=True,
            options=apigw.IntegrationOptions(
                request_parameters={
                    f"integration.request.path.{name}": f"method.request.path.{name}"
                    for name in parameters
                },
                cache_key_parameters=[f"method.request.path.{name}" for name in parameters],
                timeout=Duration.seconds(29),
            ),
        )
        method = resource.add_method(
            route.method,
            integration,
            authorizer=None if route.public else self.authorizer,
            authorization_type=(
                apigw.AuthorizationType.NONE if route.public else apigw.AuthorizationType.CUSTOM
            ),
            request_validator=self.validator,
            request_parameters={f"method.request.path.{name}": True for name in parameters},
        )
        if route.public:
            skip_checks(
                method,
                ("CKV_AWS_59", f"{route.method} /{API_PREFIX}/{route.path} is called without a "
                 "token by design (sign-in, token refresh or health probe)."),
            )
        return method
