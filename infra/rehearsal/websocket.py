"""API Gateway (WebSocket): a client connection, its routes, and what the app posts back.

From `AWS::ApiGatewayV2::Api` (WEBSOCKET), its routes, integrations and REQUEST authorizer. A
connection gets an id; `$connect` runs the authorizer (a missing identity source is 401 without
calling it, a Deny is 403) and the route's integration; each frame is routed by the API's route
selection expression (else `$default`) and POSTed by its HTTP_PROXY integration with the mapped
headers (`context.connectionId`...). What the app posts to the connection through the
Management API lands in moto, whose backend keeps it (concatenated JSON documents).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from rehearsal.alb import LoadBalancers
from rehearsal.authorizers import LambdaAuthorizer
from rehearsal.deploy import Deployed, Deployment
from rehearsal.lambdas import LambdaService
from rehearsal.ledger import Ledger


class WebSocketRefused(RuntimeError):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status


@dataclass
class WebSocketConnection:
    api: WebSocketApi
    connection_id: str
    context: dict[str, Any]
    integration_statuses: list[tuple[str, int]] = field(default_factory=list)
    closed: bool = False

    def send(self, frame: str) -> int:
        """Send a text frame; the integration's HTTP status (API Gateway drops its answer)."""
        return self.api.route(self, frame)

    def received(self) -> list[Any]:
        """The messages the app has posted back to this connection, in order."""
        from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends

        backend = apigatewaymanagementapi_backends[self.api.account][self.api.region]
        # moto keeps the id as it was in the request path: percent-encoded ("=" -> "%3D").
        data = b"".join(
            backend.connections[key].data
            for key in (self.connection_id, quote(self.connection_id, safe=""))
            if key in backend.connections
        )
        return split_documents(data)

    def wait_for(self, done: Any, timeout_s: float = 30) -> list[Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            messages = self.received()
            if done(messages):
                return messages
            time.sleep(0.2)
        return self.received()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.api.disconnect(self)


def split_documents(data: bytes) -> list[Any]:
    decoder = json.JSONDecoder()
    text, index, found = data.decode("utf-8", errors="replace"), 0, []
    while index < len(text):
        while index < len(text) and text[index].isspace():
            index += 1
        if index >= len(text):
            break
        try:
            document, index = decoder.raw_decode(text, index)
        except ValueError:
            found.append(text[index:])
            break
        found.append(document)
    return found


class WebSocketApi:
    def __init__(self, api: Deployed, deployment: Deployment, lambdas: LambdaService,
                 balancers: LoadBalancers, ledger: Ledger) -> None:
        self.id = str(api.physical.ref)
        self.region, self.account = api.stack.region, api.stack.account
        self._balancers = balancers
        self.selection = str(api.properties.get("RouteSelectionExpression", ""))

        def mine(type_: str) -> list[Deployed]:
            return [d for d in deployment.described(type_) if d.properties.get("ApiId") == self.id]

        self.routes = {str(r.properties["RouteKey"]): r.properties
                       for r in mine("AWS::ApiGatewayV2::Route")}
        self.integrations = {str(i.physical.ref): i.properties
                             for i in mine("AWS::ApiGatewayV2::Integration")}
        self._authorizers = {str(a.physical.ref): a.properties
                             for a in mine("AWS::ApiGatewayV2::Authorizer")}
        self._lambdas = lambdas
        stages = mine("AWS::ApiGatewayV2::Stage")
        self.stage = str(stages[0].properties["StageName"]) if stages else "$default"
        self.endpoint = str(api.physical.attributes["ApiEndpoint"])
        #: The API's custom domains (ApiGatewayV2::ApiMapping): https://<domain>[/<key>].
        self.domain_urls = [
            f"https://{m.properties['DomainName']}" + (
                f"/{m.properties['ApiMappingKey']}" if m.properties.get("ApiMappingKey") else "")
            for m in mine("AWS::ApiGatewayV2::ApiMapping")
        ]
        ledger.emulate("API Gateway WebSocket: connections, $connect REQUEST authorizer, route "
                       "selection, HTTP_PROXY integrations; posts back land in moto's "
                       "Management API backend")

    @property
    def url(self) -> str:
        return f"{self.endpoint}/{self.stage}"

    def connect(self, query: dict[str, str], headers: dict[str, str] | None = None
                ) -> WebSocketConnection:
        connection_id = uuid.uuid4().hex[:12] + "="
        headers = {"Host": self.endpoint.split("://")[-1], **(headers or {})}
        context: dict[str, Any] = {
            "connectionId": connection_id, "routeKey": "$connect", "eventType": "CONNECT",
            "apiId": self.id, "stage": self.stage, "requestId": str(uuid.uuid4()),
            "domainName": headers["Host"], "connectedAt": int(time.time() * 1000),
            "messageDirection": "IN", "identity": {"sourceIp": "127.0.0.1"}, "authorizer": {},
        }
        connection = WebSocketConnection(self, connection_id, context)
        route = self.routes.get("$connect")
        if route is not None and route.get("AuthorizationType") == "CUSTOM":
            self._authorize(route, query, headers, context)
        if route is not None:
            status = self._call(connection, "$connect", route, None, query, headers)
            if not 200 <= status < 300:
                raise WebSocketRefused(status, "the $connect integration refused")
        return connection

    def _authorize(self, route: dict[str, Any], query: dict[str, str], headers: dict[str, str],
                   context: dict[str, Any]) -> None:
        props = self._authorizers.get(str(route.get("AuthorizerId")), {})
        for source in props.get("IdentitySource", []):
            kind, _, name = str(source).removeprefix("route.request.").partition(".")
            present = name in query if kind == "querystring" else (
                name.lower() in {h.lower() for h in headers})
            if not present:
                raise WebSocketRefused(401, f"identity source {source} missing")
        authorizer = LambdaAuthorizer(self._lambdas, str(props.get("AuthorizerUri", "")), 0)
        event = {
            "type": "REQUEST",
            "methodArn": f"arn:aws:execute-api:{self.region}:{self.account}:{self.id}/"
                         f"{self.stage}/$connect",
            "headers": headers, "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": query,
            "multiValueQueryStringParameters": {k: [v] for k, v in query.items()},
            "stageVariables": {}, "requestContext": {**context},
        }
        decision = authorizer.authorize(event, None)
        if not decision.allowed:
            raise WebSocketRefused(decision.status, str(decision.message))
        context["authorizer"] = {"principalId": decision.principal, **decision.context}

    def route(self, connection: WebSocketConnection, frame: str) -> int:
        key = "$default"
        if self.selection.startswith("$request.body."):
            try:
                body = json.loads(frame)
                value = body.get(self.selection.removeprefix("$request.body."))
            except (ValueError, AttributeError):
                value = None
            if isinstance(value, str) and value in self.routes:
                key = value
        route = self.routes.get(key)
        if route is None:
            return 0
        return self._call(connection, key, route, frame, {}, {})

    def disconnect(self, connection: WebSocketConnection) -> None:
        route = self.routes.get("$disconnect")
        if route is not None:
            self._call(connection, "$disconnect", route, None, {}, {})

    def _call(self, connection: WebSocketConnection, key: str, route: dict[str, Any],
              body: str | None, query: dict[str, str], headers: dict[str, str]) -> int:
        integration = self.integrations.get(str(route.get("Target", "")).split("/")[-1])
        if integration is None or integration.get("IntegrationType") != "HTTP_PROXY":
            return 500
        context = {**connection.context, "routeKey": key,
                   "eventType": {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(
                       key, "MESSAGE")}
        mapped = dict(headers)
        for target, source in (integration.get("RequestParameters") or {}).items():
            name = target.removeprefix("integration.request.header.")
            mapped[name] = _context_value(str(source), context, query, headers)
        mapped.pop("Host", None)
        request = httpx.Request(
            str(integration.get("IntegrationMethod", "POST")), str(integration["IntegrationUri"]),
            params=query, headers=mapped, content=(body or "").encode(),
        )
        try:
            answer = self._balancers.handle(request)
            answer.read()  # the route's work lasts as long as its answer (read, it is closed)
            status = answer.status_code
        except httpx.HTTPError:
            status = 502
        connection.integration_statuses.append((key, status))
        return status


def _context_value(source: str, context: dict[str, Any], query: dict[str, str],
                   headers: dict[str, str]) -> str:
    if source.startswith("'") and source.endswith("'"):
        return source[1:-1]
    if source.startswith("route.request.querystring."):
        return query.get(source.removeprefix("route.request.querystring."), "")
    if source.startswith("route.request.header."):
        return headers.get(source.removeprefix("route.request.header."), "")
    value: Any = context
    for part in source.removeprefix("context.").split("."):
        value = value.get(part, "") if isinstance(value, dict) else ""
    return str(value)
