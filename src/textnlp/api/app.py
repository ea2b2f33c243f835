"""``create_app(settings)``: the FastAPI application and its lifecycle.

Nothing is built at import time. ``lifespan`` builds the process's ``Platform`` (the
composition root, ``textnlp.bootstrap``) and closes it at shutdown; the routers read what they
need from ``app.state``: ``settings``, ``platform``, ``db`` (a sessionmaker), ``generation``,
``metrics``, ``auth``, ``limiter``, ``spending``, ``serving``, ``jobs``, ``health``,
``gateway_streams``. The database must be at this release's schema (``textnlp db upgrade``; the
local SQLite file is upgraded on first use): the app refuses to start otherwise.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from textnlp.adapters.buckets import MemoryBuckets
from textnlp.api.console import install_console
from textnlp.api.errors import install_error_handlers
from textnlp.api.health import HealthChecker
from textnlp.api.middleware import OriginCheckMiddleware, RequestContextMiddleware
from textnlp.api.open_sockets import OpenSockets
from textnlp.api.openai import batches as openai_batches
from textnlp.api.openai import files as openai_files
from textnlp.api.openai.routes import install_openai
from textnlp.api.openai.schemas import OPENAI_ERROR_RESPONSES
from textnlp.api.routers import admin, auth, gateway, generate, jobs, models, stream, validate
from textnlp.api.schemas import ERROR_RESPONSES
from textnlp.api.serving import CompletionsServing
from textnlp.bootstrap import Platform
from textnlp.config import Settings
from textnlp.deployment import PROBE_PATHS
from textnlp.observability.logging import configure_logging
from textnlp.services.openai_batches import OpenAIBatchService

API_PREFIX = "/api/v1"
#: The order of the sections in /docs (routers are included in matching order, below).
_TAG_ORDER = ("auth", "generate", "validate", "models", "admin", "jobs")
log = logging.getLogger("textnlp.api")


def create_app(settings: Settings, *, configure_logs: bool = False) -> FastAPI:
    """The API for ``settings``; ``configure_logs`` installs JSON logging (``textnlp serve``)."""
    if configure_logs:
        configure_logging(settings.log_level, json_lines=settings.observability.json_logs)
    platform = Platform(settings)
    app = FastAPI(
        title="TextNLP API",
        version="1",
        summary="Synthetic text generation, validation and model access.",
        lifespan=_lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
        openapi_tags=[{"name": tag} for tag in _TAG_ORDER],
        # Our middleware owns tracing, metrics and access logs (X-Ray ids, route templates).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.platform = platform
    app.state.metrics = platform.metrics
    app.state.open_sockets = OpenSockets(settings.api.max_websockets_per_user)
    app.state.open_requests = OpenSockets(
        settings.api.max_requests_per_user,
        what="requests",
        advice="wait for one to end",
        state="in progress",
    )
    app.state.open_event_streams = OpenSockets(
        settings.api.max_event_streams_per_user,
        what="job event streams",
        advice="close a console page of jobs",
    )
    install_error_handlers(app)
    # Routes are matched in this order: the load balancer's health checks and completions,
    # the most frequent requests, come first.
    for router in (
        admin.router,
        generate.router,
        auth.router,
        stream.router,
        validate.router,
        models.router,
        jobs.router,
        gateway.router,
    ):
        app.include_router(router, prefix=API_PREFIX, responses=ERROR_RESPONSES)
    install_openai(app)  # the OpenAI-compatible /v1 surface
    install_console(app)  # the web console under /console
    for router in (openai_files.router, openai_batches.router):  # its files and batches
        app.include_router(router, responses=OPENAI_ERROR_RESPONSES)
    origin_verify = settings.api.origin_verify.get_secret_value()
    if origin_verify:  # behind API Gateway (aws): answer nothing that walked around it
        app.add_middleware(OriginCheckMiddleware, secret=origin_verify, open_paths=PROBE_PATHS)
    app.add_middleware(
        RequestContextMiddleware,
        metrics=platform.metrics,
        max_body_bytes=settings.api.max_body_bytes,
        body_limits={"/v1/files": settings.api.max_file_bytes},  # OpenAI's batch files
        tracer=platform.tracer,
        quiet_routes=PROBE_PATHS,
    )
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    platform: Platform = app.state.platform
    try:
        # The parts that touch the network are built off the event loop, before serving
        # (``textnlp serve`` has built them already, to refuse bad settings in one line).
        await asyncio.to_thread(prepare, app)
        log.info(
            "API ready",
            extra={"profile": platform.settings.profile, "database": platform.engine.dialect.name},
        )
        yield
    finally:
        streams: gateway.GatewayStreams | None = getattr(app.state, "gateway_streams", None)
        if streams is not None:
            await streams.aclose()
        await platform.aclose()


def prepare(app: FastAPI) -> None:
    """Build what the app serves with (database, Redis, secrets, services); idempotent.

    Raises ``TextNLPError`` (a weak JWT secret, an unreachable database, an old schema...):
    callers outside the lifespan get it as one line instead of a server's startup traceback.
    """
    state = app.state
    if getattr(state, "prepared", False):
        return
    platform: Platform = state.platform
    state.auth = platform.auth
    state.limiter = platform.buckets
    state.generation = platform.generation
    state.spending = platform.spending
    state.validation = platform.validation
    state.jobs = platform.jobs
    state.openai_batches = OpenAIBatchService(platform.jobs)
    # Authentication runs on the event loop only when nothing it touches waits on a network
    # (SQLite file, in-memory rate limiter); otherwise in the thread pool.
    state.inline_auth = platform.engine.dialect.name == "sqlite" and isinstance(
        platform.buckets, MemoryBuckets
    )
    state.serving = CompletionsServing(
        platform.generation, platform.settings.api, platform.metrics, platform.spending
    )
    state.health = HealthChecker(platform)
    state.gateway_streams = gateway.GatewayStreams(platform, state.serving)
    state.prepared = True
