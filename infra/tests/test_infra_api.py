"""Design section 8 and the edge: REST and WebSocket APIs, CloudFront, Route 53."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match
from textnlp import deployment
from textnlp.config import env_name, load_settings

from infra_assembly import Assembly, rest_method_properties, rest_methods, rest_route
from textnlp_infra.constructs.rest_api import API_PREFIX, CALLER_CACHE_KEY, ROUTES

EXPECTED_PATHS = {
    "/api/v1/auth/login POST", "/api/v1/auth/refresh POST", "/api/v1/auth/logout POST",
    "/api/v1/generate/text POST", "/api/v1/generate/batch POST",
    "/api/v1/generate/status/{job_id} GET",
    "/api/v1/validate/quality POST", "/api/v1/validate/similarity POST",
    "/api/v1/validate/metrics GET",
    "/api/v1/models/list GET", "/api/v1/models/{model_id} GET",
    "/api/v1/models/{model_id}/invoke POST",
    "/api/v1/admin/health GET", "/api/v1/admin/metrics GET", "/api/v1/admin/cache/clear POST",
    # Every other route of the app, and its documents.
    "/api/v1/{proxy+} ANY", "/docs GET", "/openapi.json GET",
    # The OpenAI-compatible surface (/v1/models, /v1/chat/completions, files, batches...).
    "/v1/{proxy+} ANY",
    # The web console (public at the gateway: the app checks its session cookie).
    "/console GET", "/console/{proxy+} ANY",
}


def _paths(assembly: Assembly) -> set[str]:
    return {f"{path} {method}" for path, method in rest_methods(assembly)}


def test_resource_tree(assembly: Assembly) -> None:
    assert _paths(assembly) == EXPECTED_PATHS


def test_rest_api_stage(assembly: Assembly) -> None:
    template = assembly.template("Api")
    template.has_resource_properties("AWS::ApiGateway::RestApi", {"Name": "textnlp-api"})
    template.has_resource_properties("AWS::ApiGateway::Stage", {
        "StageName": "prod", "CacheClusterEnabled": True, "CacheClusterSize": "1.6",
        "TracingEnabled": True,
        "MethodSettings": Match.array_with([Match.object_like({
            "HttpMethod": "*", "ResourcePath": "/*", "ThrottlingRateLimit": 1000,
            "ThrottlingBurstLimit": 5000, "CachingEnabled": True,
        })]),
    })
    template.has_resource_properties("AWS::ApiGateway::RequestValidator", {
        "ValidateRequestBody": True, "ValidateRequestParameters": True,
    })


def test_both_stages_log_only_once_the_accounts_logging_role_is_set(assembly: Assembly) -> None:
    # API Gateway refuses a stage that logs to CloudWatch until the account's CloudWatch role
    # is set ("CloudWatch Logs role ARN must be set in account settings to enable logging").
    (account,) = assembly.resources("Api", "AWS::ApiGateway::Account")
    stages = {
        **assembly.resources("Api", "AWS::ApiGateway::Stage"),
        **assembly.resources("Api", "AWS::ApiGatewayV2::Stage"),
    }
    assert len(stages) == 2
    for stage in stages.values():
        assert account in stage.get("DependsOn", [])


def test_lambda_authorizer_guards_private_routes(assembly: Assembly) -> None:
    assembly.template("Api").has_resource_properties(
        "AWS::ApiGateway::Authorizer", {"Type": "TOKEN"}
    )
    methods = assembly.resources("Api", "AWS::ApiGateway::Method").values()
    public = [m for m in methods if m["Properties"]["AuthorizationType"] == "NONE"]
    # login, refresh, health, docs, openapi.json, and the console (/console, /console/{proxy+}),
    # whose pages the app authenticates by their session cookie
    assert len(public) == 7


def test_websocket_api(assembly: Assembly) -> None:
    template = assembly.template("Api")
    template.has_resource_properties("AWS::ApiGatewayV2::Api", {"ProtocolType": "WEBSOCKET"})
    template.has_resource_properties("AWS::ApiGatewayV2::Route", {
        "RouteKey": "$connect", "AuthorizationType": "CUSTOM",
    })
    # The app's own query parameter, forwarded to the app's gateway route with the origin header.
    template.has_resource_properties("AWS::ApiGatewayV2::Authorizer", {
        "IdentitySource": [f"route.request.querystring.{deployment.ACCESS_TOKEN_PARAMETER}"],
    })
    integrations = assembly.resources("Api", "AWS::ApiGatewayV2::Integration").values()
    assert len(integrations) == 3
    for integration in integrations:
        properties = integration["Properties"]
        assert properties["IntegrationUri"] == (
            f"https://origin.textnlp.example.com{deployment.GATEWAY_STREAM_PATH}"
        )
        assert f"integration.request.header.{deployment.ORIGIN_VERIFY_HEADER}" in (
            properties["RequestParameters"]
        )
    template.has_resource_properties("AWS::ApiGatewayV2::DomainName", {
        "DomainName": "stream.textnlp.example.com",
    })


def test_every_rest_method_sends_the_origin_header(assembly: Assembly) -> None:
    for method in assembly.resources("Api", "AWS::ApiGateway::Method").values():
        parameters = method["Properties"]["Integration"]["RequestParameters"]
        value = parameters[f"integration.request.header.{deployment.ORIGIN_VERIFY_HEADER}"]
        assert "resolve:secretsmanager" in json.dumps(value)  # a reference, never the value


def test_the_proxy_is_never_cached(assembly: Assembly) -> None:
    stage = next(iter(assembly.resources("Api", "AWS::ApiGateway::Stage").values()))
    settings = {s["ResourcePath"]: s for s in stage["Properties"]["MethodSettings"]}
    assert settings["/~1api~1v1~1{proxy+}"]["CachingEnabled"] is False


def test_cached_answers_are_keyed_by_the_callers_credential(assembly: Assembly) -> None:
    # The authorizer allows any well-formed API key (the app checks it): a cache hit, which
    # skips the app, must be the same caller's.
    methods = rest_method_properties(assembly)
    for route in ROUTES:
        method = methods[(f"/{API_PREFIX}/{route.path}", route.method)]
        keyed = CALLER_CACHE_KEY in method["Integration"].get("CacheKeyParameters", [])
        assert keyed is route.cached, route
        if route.cached:
            assert method["RequestParameters"][CALLER_CACHE_KEY] is True
    assert any(route.cached for route in ROUTES)


def test_cloudfront_and_dns(assembly: Assembly) -> None:
    template = assembly.template("Api")
    template.has_resource_properties("AWS::CloudFront::Distribution", {
        "DistributionConfig": Match.object_like({
            "Aliases": ["api.textnlp.example.com"], "WebACLId": Match.any_value(),
            "PriceClass": "PriceClass_All",  # the design's global edge locations
        }),
    })
    template.has_resource_properties("AWS::Route53::RecordSet", {
        "Name": "api.textnlp.example.com.", "Type": "A",
        "HostedZoneId": "Z0123456789ABCDEFGHIJ",
    })


def test_logins_are_limited_per_viewer_at_the_edge(assembly: Assembly) -> None:
    """Behind CloudFront -> API Gateway -> ALB the app's peer is the gateway: the edge's WAF,
    which sees the viewer, limits the auth routes per address, and the app's own per-address
    login limit is off (a shared bucket would lock every user out together)."""
    acls = {
        acl["Properties"]["Scope"]: acl["Properties"]
        for section in ("Api", "Compute")
        for acl in assembly.resources(section, "AWS::WAFv2::WebACL").values()
    }
    edge = {rule["Name"]: rule for rule in acls["CLOUDFRONT"]["Rules"]}
    statement = edge["LoginRateLimitPerIp"]["Statement"]["RateBasedStatement"]
    assert statement["AggregateKeyType"] == "IP" and statement["Limit"] == 100
    match = statement["ScopeDownStatement"]["ByteMatchStatement"]
    assert match["SearchString"] == "/api/v1/auth/"
    assert match["PositionalConstraint"] == "STARTS_WITH"
    assert "LoginRateLimitPerIp" not in {rule["Name"] for rule in acls["REGIONAL"]["Rules"]}
    tasks = assembly.resources("Compute", "AWS::ECS::TaskDefinition").values()
    api_task = next(t["Properties"] for t in tasks if t["Properties"]["Family"] == "textnlp-api")
    app = next(c for c in api_task["ContainerDefinitions"] if c["Name"] == "api")
    variables = {e["Name"]: e["Value"] for e in app["Environment"]}
    name = env_name("api", "login_limit_per_address")
    parsed = load_settings(environ={"TEXTNLP_PROFILE": "local", name: variables[name]})
    assert parsed.api.login_limit_per_address is None


def test_environments_sharing_an_account_have_their_own_api_names() -> None:
    """API Gateway's metrics are found by the API's name: with one name, dev's 5xx would
    fire production's alarm. Production keeps the design's names."""
    from textnlp_infra.config import for_environment

    production, dev = for_environment("production"), for_environment("dev")
    assert (production.rest_api_name, production.websocket_api_name) == (
        "textnlp-api", "textnlp-stream")
    assert (dev.rest_api_name, dev.websocket_api_name) == ("textnlp-dev-api", "textnlp-dev-stream")


def test_a_model_id_with_a_slash_reaches_the_app(assembly: Assembly) -> None:
    """`org/llama3` (vLLM serves Hugging Face names): `{model_id}` matches one segment, and
    API Gateway then serves the path from the nearest greedy resource, `/api/v1/{proxy+}`.
    Routed as API Gateway routes (the rehearsal's router, on the synthesised tree), each
    request reaches the app's own path, which routes `{model_id:path}`."""
    for method, path in (("GET", "/api/v1/models/org/llama3"),
                         ("POST", "/api/v1/models/org/llama3/invoke"),
                         ("POST", "/api/v1/models/smollm2/invoke"),
                         ("GET", "/api/v1/models/smollm2")):
        assert rest_route(assembly, method, path)["OriginPath"] == path


def test_the_event_stream_routes_stream_and_the_others_buffer(assembly: Assembly) -> None:
    """A buffered integration holds a Server-Sent Events answer until it ends and 504s at
    29 s: the console's live job events never came. The routes that answer event streams
    stream (for API Gateway's longest, 15 minutes) and are never cached; the rest buffer."""
    methods = rest_method_properties(assembly)
    streamed = {key for key, method in methods.items()
                if method["Integration"].get("ResponseTransferMode") == "STREAM"}
    assert streamed == {("/api/v1/generate/text", "POST"), ("/v1/{proxy+}", "ANY"),
                        ("/console/{proxy+}", "ANY")}
    for key, method in methods.items():
        assert method["Integration"]["TimeoutInMillis"] == (
            900_000 if key in streamed else 29_000), key
    stage = next(iter(assembly.resources("Api", "AWS::ApiGateway::Stage").values()))
    settings = {(s["ResourcePath"], s["HttpMethod"]): s
                for s in stage["Properties"]["MethodSettings"]}
    assert settings[("/~1api~1v1~1generate~1text", "POST")]["CachingEnabled"] is False
    for path in ("/~1v1~1{proxy+}", "/~1console~1{proxy+}"):
        assert settings[(path, "*")]["CachingEnabled"] is False
