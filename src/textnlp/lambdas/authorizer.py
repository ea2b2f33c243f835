"""API Gateway Lambda authorizer: the API's JWT -> an IAM policy.

Accepts the REST ``TOKEN`` authorizer event (``authorizationToken: "Bearer <jwt>"``,
``methodArn``) and the WebSocket ``$connect`` ``REQUEST`` event (the token in
``queryStringParameters.token``, or an ``Authorization`` header). A valid access token gives
``Allow`` on the method ARN with ``principalId`` and ``context.userId``; anything else gives
``Deny`` (never an exception, which API Gateway would turn into a 500).

The key and checks are the API's: ``textnlp.auth.tokens.TokenService`` when its packages are
importable, else the same checks in ``jwt_check``. The secret comes from
``TEXTNLP_AUTH__JWT_SECRET``, or from Secrets Manager at ``TEXTNLP_AUTH__JWT_SECRET_ARN``
(read once per container).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from textnlp.lambdas.jwt_check import AuthConfig, Subject, verify_access_token

log = logging.getLogger(__name__)
Verifier = Callable[[str], Subject]
_verifier: Verifier | None = None


def _secret() -> str:
    value = os.environ.get("TEXTNLP_AUTH__JWT_SECRET", "")
    if value:
        return value
    arn = os.environ.get("TEXTNLP_AUTH__JWT_SECRET_ARN", "")
    if not arn:
        raise RuntimeError("neither TEXTNLP_AUTH__JWT_SECRET nor ..._ARN is set")
    import boto3

    raw = boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    try:
        parsed = json.loads(raw)
    except ValueError:
        return str(raw)
    if isinstance(parsed, dict):
        for key in ("jwt_secret", "jwt-secret", "secret", "value"):
            if key in parsed:
                return str(parsed[key])
    return str(raw)


def build_verifier(environ: Mapping[str, str] | None = None) -> Verifier:
    env = os.environ if environ is None else environ
    config = AuthConfig(
        secret=_secret(),
        algorithm=env.get("TEXTNLP_AUTH__JWT_ALGORITHM", "HS256"),
        issuer=env.get("TEXTNLP_AUTH__ISSUER", "textnlp"),
        audience=env.get("TEXTNLP_AUTH__AUDIENCE", "textnlp-api"),
    )
    try:  # the API's own checks, where its packages are deployed with the function
        from pydantic import SecretStr

        from textnlp.auth.tokens import TokenService
        from textnlp.config import AuthSettings
    except ImportError:
        return lambda token: verify_access_token(token, config)
    service = TokenService(
        AuthSettings(
            jwt_secret=SecretStr(config.secret),
            jwt_algorithm=config.algorithm,
            issuer=config.issuer,
            audience=config.audience,
        )
    )

    def verify(token: str) -> Subject:
        claims = service.verify(token, expected_type="access")
        return Subject(sub=claims.sub, role=claims.role)

    return verify


def reset() -> None:
    """Forget the cached verifier (tests; a rotated secret on the next cold start)."""
    global _verifier
    _verifier = None


def _token(event: Mapping[str, Any]) -> str | None:
    raw = event.get("authorizationToken")
    if raw is None:
        query = event.get("queryStringParameters") or {}
        headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
        raw = query.get("token") or headers.get("authorization")
        if raw and not str(raw).lower().startswith("bearer "):
            return str(raw).strip() or None  # a bare token in the query string
    if not isinstance(raw, str):
        return None
    scheme, _, value = raw.strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def policy(principal: str, effect: str, resource: str, user_id: str | None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
        },
    }
    if user_id is not None:
        answer["context"] = {"userId": user_id}
    return answer


def handler(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    global _verifier
    resource = str(event.get("methodArn") or "*")
    token = _token(event)
    if token is None:
        return policy("anonymous", "Deny", resource, None)
    try:
        if _verifier is None:
            _verifier = build_verifier()
        subject = _verifier(token)
    except Exception as exc:  # every failure is a Deny, never a 500
        log.info("authorizer deny: %s", exc)
        return policy("anonymous", "Deny", resource, None)
    return policy(subject.sub, "Allow", resource, subject.sub)
