"""API Gateway (REST): the resource tree, Lambda authorizers, the stage cache, HTTP integrations.

Built from `AWS::ApiGateway::Resource/Method/Authorizer/Stage`. A request is routed like API
Gateway does: static path parts before `{param}` before `{proxy+}`, to the most specific
resource that has the request's method (or ANY); no match is 403 "Missing Authentication
Token". Then its CUSTOM authorizer (whose policy is cached per
identity value and evaluated against each request's method ARN), the stage cache where the
stage's method settings enable caching, else the integration: `HTTP_PROXY` to
`Integration.Uri` with the mapped path parameters and headers. Requests are buffered. A
response is buffered too, and a 504 once `TimeoutInMillis` (29 s by default) passes before it is
whole (checked as each chunk comes), unless the integration's `ResponseTransferMode` is
`STREAM`: then its chunks pass through as they come, until the timeout ends the stream.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from rehearsal.alb import LoadBalancers, relayed
from rehearsal.authorizers import Decision, LambdaAuthorizer
from rehearsal.deploy import Deployed, Deployment
from rehearsal.lambdas import LambdaService
from rehearsal.ledger import Ledger


@dataclass
class Node:
    resource_id: str
    part: str
    parent: Node | None = None
    children: list[Node] = field(default_factory=list)
    methods: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def path(self) -> str:
        if self.parent is None:
            return "/"
        return self.parent.path.rstrip("/") + "/" + self.part

    @property
    def kind(self) -> int:  # the order API Gateway tries children in
        if self.part.endswith("+}"):
            return 2
        return 1 if self.part.startswith("{") else 0

    @property
    def parameter(self) -> str:
        return self.part.strip("{}").rstrip("+")


def _error(status: int, message: str | None, request: httpx.Request,
           error_type: str = "") -> httpx.Response:
    headers = {"x-amzn-errortype": error_type} if error_type else {}
    return httpx.Response(status, json={"message": message}, headers=headers, request=request)


class RestApi:
    def __init__(self, api: Deployed, deployment: Deployment, lambdas: LambdaService,
                 balancers: LoadBalancers, ledger: Ledger) -> None:
        self.id = str(api.physical.ref)
        self.region, self.account = api.stack.region, api.stack.account
        self._balancers = balancers
        self._ledger = ledger
        self.root = Node(str(api.physical.attributes["RootResourceId"]), "")
        self._build_tree(deployment)
        stage = next(s for s in deployment.described("AWS::ApiGateway::Stage")
                     if s.properties.get("RestApiId") == self.id)
        self.stage = str(stage.properties["StageName"])
        self._settings = stage.properties.get("MethodSettings", [])
        self._cache_on = bool(stage.properties.get("CacheClusterEnabled"))
        self._cache: dict[tuple[str, ...], tuple[float, httpx.Response]] = {}
        self._lock = threading.Lock()
        self.authorizers = {
            str(a.physical.ref): LambdaAuthorizer(
                lambdas, str(a.properties["AuthorizerUri"]),
                int(a.properties.get("AuthorizerResultTtlInSeconds", 300)))
            for a in deployment.described("AWS::ApiGateway::Authorizer")
            if a.properties.get("RestApiId") == self.id
        }
        self._authorizer_props = {
            str(a.physical.ref): a.properties
            for a in deployment.described("AWS::ApiGateway::Authorizer")
        }
        self.host = f"{self.id}.execute-api.{self.region}.amazonaws.com"
        ledger.emulate("API Gateway REST: routing, Lambda authorizers and their result cache, "
                       "stage cache (GET), HTTP_PROXY integrations, buffered responses (504 "
                       "past the integration timeout) or streamed ones (ResponseTransferMode "
                       "STREAM)")
        ledger.leave_out("API Gateway throttling and usage plans, request body models, "
                         "CloudFront and the custom domain (the journey calls the stage URL), "
                         "a streamed response's idle timeout and bandwidth past 10 MB")

    @property
    def url(self) -> str:
        return f"https://{self.host}/{self.stage}"

    def _build_tree(self, deployment: Deployment) -> None:
        nodes = {self.root.resource_id: self.root}
        resources = [r for r in deployment.described("AWS::ApiGateway::Resource")
                     if r.properties.get("RestApiId") == self.id]
        for resource in resources:
            nodes[str(resource.physical.ref)] = Node(str(resource.physical.ref),
                                                     str(resource.properties["PathPart"]))
        for resource in resources:
            node = nodes[str(resource.physical.ref)]
            parent = nodes.get(str(resource.properties["ParentId"]))
            if parent is not None:
                node.parent = parent
                parent.children.append(node)
        for method in deployment.described("AWS::ApiGateway::Method"):
            owner = nodes.get(str(method.properties.get("ResourceId")))
            if owner is not None and method.properties.get("RestApiId") == self.id:
                owner.methods[str(method.properties["HttpMethod"]).upper()] = method.properties

    # -- routing --------------------------------------------------------------------------
    def route(self, path: str, http_method: str
              ) -> tuple[Node, dict[str, str], dict[str, Any]] | None:
        """The resource and method serving a request: API Gateway resolves the (resource,
        method) pair, so the most specific path match that has the method (or ANY) wins, and
        a resource without it does not stop the search (a `{proxy+}` may serve it).
        Measured on AWS: floci-io/floci#3399 and ministackorg/ministack#1423."""
        segments = [s for s in path.split("/") if s]
        for node, params, _ in _candidates(self.root, segments, {}):
            method = node.methods.get(http_method) or node.methods.get("ANY")
            if method is not None:
                return node, params, method
        return None

    def method_arn(self, method: str, path: str) -> str:
        return (f"arn:aws:execute-api:{self.region}:{self.account}:{self.id}/{self.stage}/"
                f"{method}/{path.lstrip('/')}")

    # -- a request ------------------------------------------------------------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        prefix = f"/{self.stage}"
        raw = request.url.path
        if raw != prefix and not raw.startswith(prefix + "/"):
            return _error(403, "Forbidden", request, "ForbiddenException")
        path = raw[len(prefix):] or "/"
        found = self.route(path, request.method)
        if found is None:
            return _error(403, "Missing Authentication Token", request,
                          "MissingAuthenticationTokenException")
        node, params, method = found
        missing = self._missing_parameters(method, request)
        if missing:
            return _error(400, f"Missing required request parameters: [{', '.join(missing)}]",
                          request, "BadRequestException")
        decision = Decision(True)
        if method.get("AuthorizationType") == "CUSTOM":
            decision = self._authorize(method, request, params, path)
            if not decision.allowed:
                return _error(decision.status, decision.message, request, decision.error_type)
        cache_key = self._cache_key(node, method, request, params)
        if cache_key is not None:
            cached = self._cached(cache_key, node, request.method)
            if cached is not None:
                return httpx.Response(cached.status_code, headers=cached.headers,
                                      content=cached.content, request=request)
        response = self._integrate(method, request, params, decision)
        streamed = transfer_mode(method.get("Integration", {})) == "STREAM"  # never cached
        if cache_key is not None and not streamed and 200 <= response.status_code < 300:
            with self._lock:
                self._cache[cache_key] = (time.monotonic(), response)
        return response

    def _missing_parameters(self, method: dict[str, Any], request: httpx.Request) -> list[str]:
        missing = []
        for name, required in (method.get("RequestParameters") or {}).items():
            if not required:
                continue
            kind, _, key = name.removeprefix("method.request.").partition(".")
            present = key in (request.headers if kind == "header" else request.url.params)
            if kind in ("header", "querystring") and not present:
                missing.append(key)
        return missing

    def _authorize(self, method: dict[str, Any], request: httpx.Request, params: dict[str, str],
                   path: str) -> Decision:
        authorizer_id = str(method.get("AuthorizerId"))
        authorizer = self.authorizers.get(authorizer_id)
        props = self._authorizer_props.get(authorizer_id, {})
        if authorizer is None:
            return Decision(False, 500, None, error_type="AuthorizerConfigurationException")
        method_arn = self.method_arn(request.method, path)
        sources = [s.strip() for s in str(props.get("IdentitySource", "")).split(",") if s]
        values = [_identity(s, request) for s in sources]
        if any(v is None for v in values) or not sources:
            return Decision(False, 401, "Unauthorized", error_type="UnauthorizedException")
        if props.get("Type", "TOKEN") == "TOKEN":
            event: dict[str, Any] = {"type": "TOKEN", "authorizationToken": values[0],
                                     "methodArn": method_arn}
        else:
            event = {
                "type": "REQUEST", "methodArn": method_arn, "resource": path, "path": path,
                "httpMethod": request.method, "headers": dict(request.headers),
                "queryStringParameters": dict(request.url.params), "pathParameters": params,
                "stageVariables": {},
                "requestContext": {"apiId": self.id, "stage": self.stage,
                                   "httpMethod": request.method, "requestId": str(uuid.uuid4())},
            }
        return authorizer.authorize(event, "\u241f".join(str(v) for v in values))

    # -- the stage cache ------------------------------------------------------------------
    def _setting(self, node: Node, http_method: str, name: str) -> Any:
        escaped = node.path.replace("/", "~1")
        for setting in self._settings:
            if setting.get("ResourcePath") in (f"/{escaped}", escaped) and \
                    setting.get("HttpMethod") in (http_method, "*") and name in setting:
                return setting[name]
        for setting in self._settings:
            if setting.get("ResourcePath") == "/*" and setting.get("HttpMethod") == "*" and \
                    name in setting:
                return setting[name]
        return None

    def _cache_key(self, node: Node, method: dict[str, Any], request: httpx.Request,
                   params: dict[str, str]) -> tuple[str, ...] | None:
        if not self._cache_on or request.method != "GET":
            return None
        if not self._setting(node, request.method, "CachingEnabled"):
            return None
        self._ledger.emulate("API Gateway stage cache: GET answers cached per resource path and "
                             "cache key parameters (not per caller) for CacheTtlInSeconds")
        key = [request.method, node.path]
        for parameter in method.get("Integration", {}).get("CacheKeyParameters", []):
            key.append(f"{parameter}={_method_value(parameter, request, params)}")
        return tuple(key)

    def _cached(self, key: tuple[str, ...], node: Node, method: str) -> httpx.Response | None:
        ttl = float(self._setting(node, method, "CacheTtlInSeconds") or 300)
        with self._lock:
            entry = self._cache.get(key)
        if entry is None or time.monotonic() - entry[0] > ttl:
            return None
        return entry[1]

    # -- the integration ------------------------------------------------------------------
    def _integrate(self, method: dict[str, Any], request: httpx.Request, params: dict[str, str],
                   decision: Decision) -> httpx.Response:
        integration = method.get("Integration", {})
        if integration.get("Type") not in ("HTTP_PROXY",):
            self._ledger.leave_out(f"API Gateway integrations of type {integration.get('Type')}")
            return _error(500, "Internal server error", request)
        request_id = str(uuid.uuid4())
        context: dict[str, Any] = {
            "authorizer": {"principalId": decision.principal, **decision.context},
            "requestId": request_id,
        }
        uri = str(integration["Uri"])
        headers = httpx.Headers([(k, v) for k, v in request.headers.multi_items()
                                 if k.lower() not in ("host", "content-length")])
        query = httpx.QueryParams(request.url.params)
        for target, source in (integration.get("RequestParameters") or {}).items():
            value = _mapped_value(str(source), request, params, context)
            kind, _, name = target.removeprefix("integration.request.").partition(".")
            if kind == "path":
                uri = uri.replace("{" + name + "}", value).replace("{" + name + "+}", value)
            elif kind == "header":
                headers[name] = value
            elif kind == "querystring":
                query = query.set(name, value)
        headers["x-amzn-trace-id"] = f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}"
        headers["x-forwarded-for"] = "127.0.0.1"
        target_url = httpx.URL(uri, params=query)
        forwarded = httpx.Request(request.method, target_url, headers=headers,
                                  content=request.read())
        if not self._balancers.serves(target_url.host):
            self._ledger.leave_out(f"integration endpoint {target_url.host} (not in the "
                                   "templates' load balancers)")
            return _error(500, "Internal server error", request)
        deadline = time.monotonic() + float(integration.get("TimeoutInMillis", 29000)) / 1000
        try:
            upstream = self._balancers.handle(forwarded)
            if transfer_mode(integration) == "STREAM":
                response = relayed(upstream, request, until=deadline)
            else:
                response = _buffered(upstream, request, deadline)
        except httpx.HTTPError:
            return _error(502, "Internal server error", request)
        response.headers["x-amzn-requestid"] = request_id
        return response


def transfer_mode(integration: dict[str, Any]) -> str:
    """How API Gateway returns the integration's response: BUFFERED unless set to STREAM."""
    return str(integration.get("ResponseTransferMode") or "BUFFERED").upper()


def _buffered(upstream: httpx.Response, request: httpx.Request,
              deadline: float) -> httpx.Response:
    """`upstream` read whole, or API Gateway's 504 once the deadline passes first (an endless
    event stream ends here, when its next chunk or keep-alive comment comes late)."""
    chunks: list[bytes] = []
    try:
        for chunk in upstream.iter_bytes():
            if time.monotonic() > deadline:
                return _error(504, "Endpoint request timed out", request)
            chunks.append(chunk)
    finally:
        upstream.close()
    if time.monotonic() > deadline:
        return _error(504, "Endpoint request timed out", request)
    headers = [(k, v) for k, v in upstream.headers.multi_items()
               if k.lower() not in ("content-length", "transfer-encoding")]
    return httpx.Response(upstream.status_code, headers=headers, content=b"".join(chunks),
                          request=request)


def _candidates(node: Node, segments: list[str], params: dict[str, str],
                greedy: bool = False) -> Iterator[tuple[Node, dict[str, str], bool]]:
    """Resources matching the path, most specific first (static, `{param}`, `{proxy+}`)."""
    if not segments:
        yield node, params, greedy
        return
    head, rest = segments[0], segments[1:]
    for child in sorted(node.children, key=lambda n: n.kind):
        if child.kind == 0 and child.part == head:
            yield from _candidates(child, rest, params, greedy)
        elif child.kind == 1:
            yield from _candidates(child, rest, {**params, child.parameter: head}, greedy)
        elif child.kind == 2:
            yield child, {**params, child.parameter: "/".join(segments)}, True


def _identity(source: str, request: httpx.Request) -> str | None:
    kind, _, name = source.removeprefix("method.request.").partition(".")
    if kind == "header":
        return str(request.headers[name]) if name in request.headers else None
    if kind == "querystring":
        return str(request.url.params[name]) if name in request.url.params else None
    return None


def _method_value(source: str, request: httpx.Request, params: dict[str, str]) -> str:
    kind, _, name = source.removeprefix("method.request.").partition(".")
    if kind == "path":
        return params.get(name, "")
    if kind == "header":
        return str(request.headers.get(name, ""))
    if kind == "querystring":
        return str(request.url.params.get(name, ""))
    return ""


def _mapped_value(source: str, request: httpx.Request, params: dict[str, str],
                  context: dict[str, Any]) -> str:
    """A request parameter mapping's source: 'literal', method.request.*, context.*."""
    if source.startswith("'") and source.endswith("'"):
        return source[1:-1]
    if source.startswith("method.request."):
        return _method_value(source, request, params)
    if source.startswith("context."):
        value: Any = context
        for part in source.removeprefix("context.").split("."):
            value = value.get(part, "") if isinstance(value, dict) else ""
        return str(value)
    return ""


class RestGatewayTransport(httpx.BaseTransport):
    """An httpx transport for `https://<api id>.execute-api.<region>.amazonaws.com/<stage>`."""

    def __init__(self, apis: list[RestApi]) -> None:
        self._apis = {api.host: api for api in apis}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        api = self._apis.get(request.url.host)
        if api is None:
            raise httpx.ConnectError(f"no REST API at {request.url.host}", request=request)
        return api.handle(request)
