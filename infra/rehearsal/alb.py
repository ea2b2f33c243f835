"""The Application Load Balancer: listener rules, default actions, target groups.

From `AWS::ElasticLoadBalancingV2::Listener` and `ListenerRule`: rules in priority order, each
matching when all its conditions do (`http-header`, `path-pattern`, `host-header`,
`http-request-method`, `query-string`; values with `*` and `?`); the first match's action,
else the listener's default action: `forward` to a target group (the ECS service's tasks that
registered in it), `fixed-response` or `redirect`. Requests reach it by the hosts that Route 53
aliases to the load balancer's DNS name, from API Gateway's integrations or straight.

A forwarded answer streams as the task sends it (an ALB does not buffer): its body is read
from the task while the caller reads it, and closing the answer closes the task's connection.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from rehearsal.deploy import Deployed, Deployment
from rehearsal.iam_policy import matches
from rehearsal.ledger import Ledger

_HOP_HEADERS = {"content-encoding", "content-length", "transfer-encoding", "connection"}


class TargetGroups:
    """Target group ARN -> the local addresses of the tasks registered in it."""

    def __init__(self) -> None:
        self._targets: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._turn = 0

    def register(self, group_arn: str, address: str) -> None:
        with self._lock:
            self._targets.setdefault(group_arn, []).append(address)

    def deregister(self, address: str) -> None:
        with self._lock:
            for addresses in self._targets.values():
                if address in addresses:
                    addresses.remove(address)

    def pick(self, group_arn: str) -> str | None:
        with self._lock:
            addresses = self._targets.get(group_arn) or []
            if not addresses:
                return None
            self._turn += 1
            return addresses[self._turn % len(addresses)]


@dataclass(frozen=True)
class Listener:
    load_balancer: Deployed
    port: int
    default_actions: list[dict[str, Any]]
    rules: list[tuple[int, list[dict[str, Any]], list[dict[str, Any]]]]  # priority, conds, acts


class LoadBalancers:
    def __init__(self, deployment: Deployment, targets: TargetGroups, ledger: Ledger) -> None:
        self.targets = targets
        self._ledger = ledger
        self._listeners: list[Listener] = []
        self.hosts: dict[str, Deployed] = {}
        #: Route 53 names aliased to a load balancer (its own DNS name aside).
        self.aliases: dict[str, Deployed] = {}
        balancers = deployment.described("AWS::ElasticLoadBalancingV2::LoadBalancer")
        for listener in deployment.described("AWS::ElasticLoadBalancingV2::Listener"):
            props = listener.properties
            owner = next((b for b in balancers if b.physical.ref == props["LoadBalancerArn"]),
                         None)
            if owner is None:
                continue
            rules = sorted(
                (int(r.properties.get("Priority", 50000)), r.properties.get("Conditions", []),
                 r.properties.get("Actions", []))
                for r in deployment.described("AWS::ElasticLoadBalancingV2::ListenerRule")
                if r.properties.get("ListenerArn") == listener.physical.ref
            )
            self._listeners.append(Listener(owner, int(props["Port"]),
                                            props.get("DefaultActions", []), rules))
        for record in deployment.described("AWS::Route53::RecordSet"):
            alias = record.properties.get("AliasTarget", {}).get("DNSName", "")
            name = str(record.properties.get("Name", "")).rstrip(".").lower()
            for balancer in balancers:
                dns = str(balancer.physical.attributes["DNSName"]).lower()
                if str(alias).lower().removeprefix("dualstack.").rstrip(".") == dns:
                    self.hosts[name] = self.aliases[name] = balancer
        for balancer in balancers:
            self.hosts[str(balancer.physical.attributes["DNSName"]).lower()] = balancer
        ledger.emulate("ALB listener rules, default actions and target groups (no TLS: the "
                       "rehearsal's clients speak to it in process)")
        ledger.leave_out("WAF web ACLs (regional and CloudFront), ALB TLS policies and "
                         "certificates, health-check-driven target deregistration")

    def serves(self, host: str) -> bool:
        return host.lower() in self.hosts

    def handle(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host.lower()
        balancer = self.hosts.get(host)
        port = request.url.port or (443 if request.url.scheme == "https" else 80)
        listener = next((x for x in self._listeners
                         if balancer and x.load_balancer is balancer and x.port == port), None)
        if listener is None:
            raise httpx.ConnectError(f"no load balancer listens on {host}:{port}",
                                     request=request)
        for _, conditions, actions in listener.rules:
            if all(_condition(c, request) for c in conditions):
                return self._act(actions, request)
        return self._act(listener.default_actions, request)

    def _act(self, actions: list[dict[str, Any]], request: httpx.Request) -> httpx.Response:
        response = self._terminal(actions, request)
        # Which action answered (a fixed response is the ALB's, a forward the app's).
        response.extensions["alb_action"] = sorted(
            actions, key=lambda a: int(a.get("Order", 0)))[-1].get("Type")
        return response

    def _terminal(self, actions: list[dict[str, Any]], request: httpx.Request
                  ) -> httpx.Response:
        action = sorted(actions, key=lambda a: int(a.get("Order", 0)))[-1]
        kind = action.get("Type")
        if kind == "fixed-response":
            config = action.get("FixedResponseConfig", {})
            return httpx.Response(
                int(config.get("StatusCode", 200)), content=str(config.get("MessageBody", "")),
                headers={"content-type": config.get("ContentType", "text/plain")},
                request=request,
            )
        if kind == "redirect":
            config = action.get("RedirectConfig", {})
            url = request.url.copy_with(scheme=str(config.get("Protocol", "https")).lower(),
                                        port=int(config.get("Port", 443)))
            status = 301 if config.get("StatusCode") == "HTTP_301" else 302
            return httpx.Response(status, headers={"location": str(url)}, request=request)
        if kind == "forward":
            return self._forward(_target_group(action), request)
        self._ledger.leave_out(f"ALB action {kind}")
        return httpx.Response(500, text=f"action {kind} not emulated", request=request)

    def _forward(self, group: str, request: httpx.Request) -> httpx.Response:
        address = self.targets.pick(group)
        if address is None:  # no healthy target registered
            return httpx.Response(503, text="503 Service Temporarily Unavailable",
                                  request=request)
        headers = httpx.Headers(request.headers)
        headers["x-forwarded-proto"] = request.url.scheme
        headers["x-forwarded-port"] = str(request.url.port or 443)
        headers["x-forwarded-for"] = ", ".join(
            filter(None, [headers.get("x-forwarded-for"), "127.0.0.1"]))
        url = httpx.URL(f"http://{address}{request.url.raw_path.decode()}")
        client = httpx.Client(timeout=120)
        try:
            upstream = client.send(client.build_request(
                request.method, url, headers=headers, content=request.read()), stream=True)
        except BaseException:
            client.close()
            raise
        return relayed(upstream, request, on_close=client.close)


class _Relay(httpx.SyncByteStream):
    """`upstream`'s decoded body, read as the caller reads, cut at the monotonic time `until`
    (a streamed integration's timeout); closing it closes `upstream`."""

    def __init__(self, upstream: httpx.Response, on_close: Any = None,
                 until: float | None = None) -> None:
        self._upstream = upstream
        self._on_close = on_close
        self._until = until

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._upstream.iter_bytes():
            if self._until is not None and time.monotonic() > self._until:
                return
            yield chunk

    def close(self) -> None:
        self._upstream.close()
        if self._on_close is not None:
            self._on_close()


def _headers(upstream: httpx.Response) -> list[tuple[str, str]]:
    """`upstream`'s headers but the hop-by-hop ones (its body is relayed decoded)."""
    return [(k, v) for k, v in upstream.headers.multi_items() if k.lower() not in _HOP_HEADERS]


def relayed(upstream: httpx.Response, request: httpx.Request, on_close: Any = None,
            until: float | None = None) -> httpx.Response:
    """`upstream` answering `request`, its body streamed through as it comes."""
    return httpx.Response(upstream.status_code, headers=_headers(upstream),
                          stream=_Relay(upstream, on_close, until), request=request)


def _target_group(action: dict[str, Any]) -> str:
    if "TargetGroupArn" in action:
        return str(action["TargetGroupArn"])
    groups = action.get("ForwardConfig", {}).get("TargetGroups", [])
    return str(max(groups, key=lambda g: int(g.get("Weight", 1)))["TargetGroupArn"])


def _condition(condition: dict[str, Any], request: httpx.Request) -> bool:
    field = condition.get("Field")
    if field == "http-header":
        config = condition.get("HttpHeaderConfig", {})
        values = request.headers.get_list(str(config.get("HttpHeaderName", "")))
        return any(matches(p, v, ignore_case=True) for p in config.get("Values", [])
                   for v in values)
    if field == "path-pattern":
        patterns = condition.get("PathPatternConfig", {}).get("Values") or condition.get(
            "Values", [])
        return any(matches(p, request.url.path) for p in patterns)
    if field == "host-header":
        patterns = condition.get("HostHeaderConfig", {}).get("Values") or condition.get(
            "Values", [])
        host = request.headers.get("host", request.url.host).split(":")[0]
        return any(matches(p, host, ignore_case=True) for p in patterns)
    if field == "http-request-method":
        return request.method in condition.get("HttpRequestMethodConfig", {}).get("Values", [])
    if field == "query-string":
        pairs = condition.get("QueryStringConfig", {}).get("Values", [])
        query = request.url.params
        return any(
            any(matches(p.get("Value", "*"), v, ignore_case=True)
                for v in query.get_list(p["Key"])) if p.get("Key")
            else any(matches(p.get("Value", "*"), v, ignore_case=True) for v in query.values())
            for p in pairs
        )
    return False  # source-ip and unknown fields: not emulated, so the rule does not match


class AlbTransport(httpx.BaseTransport):
    """An httpx transport that sends requests to the emulated load balancers."""

    def __init__(self, balancers: LoadBalancers) -> None:
        self._balancers = balancers

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._balancers.handle(request)
