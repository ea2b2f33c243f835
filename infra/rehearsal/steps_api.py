"""Journey steps 3-5 and 10: a user is created, logs in, generates and streams text through
API Gateway; and a request that bypasses the gateway meets the load balancer's rules."""

from __future__ import annotations

import base64
import json

from rehearsal.gateway import transfer_mode
from rehearsal.journey import Session, StepFailed, expect
from rehearsal.processes import ContainerError
from rehearsal.websocket import WebSocketRefused

PROMPT = "Write one sentence about the sea."
API = "/api/v1"


def _gateway_components(session: Session) -> str:
    api = session.rehearsed.rest_apis[0] if session.rehearsed.rest_apis else None
    hosts = ", ".join(session.rehearsed.balancers.aliases) or "?"
    name = f"REST API {api.id} stage {api.stage}" if api else "REST API"
    return f"{name} -> Lambda authorizer -> ALB ({hosts}) -> API task"


def create_user(session: Session) -> tuple[str, str]:
    api_service = session.rehearsed.services.behind_load_balancer[0]
    components = (f"CLI in the {api_service.name} image (ecs execute-command), "
                  + _gateway_components(session))
    command = ["textnlp", "users", "create", session.username, "--password-stdin"]
    process = session.rehearsed.launcher.start(
        api_service.spec, label=f"{api_service.name} (users create)", command=command,
        stdin=(session.password + "\n").encode(),
    )
    try:
        code = process.wait(120)
    except ContainerError as exc:
        process.kill()
        raise StepFailed(str(exc), logs=process.log_tail(), components=components) from None
    if code != 0:
        raise StepFailed(f"`{' '.join(command)}` exited with {code}", logs=process.log_tail(),
                         components=components)
    client = session.gateway()
    tokens = expect(client.post(f"{API}/auth/login", json={
        "username": session.username, "password": session.password}), 200, "login")
    session.access_token = tokens["access_token"]
    session.refresh_token = tokens["refresh_token"]
    session.user_id = _subject(session.access_token)
    refreshed = expect(client.post(f"{API}/auth/refresh", json={
        "refresh_token": session.refresh_token}), 200, "refresh")
    session.access_token = refreshed["access_token"]
    session.refresh_token = refreshed["refresh_token"]
    return components, (f"created {session.username} (id {session.user_id}); login and refresh "
                        "through the gateway's public routes: 200, new token pair")


def validate(session: Session) -> tuple[str, str]:
    """The synchronous validation routes, served by the API task itself: its image must hold
    the validation extra (readability, BLEU, the embedder), not only the validation service's."""
    components = _gateway_components(session)
    client = session.gateway()
    texts = ["The sea was calm at dawn.", "Waves broke over the old pier."]
    quality = expect(client.post(f"{API}/validate/quality", headers=session.bearer(), json={
        "texts": texts}), 200, "POST /validate/quality")
    similarity = expect(client.post(f"{API}/validate/similarity", headers=session.bearer(), json={
        "candidates": texts, "references": texts[::-1], "embeddings": True}), 200,
        "POST /validate/similarity (embeddings)")
    summary = ", ".join(sorted(quality.get("summary", {}))) or "none"
    corpus = ", ".join(
        f"{k}={v:.3g}" for k, v in sorted(similarity.get("corpus", {}).items()) if v is not None
    )
    return components, (f"quality of {quality.get('count')} texts (summary: {summary}); "
                        f"similarity of {similarity.get('count')} pairs ({corpus}): 200")


def _subject(token: str) -> str:
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["sub"])


def generate(session: Session) -> tuple[str, str]:
    components = _gateway_components(session)
    client = session.gateway()
    authorizers = session.rehearsed.rest_apis[0].authorizers.values()
    before = sum(a.invocations for a in authorizers)
    completion = expect(client.post(f"{API}/generate/text", headers=session.bearer(), json={
        "prompt": PROMPT, "max_tokens": 8, "seed": 1}), 200, "POST /generate/text")
    text = completion["choices"][0]["text"]
    usage = completion.get("usage", {})
    models = expect(client.get(f"{API}/models/list", headers=session.bearer()), 200,
                    "GET /models/list (same token, another route)")
    expect(client.get(f"{API}/generate/batch", headers=session.bearer()), 200,
           "GET /generate/batch (same token, a third route)")
    calls = sum(a.invocations for a in authorizers) - before
    count = len(models.get("data", models)) if isinstance(models, dict) else len(models)
    return components, (f"completion {text!r} ({usage.get('completion_tokens')} tokens); "
                        f"models/list ({count} models) and generate/batch with the same token: "
                        f"200 ({calls} authorizer call(s) for 3 requests)")


def stream(session: Session) -> tuple[str, str]:
    client = session.gateway()
    response = client.post(f"{API}/generate/text", headers=session.bearer(), json={
        "prompt": PROMPT, "max_tokens": 8, "seed": 1, "stream": True})
    expect(response, 200, "POST /generate/text stream=true")
    events = [line[5:].strip() for line in response.text.splitlines()
              if line.startswith("data:")]
    if not events or events[-1] != "[DONE]":
        raise StepFailed(f"the SSE answer does not end with data: [DONE]: {response.text[-200:]}",
                         components=_gateway_components(session))
    found = session.rehearsed.rest_apis[0].route(f"{API}/generate/text", "POST")
    mode = transfer_mode(found[2].get("Integration", {})).lower() if found else "?"
    sse = f"SSE through the REST gateway ({mode}): {len(events) - 1} events + [DONE]"
    apis = session.rehearsed.websocket_apis
    if not apis:
        raise StepFailed("the templates define no WebSocket API", components=sse)
    api = apis[0]
    components = (f"{_gateway_components(session)}; WebSocket API {api.id} -> authorizer -> "
                  "ALB -> API task -> Management API (moto)")
    try:
        connection = api.connect({"access_token": session.access_token})
    except WebSocketRefused as exc:
        raise StepFailed(f"{sse}; WebSocket connect refused: {exc}", components=components,
                         logs=_api_logs(session)) from None
    try:
        status = connection.send(json.dumps({"prompt": PROMPT, "max_tokens": 8}))
        if not 200 <= status < 300:
            raise StepFailed(f"{sse}; the frame's integration answered {status}",
                             components=components, logs=_api_logs(session))
        messages = connection.wait_for(
            lambda found: any(_kind(m) in ("done", "error") for m in found), timeout_s=60)
    finally:
        connection.close()
    tokens = [m for m in messages if _kind(m) == "token"]
    done = [m for m in messages if _kind(m) == "done"]
    if not tokens or len(done) != 1:
        raise StepFailed(f"{sse}; WebSocket: {len(tokens)} token and {len(done)} done "
                         f"message(s): {messages[-3:]}", components=components,
                         logs=_api_logs(session))
    return components, f"{sse}; WebSocket: {len(tokens)} token frames and one done posted back"


def _kind(message: object) -> str:
    return str(message.get("type")) if isinstance(message, dict) else ""


def _api_logs(session: Session) -> str:
    service = session.rehearsed.services.behind_load_balancer[0]
    return service.task.log_tail() if service.task else ""


def bypass(session: Session) -> tuple[str, str]:
    """A caller who walks around API Gateway to the public ALB: the request reaches the API
    service without the gateway's `X-Origin-Verify`, and the service refuses it (the check is
    the app's, so CodeDeploy's blue/green listener swaps stay untouched); the health probe,
    which the ALB itself sends, stays open."""
    balancers = session.rehearsed.balancers
    host = (list(balancers.aliases) or list(balancers.hosts) or [""])[0]
    if not host:
        raise StepFailed("the templates define no load balancer")
    components = f"ALB ({host}) -> API service origin check, no API Gateway"
    client = session.load_balancer(host)
    refused = client.get(f"{API}/models/list", headers=session.bearer())
    body = refused.json() if refused.headers.get("content-type", "").startswith(
        "application/json") else {}
    kind = body.get("error", {}).get("type") if isinstance(body, dict) else None
    if refused.status_code != 403 or kind != "permission_denied":
        raise StepFailed(f"straight to the ALB with a valid token, models/list answered "
                         f"{refused.status_code} {refused.text[:80]!r}: the gateway can be "
                         "walked around", components=components, logs=_api_logs(session))
    probe = client.get(f"{API}/admin/health")
    if probe.status_code != 200:
        raise StepFailed(f"the ALB's health probe answered {probe.status_code}",
                         components=components, logs=_api_logs(session))
    return components, ("a valid token without the gateway's header: 403 permission_denied; "
                        "the health probe: 200")


def logout(session: Session) -> tuple[str, str]:
    """Another login of the user, logged out through the gateway: the API refuses its access
    token at once; the authorizer, reading the DynamoDB session store, denies it too (as API
    Gateway calls it once its cached verdict for the token has expired); its refresh token is
    dead."""
    client = session.gateway()
    api = session.rehearsed.rest_apis[0]
    components = f"{_gateway_components(session)}; the authorizer -> DynamoDB session store (moto)"
    tokens = expect(client.post(f"{API}/auth/login", json={
        "username": session.username, "password": session.password}), 200, "second login")
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    # A route the stage cache never answers (models/list is cached per path, for everyone).
    route = f"{API}/auth/api-keys"
    expect(client.get(route, headers=bearer), 200, f"GET {route} before logout")
    (authorizer,) = {a.function for a in api.authorizers.values()}
    event = {"type": "TOKEN", "authorizationToken": bearer["Authorization"],
             "methodArn": api.method_arn("GET", route)}
    # Straight to the function: API Gateway's cached verdict for the token would hide it.
    before = _authorizer_effect(session, authorizer, event, components)
    expect(client.post(f"{API}/auth/logout", headers=bearer), 200, "POST /auth/logout")
    after = client.get(route, headers=bearer)
    if after.status_code != 401:
        raise StepFailed(f"the logged-out token: GET {route} answered {after.status_code}",
                         components=components, logs=_api_logs(session))
    denied = _authorizer_effect(session, authorizer, event, components)
    if (before, denied) != ("Allow", "Deny"):
        raise StepFailed(f"the authorizer on the token: {before} before logout, {denied} after",
                         components=components,
                         logs=session.rehearsed.lambdas.function(authorizer).log_tail())
    reused = client.post(f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    if reused.status_code != 401:
        raise StepFailed(f"the logged-out refresh token: {reused.status_code}",
                         components=components, logs=_api_logs(session))
    return components, ("the authorizer: Allow, then after logout (200) Deny from the session "
                        "table; the access token: API 401; the refresh token: 401")


def _authorizer_effect(session: Session, function: str, event: dict[str, str],
                       components: str) -> str:
    invocation = session.rehearsed.lambdas.invoke(function, event)
    statements = (invocation.result or {}).get("policyDocument", {}).get("Statement", [])
    if not invocation.ok or len(statements) != 1:
        seen = statements if invocation.ok else invocation.error
        raise StepFailed(f"the authorizer answered {seen}", components=components,
                         logs=session.rehearsed.lambdas.function(function).log_tail())
    return str(statements[0].get("Effect"))
