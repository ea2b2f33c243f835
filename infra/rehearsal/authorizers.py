"""Lambda authorizers as API Gateway calls them, with the result cache of TOKEN authorizers.

API Gateway caches the returned policy per identity-source value for
`AuthorizerResultTtlInSeconds`, and evaluates the cached policy against every later request's
method ARN: a policy that names only the first method denies the next route for the same token.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from rehearsal.iam_policy import allows
from rehearsal.lambdas import LambdaService

FORBIDDEN = "User is not authorized to access this resource with an explicit deny"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    status: int = 200
    message: str | None = None
    principal: str = ""
    context: dict[str, Any] = field(default_factory=dict)
    error_type: str = ""


@dataclass
class _Cached:
    policy: dict[str, Any]
    principal: str
    context: dict[str, Any]
    expires: float


def function_arn(authorizer_uri: str) -> str:
    """`arn:aws:apigateway:<region>:lambda:path/2015-03-31/functions/<arn>/invocations`."""
    return authorizer_uri.split("/functions/", 1)[-1].removesuffix("/invocations")


class LambdaAuthorizer:
    def __init__(self, lambdas: LambdaService, uri: str, ttl_s: int) -> None:
        self._lambdas = lambdas
        self.function = function_arn(uri)
        self.ttl_s = ttl_s
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()
        self.invocations = 0

    def authorize(self, event: dict[str, Any], cache_key: str | None) -> Decision:
        method_arn = str(event["methodArn"])
        cached = self._cached(cache_key)
        if cached is None:
            self.invocations += 1
            invocation = self._lambdas.invoke(self.function, event)
            if not invocation.ok:
                if invocation.error_message == "Unauthorized":
                    return Decision(False, 401, "Unauthorized")
                return Decision(False, 500, None, error_type="AuthorizerConfigurationException")
            answer = invocation.result
            if not isinstance(answer, dict) or "policyDocument" not in answer:
                return Decision(False, 500, None, error_type="AuthorizerConfigurationException")
            cached = _Cached(answer["policyDocument"], str(answer.get("principalId", "")),
                             dict(answer.get("context") or {}), time.monotonic() + self.ttl_s)
            if cache_key is not None and self.ttl_s > 0:
                with self._lock:
                    self._cache[cache_key] = cached
        if not allows(cached.policy, method_arn):
            return Decision(False, 403, FORBIDDEN, cached.principal, cached.context,
                            "AccessDeniedException")
        return Decision(True, 200, None, cached.principal, cached.context)

    def _cached(self, key: str | None) -> _Cached | None:
        if key is None:
            return None
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached.expires < time.monotonic():
                del self._cache[key]
                cached = None
        return cached
