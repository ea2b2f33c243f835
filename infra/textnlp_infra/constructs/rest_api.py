"""Design section 8, API Gateway REST `textnlp-api`: the resource tree, authorizer, stage.

Every method is an HTTP proxy to the ALB (`https://origin.<domain>/...`), which routes to the
ECS API service, with the origin header (`X-Origin-Verify`, a generated secret resolved at
deployment) without which the app refuses a request: the authorizer and throttling cannot be
walked around through the load balancer. The design's 15 routes keep their own resources
(caching, public sign-in); `/api/v1/{proxy+}` carries every other route of the app (uploads,
job lists, cancel, results, API keys...), and `/v1/{proxy+}` the OpenAI-compatible surface, and
`/console/{proxy+}` the web console, so the gateway serves the whole app. The Lambda
authorizer guards all routes except the ones a client calls before it has a token (login,
refresh), the health probe and the API's own documentation.

A buffered integration answers only once the whole response is in, and 504s at 29 seconds:
the routes that answer Server-Sent Events (`generate/text` and `/v1/...` with `stream=true`,
the console's live job events, which last until the browser leaves) stream instead
(`ResponseTransferMode: STREAM`), for up to API Gateway's 15 minutes; the console's page
then reconnects.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct
from textnlp.deployment import ORIGIN_VERIFY_HEADER

from textnlp_infra.checkov import skip_checks
from textnlp_infra.config import EnvConfig
from textnlp_infra.retention import retention_days


@dataclass(frozen=True)
class Route:
    path: str  # below /api/v1
    method: str
    public: bool = False
    cached: bool = False
    #: Answers Server-Sent Events: passed through as it comes, never buffered or cached.
    streamed: bool = False


# The design's resource tree. GETs whose answer is the same for every caller are cached at the
# stage; per-user or live answers (job status, metrics, health) never are.
# A cached answer is keyed by its caller's credential too: a hit skips the app, and the
# authorizer lets any well-formed API key through for the app to check (it cannot read them),
# so a made-up key must never be served what a real caller's request cached.
CALLER_CACHE_KEY = "method.request.header.Authorization"
ROUTES = (
    Route("auth/login", "POST", public=True),
    Route("auth/refresh", "POST", public=True),
    Route("auth/logout", "POST"),
    Route("generate/text", "POST", streamed=True),
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
#: Every other route of the app, below the API prefix: one greedy proxy resource.
PROXY_ROUTE = Route("{proxy+}", "ANY")
#: The OpenAI-compatible surface (`/v1/models`, `/v1/chat/completions`, files, batches...):
#: one greedy proxy at the root, authorised like the API (OpenAI clients send
#: `Authorization: Bearer <API key>`), never cached (every answer is the caller's).
OPENAI_ROUTE = Route("v1/{proxy+}", "ANY", streamed=True)
#: The web console (`/console`, its pages and static files): public at the gateway, whose
#: authorizer reads the Authorization header while a browser sends the console's session
#: cookie; the app authenticates every page itself (cookie session, CSRF, CSP). Never cached.
CONSOLE_ROUTES = (
    Route("console", "GET", public=True),
    Route("console/{proxy+}", "ANY", public=True, streamed=True),
)
#: A buffered integration's limit (API Gateway's default), and a streamed one's: the longest a
#: response may stream.
BUFFERED_TIMEOUT = Duration.seconds(29)
STREAMED_TIMEOUT = Duration.minutes(15)
#: The app's OpenAPI documents, public like the sign-in routes.
DOCUMENT_PATHS = ("docs", "openapi.json")
API_PREFIX = "api/v1"


def _path_parameters(path: str) -> list[str]:
    return [part[1:-1].removesuffix("+") for part in path.split("/") if part.startswith("{")]


class RestApi(Construct):
    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig,
        authorizer_function: lambda_.IFunction, logs_key: kms.IKey, origin_verify: str,
    ) -> None:
        super().__init__(scope, id_)
        self._origin_verify = origin_verify
        api_config = config.api
        access_logs = logs.LogGroup(
            self, "AccessLogs",
            log_group_name=f"/aws/apigateway/{config.name}-rest-access",
            retention=retention_days(config.compute.log_retention_days),
            encryption_key=logs_key,
        )
        # API Gateway caches GETs by path alone, not per caller: only the routes whose answer
        # is the same for everyone stay cached (a job list through the proxy must not be).
        uncached = {
            f"/{API_PREFIX}/{route.path}/{route.method}": apigw.MethodDeploymentOptions(
                caching_enabled=False
            )
            for route in (*ROUTES, Route(PROXY_ROUTE.path, "*"))
            if (route.method in {"GET", "*"} and not route.cached) or route.streamed
        }
        for path in (OPENAI_ROUTE.path, *(route.path for route in CONSOLE_ROUTES)):
            uncached[f"/{path}/*"] = apigw.MethodDeploymentOptions(caching_enabled=False)
        self.api = apigw.RestApi(
            self, "Api",
            rest_api_name=config.rest_api_name,
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
        api_root = self.api.root.add_resource("api").add_resource("v1")
        self.methods = [self._add_route(api_root, route, config) for route in ROUTES]
        self.methods.append(self._add_route(api_root, PROXY_ROUTE, config))
        self.methods.append(self._add_route(self.api.root, OPENAI_ROUTE, config, prefix=""))
        self.methods += [
            self._add_route(self.api.root, route, config, prefix="") for route in CONSOLE_ROUTES
        ]
        self.methods += [
            self._add_route(self.api.root, Route(path, "GET", public=True), config, prefix="")
            for path in DOCUMENT_PATHS
        ]

    def _add_route(
        self, root: apigw.IResource, route: Route, config: EnvConfig, prefix: str = API_PREFIX
    ) -> apigw.Method:
        resource = root
        for part in route.path.split("/"):
            resource = resource.get_resource(part) or resource.add_resource(part)
        parameters = _path_parameters(route.path)
        origin_path = "/".join(
            part.removesuffix("+}") + "}" if part.endswith("+}") else part
            for part in route.path.split("/")
        )
        integration = apigw.HttpIntegration(
            f"https://{config.origin_host}/{prefix + '/' if prefix else ''}{origin_path}",
            http_method=route.method,
            proxy=True,
            options=apigw.IntegrationOptions(
                request_parameters={
                    **{
                        f"integration.request.path.{name}": f"method.request.path.{name}"
                        for name in parameters
                    },
                    f"integration.request.header.{ORIGIN_VERIFY_HEADER}": (
                        f"'{self._origin_verify}'"
                    ),
                },
                cache_key_parameters=[
                    *(f"method.request.path.{name}" for name in parameters),
                    *([CALLER_CACHE_KEY] if route.cached else []),
                ],
                timeout=STREAMED_TIMEOUT if route.streamed else BUFFERED_TIMEOUT,
                # Unset is BUFFERED, API Gateway's default.
                response_transfer_mode=(
                    apigw.ResponseTransferMode.STREAM if route.streamed else None
                ),
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
            request_parameters={
                **{f"method.request.path.{name}": True for name in parameters},
                **({CALLER_CACHE_KEY: True} if route.cached else {}),
            },
        )
        if route.public:
            skip_checks(
                method,
                ("CKV_AWS_59", f"{route.method} /{prefix}/{route.path} is called without a "
                 "token by design (sign-in, token refresh, health probe, API documents, or the web "
                 "console, which the app authenticates by its session cookie)."),
            )
        return method
