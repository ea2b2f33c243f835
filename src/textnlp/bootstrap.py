"""The composition root: every adapter, cache, queue, store and service of a TextNLP process,
built from ``Settings`` on first use and closed in reverse order.

The API (``create_app``), the worker, the CLI and the library all start here, so they share one
way of building things: the same response cache per profile (a file under ``TEXTNLP_HOME``
locally, Redis in ``aws``), the same database checks, one Redis client for the cache and both
rate limiters, one price table. A part is built the first time it is asked for, so a command
that only generates never opens the database or the queues. Nothing below reads the
environment: settings come in, adapters go out. (The Lambda handlers are the exception by
design: their assets hold the standard library and PyJWT only, not these dependencies.)

    async with Platform(load_settings()) as platform:
        await platform.generation.generate_dataset(job)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Any

from textnlp.config import Settings, jwt_secret_problem
from textnlp.errors import ConfigError, ServiceUnavailable

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer
    from sqlalchemy import Engine
    from sqlalchemy.orm import sessionmaker

    from textnlp.adapters.buckets import TokenBuckets
    from textnlp.adapters.cache.base import KeyValueCache
    from textnlp.adapters.db.job_store import JobStore
    from textnlp.adapters.db.spending import SpendingStore
    from textnlp.adapters.queue import QueuePair
    from textnlp.adapters.secrets import SecretsProvider
    from textnlp.adapters.sessions import SessionStore
    from textnlp.adapters.storage import BlobStorage
    from textnlp.auth.service import AuthService
    from textnlp.backends.cloud import CloudContext
    from textnlp.backends.kv_store import PrefixStoreConfig
    from textnlp.backends.pricing import PriceTable
    from textnlp.backends.registry import ModelCatalogue
    from textnlp.generation.cache import ResponseCache
    from textnlp.generation.templates import TemplateLibrary
    from textnlp.observability.metrics import Metrics
    from textnlp.services.generation import GenerationService
    from textnlp.services.job_runs import JobRuns
    from textnlp.services.jobs import JobService
    from textnlp.services.kept_models import KeptModels
    from textnlp.services.models import ModelPool
    from textnlp.services.spending import SpendingService
    from textnlp.services.validation import ValidationService
    from textnlp.worker.notify import Notifier

#: Seconds the response cache is skipped without asking Redis after a failure: a blackholed
#: host would cost a connect timeout on every seeded request's lookup and store.
RESPONSE_CACHE_PAUSE_S = 5.0


class Platform:
    """The parts of one process. Use as a context manager (sync or async) or call ``aclose``."""

    def __init__(self, settings: Settings, *, kept_models: KeptModels | None = None) -> None:
        """``kept_models``: where the library keeps loaded engines between its calls (its
        platforms are one a call; the others own their engines)."""
        self.settings = settings
        self.kept_models = kept_models
        self._closers: list[Callable[[], Any]] = []

    def _owns(self, closer: Callable[[], Any]) -> None:
        self._closers.append(closer)

    # -- data layer ----------------------------------------------------------------------------
    @cached_property
    def engine(self) -> Engine:
        """The database, at this release's schema revision (see ``adapters.db.schema``)."""
        from textnlp.adapters.db.base import make_engine
        from textnlp.adapters.db.schema import prepare_schema

        engine = make_engine(self.settings.database_url, self.settings.database)
        self._owns(engine.dispose)
        if self.tracer_provider is not None:
            from textnlp.observability.tracing import instrument_engine

            instrument_engine(engine, self.tracer_provider)
        prepare_schema(engine)
        return engine

    @cached_property
    def database_probe(self) -> Engine:
        """The database for health checks, reached without the serving pool
        (``adapters.db.base.make_probe_engine``)."""
        from textnlp.adapters.db.base import make_probe_engine

        engine = make_probe_engine(self.settings.database_url, self.settings.database)
        self._owns(engine.dispose)
        return engine

    @cached_property
    def sessions(self) -> sessionmaker[Any]:
        from textnlp.adapters.db.base import make_sessionmaker

        return make_sessionmaker(self.engine)

    @cached_property
    def redis(self) -> Any | None:
        """The one Redis client (cluster-aware where the deployment says so), or None."""
        from textnlp.adapters.redis_client import redis_client

        try:
            client = redis_client(self.settings)
        except ConfigError:
            raise
        except Exception as exc:  # a cluster client connects at once: unreachable, TLS, token
            raise ServiceUnavailable(
                f"cannot reach Redis at {self.settings.cache.host or 'the cache URL'}: "
                f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}",
                dependency="cache",
            ) from None
        if client is not None:
            self._owns(client.close)
        return client

    @cached_property
    def kv_cache(self) -> KeyValueCache:
        """Small shared state that may be lost (e.g. whose gateway connection is whose)."""
        if self.redis is not None:
            from textnlp.adapters.cache.redis import RedisCache

            return RedisCache(self.redis, prefix="textnlp:kv:")
        from textnlp.adapters.cache.memory import MemoryCache

        return MemoryCache()

    @cached_property
    def response_cache(self) -> ResponseCache | None:
        """Completions of deterministic requests: shared by the API, the workers and the CLI."""
        generation = self.settings.generation
        if not generation.response_cache:
            return None
        cache: ResponseCache
        if self.redis is not None:
            from textnlp.adapters.cache.completions import CompletionCache
            from textnlp.adapters.cache.redis import RedisCache

            # Skipped by its callers when Redis fails, so not asked again for a while.
            store = RedisCache(self.redis, pause_s=RESPONSE_CACHE_PAUSE_S)
            cache = CompletionCache(store, self.settings.cache.ttl_s, self._observe_cache)
        else:
            from textnlp.generation.cache import SqliteResponseCache

            cache = SqliteResponseCache(
                self.settings.response_cache_path,
                max_entries=generation.response_cache_max_entries,
                on_lookup=self._observe_cache,
            )
            self._owns(cache.close)
        return cache

    def _observe_cache(self, hit: bool) -> None:
        # Counted where the process has metrics (the API); a CLI run never builds them (nor
        # needs prometheus-client, which is not a core dependency).
        metrics: Metrics | None = self.__dict__.get("metrics")
        if metrics is not None:
            metrics.observe_cache(hit)

    @cached_property
    def storage(self) -> BlobStorage:
        from textnlp.adapters.storage import open_storage

        storage = open_storage(self.settings)
        self._owns(storage.close)
        return storage

    @cached_property
    def queues(self) -> QueuePair:
        from textnlp.adapters.queue import open_queues

        queues = open_queues(self.settings, self.engine)
        self._owns(queues.close)
        return queues

    # -- models and generation ----------------------------------------------------------------
    @cached_property
    def catalogue(self) -> ModelCatalogue:
        from textnlp.backends.registry import ModelCatalogue

        return ModelCatalogue.load(self.settings.user_models_file)

    @cached_property
    def templates(self) -> TemplateLibrary:
        from textnlp.generation.templates import TemplateLibrary

        return TemplateLibrary.load(self.settings.user_templates_dir)

    @cached_property
    def prices(self) -> PriceTable:
        from textnlp.backends.pricing import PriceTable

        return PriceTable.from_settings(self.settings)

    def cloud_context(self) -> CloudContext:
        """What every remote backend shares (secrets, circuits, limits); built per pool."""
        from textnlp.backends.cloud import CloudContext

        return CloudContext.from_settings(
            self.settings, prices=self.prices, buckets=self.buckets, secrets=self.secrets
        )

    @cached_property
    def secrets(self) -> SecretsProvider:
        """Where secrets are looked up (environment, or Secrets Manager in ``aws``)."""
        from textnlp.adapters.secrets.factory import secrets_provider

        return secrets_provider(self.settings)

    @property
    def prefix_store(self) -> PrefixStoreConfig | None:
        """Where local engines keep prompts' KV on disk: a cache, so on with the response
        cache (``generation.prefix_store_mb`` of disk)."""
        from textnlp.backends.kv_store import PrefixStoreConfig

        generation = self.settings.generation
        if not (generation.response_cache and generation.prefix_store_mb):
            return None
        return PrefixStoreConfig(self.settings.prefix_store_dir, generation.prefix_store_mb << 20)

    @cached_property
    def pool(self) -> ModelPool:
        from textnlp.services.models import ModelPool

        self.redis  # noqa: B018 - built first, so it is closed after the pool's backends
        pool = ModelPool(
            self.catalogue,
            self.cloud_context,
            self.prefix_store,
            secrets=lambda: self.secrets,
            prices=self.prices,
            engine=self.settings.engine,
            kept=self.kept_models,
        )
        self._owns(pool.aclose)
        return pool

    @cached_property
    def generation(self) -> GenerationService:
        from textnlp.services.generation import GenerationService

        return GenerationService(
            self.settings,
            self.catalogue,
            self.templates,
            self.pool,
            self.response_cache,
            self.spending,
        )

    # -- accounts, spending and jobs ------------------------------------------------------------
    @cached_property
    def spending(self) -> SpendingService:
        from textnlp.services.spending import SpendingService

        def store() -> SpendingStore:  # on first use: a CLI run (no database) never needs it
            from textnlp.adapters.db.spending import SpendingStore

            return SpendingStore(self.engine)

        return SpendingService(self.settings, self.prices, store)

    @cached_property
    def validation(self) -> ValidationService:
        from textnlp.services.validation import ValidationService

        return ValidationService(self.sessions)

    @cached_property
    def job_store(self) -> JobStore:
        from textnlp.adapters.db.job_store import JobStore

        return JobStore(self.engine)

    @cached_property
    def job_runs(self) -> JobRuns:
        """The workers' side of jobs (attempts, checkpoints, outcomes)."""
        from textnlp.services.job_runs import JobRuns

        return JobRuns(self.jobs, self.job_store, self.storage, self.metrics)

    @cached_property
    def jobs(self) -> JobService:
        from textnlp.services.jobs import JobService

        return JobService(
            self.settings,
            self.job_store,
            self.queues,
            self.storage,
            self.catalogue,
            self.templates,
            self.spending,
            self.pool,
        )

    @cached_property
    def auth(self) -> AuthService:
        from textnlp.auth.service import AuthService
        from textnlp.auth.tokens import TokenService

        return AuthService(
            self.sessions, TokenService(self.auth_settings().auth), self.session_store
        )

    @cached_property
    def session_store(self) -> SessionStore:
        """Refresh-token families and revocations: the database's tables, or DynamoDB (which
        the gateway's authorizer reads too)."""
        from textnlp.adapters.sessions import open_session_store

        return open_session_store(self.settings, self.sessions)

    def auth_settings(self) -> Settings:
        """The settings with the JWT key resolved (Secrets Manager in ``aws``)."""
        settings = self.settings
        if settings.secrets.backend == "aws":
            from textnlp.adapters.secrets.base import JWT_SECRET

            secret = self.secrets.get(JWT_SECRET)
            settings = settings.model_copy(
                update={"auth": settings.auth.model_copy(update={"jwt_secret": secret})}
            )
        if settings.profile != "local":
            weakness = jwt_secret_problem(settings.auth.jwt_secret.get_secret_value())
            if weakness is not None:
                raise ConfigError(
                    f"refusing to start outside the local profile: the JWT secret {weakness}"
                )
        return settings

    @cached_property
    def buckets(self) -> TokenBuckets:
        """The token buckets of every rate limit (users, API keys, logins, models): in Redis
        when there is one, else in process."""
        from textnlp.adapters.buckets import MemoryBuckets, RedisBuckets

        if self.redis is not None:
            return RedisBuckets(self.redis)
        return MemoryBuckets()

    # -- observability ----------------------------------------------------------------------------
    @cached_property
    def metrics(self) -> Metrics:
        from textnlp.observability.emf import EmfEmitter
        from textnlp.observability.metrics import Metrics

        observability = self.settings.observability
        emf = (
            EmfEmitter(observability.emf_namespace, observability.service_name)
            if observability.emf
            else None
        )
        return Metrics(emf)

    @cached_property
    def _tracing(self) -> tuple[Tracer | None, Any]:
        if self.settings.observability.trace_exporter == "none":
            return None, None  # nothing imported, nothing patched
        from textnlp.observability.tracing import make_tracer

        tracer, provider = make_tracer(self.settings.observability)
        self._owns(provider.shutdown)  # flushes the last spans
        return tracer, provider

    @property
    def tracer(self) -> Tracer | None:
        """The tracer of the API's request spans, or None when tracing is off."""
        return self._tracing[0]

    @property
    def tracer_provider(self) -> Any:
        return self._tracing[1]

    @cached_property
    def notifier(self) -> Notifier:
        from textnlp.worker.notify import Notifier

        return Notifier(self.settings)

    # -- lifecycle --------------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Close every part built, last built first; a failing close does not stop the others."""
        closers, self._closers = self._closers, []
        errors: list[BaseException] = []
        for closer in reversed(closers):
            try:
                result = closer()
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:  # keep closing the rest
                errors.append(exc)
        if errors:
            raise errors[0]

    def close(self) -> None:
        """``aclose`` for sync callers (the CLI); not from inside a running event loop."""
        import asyncio

        asyncio.run(self.aclose())

    async def __aenter__(self) -> Platform:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __enter__(self) -> Platform:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
