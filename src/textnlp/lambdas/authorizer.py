"""API Gateway Lambda authorizer: the API's credentials -> an IAM policy.

Events: the REST ``TOKEN`` authorizer event (``authorizationToken: "Bearer <credential>"``,
``methodArn``) and the WebSocket ``$connect`` ``REQUEST`` event. This function reads a
``REQUEST`` event's credential as the app's own socket does (an ``Authorization: Bearer``
header, the ``access_token`` query parameter, ``token`` for old clients, an ``X-API-Key``
header), but the deployment's WebSocket authorizer names ``access_token`` as its identity
source, so API Gateway refuses a connection without it before this function runs.

Verdicts:

- a valid access token (``textnlp.auth.jwt_rules``, the API's own check and key): ``Allow``,
  ``principalId`` = ``context.userId`` = the user id, ``context.role``;
- an API key (``tnlp_<id>_<secret>``): ``Allow`` with ``principalId`` ``api-key`` and
  ``context.credential`` ``api_key``. Keys live in the database, which this function cannot
  reach, so it only lets them through to the app;
- an access token whose session is logged out or revoked, when the session store is the
  DynamoDB table (``AuthorizerSettings.session_table``): ``Deny``. The family's and the token's
  items are read in one strongly consistent BatchGetItem (``textnlp.auth.session_items``, the
  app's own rule), traced as an X-Ray subsegment (``textnlp.lambdas.xray``);
- anything else (no credential, expired, forged, a refresh token, a broken configuration, an
  unreadable session table): ``Deny``. Never an exception, which API Gateway would answer with
  a 500.

The app authenticates every request itself whatever this function says (revocation, API keys,
roles), so this is a first filter, not the only check. API Gateway caches a verdict for the
same credential for 5 minutes across all routes, so the policy covers the whole stage
(``arn:aws:execute-api:<region>:<account>:<api id>/<stage>/*``), not only the method called;
a token logged out within those minutes still passes the gateway and is refused by the app.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from textnlp.auth.api_keys import is_api_key, parse_api_key
from textnlp.auth.jwt_rules import TokenRejected, decode_token
from textnlp.auth.session_items import access_is_live, fetch_session
from textnlp.lambdas.authorizer_settings import AuthorizerConfigError, AuthorizerSettings
from textnlp.lambdas.xray import aws_subsegment

log = logging.getLogger(__name__)
log.setLevel(logging.INFO)

API_KEY_PRINCIPAL = "api-key"
ANONYMOUS = "anonymous"
#: ``arn:<partition>:execute-api:<region>:<account>:<api id>/<stage>/<method>/<path>`` (REST)
#: or ``.../<stage>/$connect`` (WebSocket).
_METHOD_ARN = re.compile(
    r"^(?P<prefix>arn:[a-z-]+:execute-api:[a-z0-9-]+:\d{12}:[A-Za-z0-9]+)/(?P<stage>[^/]+)/.+$"
)
_settings: AuthorizerSettings | None = None
_dynamodb: Any = None


def reset() -> None:
    """Forget the settings read from the environment and the DynamoDB client (tests)."""
    global _settings, _dynamodb
    _settings = None
    _dynamodb = None


def _current_settings() -> AuthorizerSettings:
    global _settings
    if _settings is None:
        _settings = AuthorizerSettings.from_environ(os.environ)
    return _settings


def stage_resource(method_arn: object) -> str | None:
    """Every route of the stage ``method_arn`` belongs to; None when it is not such an ARN."""
    match = _METHOD_ARN.match(method_arn) if isinstance(method_arn, str) else None
    return f"{match['prefix']}/{match['stage']}/*" if match else None


def _bearer(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    scheme, _, credential = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credential.strip() or None


def credential_of(event: Mapping[str, Any]) -> str | None:
    """The credential the client sent, from either event type; None when there is none."""
    if "authorizationToken" in event:
        return _bearer(event["authorizationToken"])
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    query = event.get("queryStringParameters") or {}
    found = _bearer(headers.get("authorization"))
    for candidate in (query.get("access_token"), query.get("token"), headers.get("x-api-key")):
        if found is None and isinstance(candidate, str) and candidate.strip():
            found = candidate.strip()
    return found


def policy(
    principal_id: str, effect: str, resource: str, context: dict[str, str] | None = None
) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "principalId": principal_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
        },
    }
    if context is not None:
        answer["context"] = context
    return answer


def _verdict(credential: str, resource: str) -> dict[str, Any]:
    if is_api_key(credential):
        if parse_api_key(credential) is None:
            log.info("deny: a malformed API key")
            return policy(ANONYMOUS, "Deny", resource)
        return policy(API_KEY_PRINCIPAL, "Allow", resource, {"credential": "api_key"})
    settings = _current_settings()
    claims = decode_token(
        credential,
        key=settings.key,
        algorithm=settings.algorithm,
        issuer=settings.issuer,
        audience=settings.audience,
        expected_type="access",
    )
    user_id = str(claims["sub"])
    if settings.session_table and not _session_is_live(settings.session_table, claims):
        return policy(ANONYMOUS, "Deny", resource)
    context = {"userId": user_id, "role": str(claims.get("role", "user")), "credential": "jwt"}
    return policy(user_id, "Allow", resource, context)


def _session_is_live(table: str, claims: Mapping[str, Any]) -> bool:
    family, jti = claims.get("family"), claims.get("jti")
    if not isinstance(family, str) or not family or not isinstance(jti, str):
        log.info("deny: the token names no session to check")
        return False
    try:
        with aws_subsegment(
            "DynamoDB",
            operation="BatchGetItem",
            region=os.environ.get("AWS_REGION", ""),
            table_names=[table],
        ):
            family_item, jti_item = fetch_session(_session_client(), table, family, jti)
    except Exception as exc:
        # Fail closed. Allowing on an error would let logged-out and stolen-then-revoked tokens
        # through whenever the table is throttled, unreachable or denied to this role, silently.
        # It costs no availability: the API reads the same table on every request and answers
        # 503 while it cannot. A client whose token was denied (API Gateway caches the verdict)
        # recovers through the public refresh route, which issues a new token.
        log.error("deny: cannot read the session table %s: %s", table, type(exc).__name__)
        return False
    if not access_is_live(family_item, jti_item, str(claims["sub"])):
        log.info("deny: the session is logged out or revoked")
        return False
    return True


def _session_client() -> Any:
    """One DynamoDB client per container, with timeouts well inside API Gateway's 10 s."""
    global _dynamodb
    if _dynamodb is None:
        import boto3
        from botocore.config import Config

        _dynamodb = boto3.client(
            "dynamodb",
            config=Config(
                connect_timeout=1, read_timeout=2, retries={"mode": "standard", "max_attempts": 2}
            ),
        )
    return _dynamodb


def handler(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    resource = stage_resource(event.get("methodArn"))
    credential = credential_of(event)
    if resource is None or credential is None:
        log.info("deny: %s", "no credential" if resource else "not an execute-api methodArn")
        return policy(ANONYMOUS, "Deny", resource or "*")
    try:
        return _verdict(credential, resource)
    except TokenRejected as exc:
        log.info("deny: %s", exc)
    except AuthorizerConfigError as exc:
        log.error("deny, the authorizer is misconfigured: %s", exc)
    except Exception:  # every failure is a Deny, never a 500
        log.exception("deny after an unexpected error")
    return policy(ANONYMOUS, "Deny", resource)
