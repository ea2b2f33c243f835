"""Design section 8 and the edge: REST and WebSocket APIs, CloudFront, Route 53."""

from __future__ import annotations

import json
import subprocess
from types import SimpleNamespace
from typing import Any

from aws_cdk.assertions import Match
from starlette.requests import Request
from textnlp import deployment
from textnlp.api.deps import client_address_of
from textnlp.config import load_settings

from infra_assembly import Assembly, rest_method_properties, rest_methods, rest_route
from test_app_contract import deployed_environment
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
    """The edge's WAF, which sees the viewer, limits the auth routes per address too."""
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


def _api_container(assembly: Assembly) -> dict[str, Any]:
    tasks = assembly.resources("Compute", "AWS::ECS::TaskDefinition").values()
    api_task = next(t["Properties"] for t in tasks if t["Properties"]["Family"] == "textnlp-api")
    container: dict[str, Any] = next(
        c for c in api_task["ContainerDefinitions"] if c["Name"] == "api"
    )
    return container


def _distribution(assembly: Assembly) -> dict[str, Any]:
    (distribution,) = assembly.resources("Api", "AWS::CloudFront::Distribution").values()
    config: dict[str, Any] = distribution["Properties"]["DistributionConfig"]
    return config


def _edge_headers(assembly: Assembly, viewer: str, sent: dict[str, str]) -> dict[str, str]:
    """What the app receives of a viewer's request through the distribution: the viewer's own
    headers as the synthesised viewer-request function leaves them (run in Node), then the
    origin's custom headers (which CloudFront writes over the viewer's), each secret as the
    API task gets it (the contract test's placeholder for the secret the reference names)."""
    (function,) = assembly.resources("Api", "AWS::CloudFront::Function").values()
    event = {
        "viewer": {"ip": viewer},
        "request": {"headers": {
            name.lower(): {"value": value, "multiValue": [{"value": value}, {"value": value}]}
            for name, value in sent.items()
        }},
    }
    script = (
        f"{function['Properties']['FunctionCode']}\n"
        f"process.stdout.write(JSON.stringify(handler({json.dumps(event)})));"
    )
    ran = subprocess.run(["node", "-e", script], capture_output=True, text=True, check=True)
    headers = {name: entry["value"] for name, entry in json.loads(ran.stdout)["headers"].items()}
    secrets = _api_container(assembly)["Secrets"]
    for origin in _distribution(assembly)["Origins"]:
        for custom in origin.get("OriginCustomHeaders", []):
            reference = json.dumps(custom["HeaderValue"])
            (secret,) = [s for s in secrets if json.dumps(s["ValueFrom"]) in reference]
            value = deployed_environment({"Secrets": [secret]})[secret["Name"]]
            headers[custom["HeaderName"].lower()] = value
    return headers


def test_the_app_believes_the_viewer_address_only_the_edge_sends(assembly: Assembly) -> None:
    """The deployment's API task, its settings loaded from the synthesised environment, sees
    the viewer's address on what came through the distribution (its function's header and its
    secret origin header), and its peer on what did not: a request to API Gateway's own URL,
    whatever address it claims. So the per-address login limit and the bucket of an address a
    user logged in from stay on (without the address, a shared bucket would lock every user
    out together, and anyone could lock a user out of their account)."""
    behavior = _distribution(assembly)["DefaultCacheBehavior"]
    assert [a["EventType"] for a in behavior["FunctionAssociations"]] == ["viewer-request"]
    settings = load_settings(environ=deployed_environment(_api_container(assembly)))
    assert settings.api.login_limit_per_address is not None
    assert settings.api.viewer_verify.get_secret_value()
    assert settings.api.trusted_proxies == []
    app = SimpleNamespace(state=SimpleNamespace(settings=settings))

    def address(headers: dict[str, str]) -> str:
        scope = {
            "type": "http", "app": app, "client": ("10.0.1.5", 40000),
            "headers": [(name.lower().encode(), value.encode()) for name, value in headers.items()],
        }
        return client_address_of(Request(scope))

    forged = {
        deployment.VIEWER_ADDRESS_HEADER: "192.0.2.66", deployment.VIEWER_VERIFY_HEADER: "guess",
        "X-Forwarded-For": "192.0.2.67",
    }
    through_edge = _edge_headers(assembly, "203.0.113.7", forged)
    assert address(through_edge) == "203.0.113.7"
    assert address(_edge_headers(assembly, "2001:db8::7", {})) == "2001:db8::7"
    # Around the distribution (API Gateway's own URL): the claim is ignored.
    assert address(forged) == "10.0.1.5"
    around = {**through_edge}
    del around[deployment.VIEWER_VERIFY_HEADER.lower()]
    assert address(around) == "10.0.1.5"


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
