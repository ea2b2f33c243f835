"""Design section 8 and the edge: REST and WebSocket APIs, CloudFront, Route 53."""

from __future__ import annotations

from aws_cdk.assertions import Match

from infra_assembly import Assembly

EXPECTED_PATHS = {
    "/api/v1/auth/login POST", "/api/v1/auth/refresh POST", "/api/v1/auth/logout POST",
    "/api/v1/generate/text POST", "/api/v1/generate/batch POST",
    "/api/v1/generate/status/{job_id} GET",
    "/api/v1/validate/quality POST", "/api/v1/validate/similarity POST",
    "/api/v1/validate/metrics GET",
    "/api/v1/models/list GET", "/api/v1/models/{model_id} GET",
    "/api/v1/models/{model_id}/invoke POST",
    "/api/v1/admin/health GET", "/api/v1/admin/metrics GET", "/api/v1/admin/cache/clear POST",
}


def _paths(assembly: Assembly) -> set[str]:
    resources = assembly.resources("Api", "AWS::ApiGateway::Resource")

    def path(logical: str) -> str:
        properties = resources[logical]["Properties"]
        parent = properties["ParentId"]
        prefix = path(parent["Ref"]) if "Ref" in parent else ""
        return f"{prefix}/{properties['PathPart']}"

    return {
        f"{path(m['Properties']['ResourceId']['Ref'])} {m['Properties']['HttpMethod']}"
        for m in assembly.resources("Api", "AWS::ApiGateway::Method").values()
    }


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


def test_lambda_authorizer_guards_private_routes(assembly: Assembly) -> None:
    assembly.template("Api").has_resource_properties(
        "AWS::ApiGateway::Authorizer", {"Type": "TOKEN"}
    )
    methods = assembly.resources("Api", "AWS::ApiGateway::Method").values()
    public = [m for m in methods if m["Properties"]["AuthorizationType"] == "NONE"]
    assert len(public) == 3  # login, refresh, health


def test_websocket_api(assembly: Assembly) -> None:
    template = assembly.template("Api")
    template.has_resource_properties("AWS::ApiGatewayV2::Api", {"ProtocolType": "WEBSOCKET"})
    template.has_resource_properties("AWS::ApiGatewayV2::Route", {
        "RouteKey": "$connect", "AuthorizationType": "CUSTOM",
    })


def test_cloudfront_and_dns(assembly: Assembly) -> None:
    template = assembly.template("Api")
    template.has_resource_properties("AWS::CloudFront::Distribution", {
        "DistributionConfig": Match.object_like({
            "Aliases": ["api.textnlp.example.com"], "WebACLId": Match.any_value(),
        }),
    })
    template.has_resource_properties("AWS::Route53::RecordSet", {
        "Name": "api.textnlp.example.com.", "Type": "A",
        "HostedZoneId": "Z0123456789ABCDEFGHIJ",
    })
