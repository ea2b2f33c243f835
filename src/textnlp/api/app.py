"""``create_app(settings)``: the FastAPI application and its lifecycle.

Nothing is built at import time. ``lifespan`` opens, in order: the JWT secret (Secrets Manager
in ``aws``), the database (migrated with Alembic unless ``api.migrate_on_start`` is off), the
cache, the rate limiter, the generation service, and closes them in reverse. Shared objects
are on ``app.state``: ``settings``, ``engine``, ``db`` (a sessionmaker), ``generation``,
``cache``, ``metrics``, ``auth``, ``limiter``, ``spending``, ``serving``, ``health``.

Batch-job routes come from ``textnlp.api.routers.jobs``, with a ``lifespan(app)`` of their own
(queue, storage and job store).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from textnlp.adapters.cache.completions import CompletionCache
from textnlp.adapters.cache.factory import make_cache
from textnlp.adapters.db.base import make_engine, make_sessionmaker, upgrade_database
from textnlp.adapters.db.spending import SpendingStore
from textnlp.api.errors import install_error_handlers
from textnlp.api.health import HealthChecker
from textnlp.api.middleware import RequestContextMiddleware
from textnlp.api.routers import admin, auth, generate, jobs, models, stream, validate
from textnlp.api.schemas import ERROR_RESPONSES
from textnlp.api.serving import CompletionsServing
from textnlp.auth.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from textnlp.auth.service import AuthService
from textnlp.auth.tokens import TokenService
from textnlp.backends.registry import ModelCatalogue
from textnlp.config import LOCAL_JWT_SECRET, Settings
from textnlp.errors import ConfigError
from textnlp.generation.templates import TemplateLibrary
from textnlp.observability.emf import EmfEmitter
from textnlp.observability.logging import configure_logging
from textnlp.observability.metrics import Metrics
from textnlp.observability.tracing import make_tracer
from textnlp.services.generation import GenerationService
from textnlp.services.models import ModelPool
from textnlp.services.spending import SpendingService

API_PREFIX = "/api/v1"
#: The order of the sections in /docs (routers are included in matching order, below).
_TAG_ORDER = ("auth", "generate", "validate", "models", "admin", "jobs")
log = logging.getLogger("textnlp.api")


def create_app(settings: Settings, *, configure_logs: bool = False) -> FastAPI:
    """The API for ``settings``; ``configure_logs`` installs JSON logging (``textnlp serve``)."""
    if configure_logs:
        configure_logging(settings.log_level, json_lines=settings.observability.json_logs)
    metrics = Metrics(
        EmfEmitter(settings.observability.emf_namespace) if settings.observability.emf else None
    )
    tracer, provider = make_tracer(settings.observability)
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
    app.state.metrics = metrics
    app.state.tracer_provider = provider
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
    ):
        app.include_router(router, prefix=API_PREFIX, responses=ERROR_RESPONSES)
    app.add_middleware(
        RequestContextMiddleware,
        metrics=metrics,
        max_body_bytes=settings.api.max_body_bytes,
        tracer=None if provider is None else tracer,
        quiet_routes=frozenset({f"{API_PREFIX}/admin/health"}),
    )
    return app


def resolve_jwt_secret(settings: Settings) -> Settings:
    """The signing key from Secrets Manager (``aws``); refuse the default outside ``local``."""
    if settings.secrets.backend == "aws":
        from textnlp.adapters.secrets.base import JWT_SECRET
        from textnlp.adapters.secrets.factory import secrets_provider

        secret = secrets_provider(settings).get(JWT_SECRET)
        settings = settings.model_copy(
            update={"auth": settings.auth.model_copy(update={"jwt_secret": secret})}
        )
    if settings.profile != "local" and (
        settings.auth.jwt_secret.get_secret_value() == LOCAL_JWT_SECRET
    ):
        raise ConfigError("refusing to start outside the local profile with the default JWT secret")
    return settings


def _limiter(settings: Settings) -> RateLimiter:
    if settings.cache.url.startswith(("redis://", "rediss://", "unix://")):
        return RedisRateLimiter.from_url(settings.cache.url)
    return MemoryRateLimiter()


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = await asyncio.to_thread(resolve_jwt_secret, app.state.settings)
    app.state.settings = settings
    async with AsyncExitStack() as stack:
        if settings.api.migrate_on_start:
            await asyncio.to_thread(upgrade_database, settings.database_url)
        engine = make_engine(settings.database_url)
        stack.callback(engine.dispose)
        sessions = make_sessionmaker(engine)
        cache = make_cache(settings.cache.url)
        stack.callback(cache.close)
        limiter = _limiter(settings)
        stack.callback(limiter.close)
        catalogue = ModelCatalogue.load(settings.user_models_file)
        response_cache = (
            CompletionCache(cache, settings.cache.ttl_s, app.state.metrics.observe_cache)
            if settings.generation.response_cache
            else None
        )
        generation = GenerationService(
            settings,
            catalogue,
            TemplateLibrary.load(settings.user_templates_dir),
            ModelPool(catalogue, settings),
            response_cache,
        )
        stack.push_async_callback(generation.pool.aclose)
        app.state.engine = engine
        app.state.db = sessions
        app.state.cache = cache
        app.state.limiter = limiter
        app.state.generation = generation
        app.state.auth = AuthService(sessions, TokenService(settings.auth))
        # Authentication runs on the event loop only when nothing it touches waits on a network
        # (SQLite file, in-memory rate limiter); otherwise in the thread pool.
        app.state.inline_auth = engine.dialect.name == "sqlite" and isinstance(
            limiter, MemoryRateLimiter
        )
        app.state.spending = SpendingService(settings, SpendingStore(engine))
        app.state.serving = CompletionsServing(
            generation, settings.api, app.state.metrics, app.state.spending
        )
        app.state.health = HealthChecker(settings, sessions, cache, generation)
        await stack.enter_async_context(jobs.lifespan(app))
        if app.state.tracer_provider is not None:
            stack.callback(app.state.tracer_provider.shutdown)
        log.info("API ready", extra={"profile": settings.profile, "database": engine.dialect.name})
        yield
