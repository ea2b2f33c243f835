"""Settings: one object, read once from the environment (prefix ``TEXTNLP_``, nested ``__``).

Two profiles share the code base. ``local`` (the default) keeps everything under ``./.textnlp/``
(``TEXTNLP_HOME``): SQLite, a response cache file, in-process rate limits, a database-table queue
and a storage directory. ``aws`` switches the components to their cloud adapters (PostgreSQL,
Redis, SQS, S3, Secrets Manager) unless a component is set explicitly, e.g.
``TEXTNLP_DATABASE__URL``. Business code never looks at the profile: ``textnlp.bootstrap`` builds
the adapters from these settings.

This schema is also the contract with the deployment: ``infra/`` names every variable it gives a
container through ``env_name()``, so a renamed field breaks synthesis, not the running service;
``load_settings()`` refuses a ``TEXTNLP_*`` variable it does not know. The deployment provides
the database and cache as parts (the Aurora endpoint and secret, the ElastiCache endpoint and
auth token), which ``Settings.database_url`` and ``Settings.cache_url`` assemble. Error messages
name the variable, never its value (it may be a secret).

Nothing here runs at import time: call ``load_settings()``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal, get_args, get_origin
from urllib.parse import quote

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from textnlp.deployment import session_table_name
from textnlp.errors import ConfigError

Profile = Literal["local", "aws"]
Environment = Literal["dev", "staging", "production"]

#: The JWT secret of the local profile; refused anywhere else.
LOCAL_JWT_SECRET = "textnlp-local-development-secret-change-me"  # noqa: S105 - documented default
#: Shortest JWT secret accepted outside the local profile (RFC 7518 asks HS256 keys for 256 bits).
MIN_JWT_SECRET_BYTES = 32
#: Words of example and placeholder secrets (compared without case, digits or punctuation).
_PLACEHOLDER_WORDS = ("changeme", "replaceme", "placeholder", "yoursecret", "example", "default")


def jwt_secret_problem(secret: str) -> str | None:
    """Why ``secret`` is too weak to sign tokens outside the local profile, or None.

    Shared by the settings' validation and the secret read from Secrets Manager
    (``Platform.auth_settings``). The message never quotes the secret.
    """
    letters = "".join(c for c in secret.casefold() if c.isalpha())
    local = "".join(c for c in LOCAL_JWT_SECRET if c.isalpha())
    if local in letters:
        return "is the local default (in some spelling)"
    if secret != secret.strip():
        return "starts or ends with whitespace (a copy-paste slip?)"
    if len(secret.encode()) < MIN_JWT_SECRET_BYTES:
        return f"is shorter than {MIN_JWT_SECRET_BYTES} bytes"
    if any(word in letters for word in _PLACEHOLDER_WORDS):
        return "looks like a placeholder (changeme, example, default...)"
    if len(set(secret)) < 8:
        return "has fewer than 8 distinct characters"
    return None


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EngineSettings(_Section):
    """The embedded llama.cpp engine."""

    #: Sequences decoded together in one batch (slots of the continuous batcher).
    n_parallel: int = Field(32, ge=1, le=256)
    #: CPU threads; 0 means all cores.
    n_threads: int = Field(0, ge=0)
    #: Tokens per llama_decode call when prompts are being read.
    n_batch: int = Field(512, ge=32)
    #: llama.cpp's own logs (every tensor and buffer at load) on stderr; off: dropped.
    llama_logs: bool = False


class GenerationSettings(_Section):
    concurrency: int = Field(32, ge=1, le=1024)
    #: Retries of a record whose JSON output does not parse or match its schema.
    json_retries: int = Field(2, ge=0, le=10)
    response_cache: bool = True
    #: Completions the local response cache keeps; the oldest written go first beyond this.
    response_cache_max_entries: int = Field(200_000, ge=1)
    #: Disk the llama.cpp engine may fill with prompts' KV states (with the response cache on),
    #: so a recipe re-run after an edit loads the unchanged start of its prompts (0: off).
    prefix_store_mb: int = Field(2048, ge=0)
    max_count: int = Field(1_000_000, ge=1)


class DatabaseSettings(_Section):
    """A SQLAlchemy ``url``; or the parts a deployment provides (Aurora's endpoint and its
    master secret), assembled into a PostgreSQL URL; else SQLite under TEXTNLP_HOME."""

    url: SecretStr = SecretStr("")
    host: str = ""
    port: int = Field(5432, ge=1, le=65535)
    name: str = "textnlp"
    user: str = ""
    password: SecretStr = SecretStr("")
    #: libpq's sslmode for the assembled URL (``require`` on Aurora).
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = "prefer"
    #: Connections this process keeps open, and opens beyond them when busy; a request that
    #: finds every one in use waits ``pool_timeout_s``, then answers 503 (PostgreSQL).
    pool_size: int = Field(10, ge=1)
    max_overflow: int = Field(20, ge=0)
    pool_timeout_s: float = Field(10.0, gt=0)
    #: PostgreSQL cancels a statement that runs longer, or that waits longer for a lock (every
    #: request queued behind a migration's ALTER TABLE): a 503, never a hang (0: no bound).
    statement_timeout_s: float = Field(120.0, ge=0)
    lock_timeout_s: float = Field(10.0, ge=0)


class CacheSettings(_Section):
    """Redis (ElastiCache in ``aws``): a ``url``, or the parts a deployment provides. Without
    either, the response cache is a file under TEXTNLP_HOME and rate limits are per process."""

    #: ``redis://`` or ``rediss://`` (TLS) URL; may carry the password.
    url: SecretStr = SecretStr("")
    host: str = ""
    port: int = Field(6379, ge=1, le=65535)
    auth_token: SecretStr = SecretStr("")
    #: TLS to the server (ElastiCache in-transit encryption).
    tls: bool = False
    #: The server is a Redis Cluster (ElastiCache cluster mode): a cluster-aware client.
    cluster: bool = False
    ttl_s: int = Field(24 * 3600, ge=1)


class QueueSettings(_Section):
    """The design's queues: generation (FIFO, with ``textnlp-dlq.fifo``), batch (long jobs) and
    validation (the CPU service), each with its dead-letter queue."""

    backend: Literal["local", "sqs"] = "local"
    generation_queue: str = "textnlp-generation-queue.fifo"
    dead_letter_queue: str = "textnlp-dlq.fifo"
    batch_queue: str = "textnlp-batch-queue"
    batch_dead_letter_queue: str = "textnlp-batch-dlq"
    validation_queue: str = "textnlp-validation-queue"
    validation_dead_letter_queue: str = "textnlp-validation-dlq"
    max_receives: int = Field(3, ge=1)
    #: Visibility a worker takes a message with; its heartbeat extends it while the job runs,
    #: so a worker that dies (SIGKILL, Spot) frees its job within this many seconds. (The
    #: queues' own defaults, 3600 s and 43200 s in the design, apply to other consumers.)
    visibility_timeout_s: int = Field(30, ge=1)
    #: Jobs of at least this many records go to the batch queue.
    batch_threshold: int = Field(10_000, ge=1)
    #: Long polling of the SQS queues.
    wait_time_s: int = Field(20, ge=0, le=20)
    #: Records a worker checkpoints together.
    chunk_size: int = Field(32, ge=1, le=10_000)
    #: A failed attempt's job waits this long before its next attempt, doubled at each attempt
    #: (at most ``retry_delay_max_s``): a failure that lasts a minute (a model server
    #: restarting) is not met by every attempt at once. ``--once`` workers retry at once.
    retry_delay_s: int = Field(15, ge=0)
    retry_delay_max_s: int = Field(900, ge=0, le=43_200)
    #: How often a worker extends the visibility of the messages it holds.
    heartbeat_s: float = Field(10.0, gt=0)
    #: How often a worker looks in the dead-letter queues for jobs whose worker died on every
    #: attempt (their messages reached the DLQ by redrive), to mark them failed.
    dead_letter_sweep_s: float = Field(30.0, gt=0)
    #: SNS topic told when a job finishes (``aws`` profile); empty: no topic.
    notify_topic_arn: str = ""
    #: Let job webhooks reach private, loopback and link-local addresses (tests, self-hosted
    #: receivers on a private network); off, such targets are refused (``textnlp.egress``).
    webhook_allow_private: bool = False


class StorageSettings(_Section):
    backend: Literal["local", "s3"] = "local"
    bucket: str = ""
    #: Local storage directory; empty means TEXTNLP_HOME/storage.
    root: str = ""
    #: Days after which the bucket's lifecycle moves generated files to an archive class (the
    #: deployment sets it): a job's view then links the API's results route, which answers
    #: that the file is archived, rather than a presigned URL that S3 would refuse.
    archive_after_days: int | None = Field(None, ge=1)


class SecretsSettings(_Section):
    backend: Literal["env", "aws"] = "env"
    ttl_s: int = Field(300, ge=0)


class AuthSettings(_Section):
    jwt_secret: SecretStr = SecretStr(LOCAL_JWT_SECRET)
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    issuer: str = "textnlp"
    audience: str = "textnlp-api"
    access_ttl_s: int = Field(900, ge=30)
    refresh_ttl_s: int = Field(7 * 24 * 3600, ge=60)
    #: Seconds after a rotation during which the refresh token it replaced, presented again,
    #: is refused alone instead of revoking its family as leaked: the loser of two refreshes
    #: sent at once (two tabs, a retry) keeps the winner's session. 0: every reuse revokes.
    refresh_reuse_grace_s: float = Field(5.0, ge=0, le=60)
    #: Where refresh-token families and revocations live: the database's tables, or a DynamoDB
    #: table (the ``aws`` profile's), which the gateway's authorizer reads too.
    session_store: Literal["database", "dynamodb"] = "database"
    #: The DynamoDB table; empty: ``textnlp-<environment>-sessions``.
    session_table: str = ""


class ApiSettings(_Section):
    """The HTTP API: bounds checked before any model runs, rate limits, docs."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    #: Largest request body in bytes (413 above it).
    max_body_bytes: int = Field(1_000_000, ge=1024)
    #: Largest batch file uploaded to ``POST /v1/files`` (OpenAI's 200 MB): that route's body
    #: bound instead of ``max_body_bytes``; the upload is spooled to disk, not held in memory.
    max_file_bytes: int = Field(200 * 1024 * 1024, ge=1024)
    #: Bytes a user may keep uploaded (prompt files and batch files together): an upload that
    #: would go past it answers 429 ``quota_exceeded`` until files are deleted.
    max_upload_bytes_per_user: int = Field(10 * 1024**3, ge=1024)
    #: Seconds of an OpenAI batch's completion window (``24h``): a batch not ended by then
    #: expires (``services.openai_batches``). Shorter only in tests.
    batch_window_s: int = Field(24 * 3600, ge=1)
    #: Largest prompt (or rendered template) in characters (422 above it).
    max_prompt_chars: int = Field(32_000, ge=1)
    #: Upper bound of ``max_tokens`` and ``n`` on the API (the contract allows up to 4096 / 16).
    max_tokens: int = Field(4096, ge=1, le=4096)
    max_n: int = Field(16, ge=1, le=16)
    #: Token buckets per user or API key; the design's API Gateway values by default.
    rate_limit_per_s: float = Field(1000.0, gt=0)
    rate_limit_burst: int = Field(5000, ge=1)
    #: Per-user overrides: username -> [rate per second, burst].
    user_rate_limits: dict[str, tuple[float, int]] = {}
    #: Login attempts, [rate per second, burst], per username (guessing one account's password
    #: from many addresses) and per client address (many accounts from one address; an IPv6
    #: client counts by its /64). Every attempt takes a token from both. ``None`` per address:
    #: the app cannot tell clients apart (behind a gateway that hides their addresses), so an
    #: edge in front that sees them must limit per address instead; a deployment that passes
    #: the viewer's address in a way the app can check (``viewer_verify``) keeps it on.
    login_limit_per_username: tuple[float, int] = (0.1, 10)
    login_limit_per_address: tuple[float, int] | None = (0.5, 30)
    #: Proxies (CIDRs) whose ``X-Forwarded-For`` is believed: the client is the right-most hop
    #: that is not one of them. Empty (the default): the connection's peer is the client, and
    #: a client-supplied ``X-Forwarded-For`` is ignored. Behind the ALB: the VPC's CIDR.
    trusted_proxies: list[str] = []
    #: Active API keys a user may hold; keys share their owner's rate-limit bucket.
    max_api_keys_per_user: int = Field(10, ge=1, le=1000)
    #: Slow clients (``textnlp serve``): seconds an idle keep-alive connection is kept; seconds
    #: from the connection (or the previous answer) to a complete request head, else closed
    #: (408 when part of a head came); seconds to receive a request's body once its head came,
    #: else 408.
    keep_alive_timeout_s: int = Field(5, ge=1, le=3600)
    request_head_timeout_s: float = Field(10.0, gt=0, le=3600)
    request_body_timeout_s: float = Field(30.0, gt=0, le=3600)
    #: Largest request head (request line and headers) in bytes; uvicorn answers 400 above it.
    max_header_bytes: int = Field(16 * 1024, ge=1024, le=1024 * 1024)
    #: HTTP requests in progress at once; the next ones answer 503 with Retry-After at once
    #: rather than wait in line.
    max_concurrent_requests: int = Field(512, ge=1)
    #: Authenticated HTTP requests one user (all their keys and tokens together) may have in
    #: progress at once in a process; the next answers 429 at once. Without it one user's
    #: slow streams took every slot of ``max_concurrent_requests``, and everyone else's
    #: requests answered 503 for as long as they liked.
    max_requests_per_user: int = Field(64, ge=1)
    #: Open connections (idle keep-alive and WebSockets included) above which uvicorn answers
    #: new requests 503; and the listen backlog of connections not yet accepted.
    max_connections: int = Field(2048, ge=1)
    backlog: int = Field(2048, ge=1)
    #: WebSockets one user may hold open at once (per API process; the next is refused, 429),
    #: and seconds a WebSocket may stay open without a request from its client (then closed,
    #: 1001): idle sockets must not take the connections every client shares.
    max_websockets_per_user: int = Field(16, ge=1)
    #: The console's job event streams one user may hold open in a process (each is a request
    #: in flight as long as its page is open).
    max_event_streams_per_user: int = Field(16, ge=1)
    websocket_idle_s: float = Field(300.0, gt=0)
    #: The API Gateway WebSocket API's management endpoint (``https://<id>.execute-api.<region>
    #: .amazonaws.com/<stage>``): where tokens of gateway connections are posted back.
    websocket_callback_url: str = ""
    #: When set, every request but the health probe must carry this value in the
    #: ``X-Origin-Verify`` header (API Gateway adds it), else 403: the public load balancer
    #: cannot be used to walk around the gateway's authorizer and throttling.
    origin_verify: SecretStr = SecretStr("")
    #: When set, a request whose ``X-Viewer-Verify`` header is exactly this value came through
    #: the edge (CloudFront adds it), and its ``X-Viewer-Address`` (which the edge sets from the
    #: connection) is the client's address; on any other request that header is ignored.
    #: Empty: the header is never read.
    viewer_verify: SecretStr = SecretStr("")

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        """Each entry a CIDR or an address (a /32 or /128), written canonically."""
        import ipaddress

        try:
            return [str(ipaddress.ip_network(entry.strip(), strict=False)) for entry in value]
        except ValueError as exc:
            raise ValueError(f"trusted_proxies: not a CIDR: {exc}") from None


class ObservabilitySettings(_Section):
    #: JSON log lines (request id on each); plain text otherwise.
    json_logs: bool = True
    #: CloudWatch embedded-metric-format lines (RequestLatency, TokensGenerated); on in aws.
    emf: bool = False
    #: The metrics' namespace; their ``ServiceName`` dimension is ``service_name``.
    emf_namespace: str = "TextNLP"
    #: OpenTelemetry span exporter: none (tracing off), console (JSON spans on stderr), or otlp.
    trace_exporter: Literal["none", "console", "otlp"] = "none"
    otlp_endpoint: str = ""
    service_name: str = "textnlp-api"


class AwsSettings(_Section):
    region: str = "us-east-1"
    #: Custom endpoint (moto's server in tests).
    endpoint_url: str | None = None


class ModelPriceSettings(_Section):
    """US dollars per 1,000 tokens."""

    input_per_1k: float = Field(ge=0.0)
    output_per_1k: float = Field(ge=0.0)
    #: Provider batch prices; unset: half the online price (``pricing.BATCH_DISCOUNT``).
    batch_input_per_1k: float | None = Field(default=None, ge=0.0)
    batch_output_per_1k: float | None = Field(default=None, ge=0.0)


class RateLimitSettings(_Section):
    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)


#: List prices (USD per 1K tokens, on-demand, us-east-1) when this was written; override them in
#: TEXTNLP_MODELS__PRICES or settings. Self-hosted models (SageMaker, vLLM) have none by default.
DEFAULT_PRICES: dict[str, ModelPriceSettings] = {
    "anthropic.claude-v2": ModelPriceSettings(input_per_1k=0.008, output_per_1k=0.024),
    "ai21.j2-ultra-v1": ModelPriceSettings(input_per_1k=0.0188, output_per_1k=0.0188),
    "amazon.titan-text-express-v1": ModelPriceSettings(input_per_1k=0.0002, output_per_1k=0.0006),
    "gpt-4o-mini": ModelPriceSettings(input_per_1k=0.00015, output_per_1k=0.0006),
}


class ModelsSettings(_Section):
    """Remote model backends: timeouts, retries, circuit, rate limits, prices, spending caps."""

    timeout_s: float = Field(default=120.0, gt=0)
    connect_timeout_s: float = Field(default=10.0, gt=0)
    #: Attempts per request (1 = no retry); only throttling, 5xx and timeouts are retried.
    max_attempts: int = Field(default=4, ge=1, le=20)
    backoff_base_s: float = Field(default=0.5, ge=0)
    backoff_max_s: float = Field(default=20.0, ge=0)
    #: Consecutive failures that open a backend's circuit, and how long it stays open.
    circuit_failures: int = Field(default=5, ge=1)
    circuit_reset_s: float = Field(default=30.0, gt=0)
    #: Where per-backend rate limits are counted; ``auto``: Redis when there is a cache server.
    rate_limiter: Literal["auto", "memory", "redis"] = "auto"
    rate_limit_max_wait_s: float = Field(default=60.0, ge=0)
    #: Per model id (catalogue id); models without an entry use ``default_rate_limit``.
    rate_limits: dict[str, RateLimitSettings] = {}
    default_rate_limit: RateLimitSettings = RateLimitSettings()
    #: Per model id or provider model id.
    prices: dict[str, ModelPriceSettings] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    #: Spending caps in US dollars (None: no cap).
    job_spending_cap_usd: float | None = Field(default=None, ge=0)
    user_spending_cap_usd: float | None = Field(default=None, ge=0)
    #: The service role Bedrock assumes to run batch inference jobs (``provider_batch`` jobs
    #: on Bedrock models): it reads and writes ``generated/batch-jobs/*/provider/`` (infra/).
    bedrock_batch_role_arn: str = ""


# -- reading the environment -------------------------------------------------------------------
ENV_PREFIX = "TEXTNLP_"
#: ``TEXTNLP_*`` variables that are not settings: the CLI's client options and test fixtures.
NOT_SETTINGS = frozenset(
    {"TEXTNLP_API_URL", "TEXTNLP_API_TOKEN", "TEXTNLP_API_KEY", "TEXTNLP_WEBHOOK_SECRET"}
)
#: ``TEXTNLP_SECRET_<NAME>``: a secret of the ``env`` secrets backend (``adapters.secrets.env``).
_NOT_SETTINGS_PREFIXES = ("TEXTNLP_TEST_", "TEXTNLP_SECRET_")
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("textnlp_environ", default=None)


class _MappingEnvSource(EnvSettingsSource):
    """The environment source, reading the mapping given to ``load_settings(environ=...)``."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        environ = _ENVIRON.get()
        assert environ is not None
        # Settings are case-insensitive: the same normalisation as the library's own source.
        return {name.lower(): value for name, value in environ.items()}


class Settings(BaseSettings):
    """Every setting of TextNLP; see the README's Configuration section."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        if _ENVIRON.get() is not None:  # an explicit environment: that mapping alone
            return (init_settings, _MappingEnvSource(settings_cls))
        return (init_settings, env_settings, dotenv_settings, file_secret_settings)

    profile: Profile = "local"
    environment: Environment = "dev"
    home: Path = Path(".textnlp")
    default_model: str = "smollm2-135m"
    #: Extra catalogue entries; defaults to HOME/models.yaml when that file exists.
    models_file: Path | None = None
    #: Directory of user prompt templates; defaults to HOME/templates when it exists.
    templates_dir: Path | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    engine: EngineSettings = EngineSettings()
    generation: GenerationSettings = GenerationSettings()
    database: DatabaseSettings = DatabaseSettings()
    cache: CacheSettings = CacheSettings()
    queue: QueueSettings = QueueSettings()
    storage: StorageSettings = StorageSettings()
    secrets: SecretsSettings = SecretsSettings()
    auth: AuthSettings = AuthSettings()
    aws: AwsSettings = AwsSettings()
    models: ModelsSettings = ModelsSettings()
    api: ApiSettings = ApiSettings()
    observability: ObservabilitySettings = ObservabilitySettings()

    @model_validator(mode="before")
    @classmethod
    def _apply_profile(cls, data: Any) -> Any:
        """The ``aws`` profile's component defaults, under whatever was set explicitly."""
        if not isinstance(data, dict) or data.get("profile") != "aws":
            return data
        presets: dict[str, dict[str, Any]] = {
            "queue": {"backend": "sqs"},
            "storage": {"backend": "s3"},
            "secrets": {"backend": "aws"},
            "auth": {"session_store": "dynamodb"},
            "observability": {"emf": True},
        }
        for section, values in presets.items():
            current = data.get(section) or {}
            if isinstance(current, BaseModel):
                current = current.model_dump(exclude_unset=True)
            data[section] = {**values, **current}
        return data

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> Settings:
        if self.database.host and not self.database.user:
            raise ValueError("database.user is required with database.host")
        if self.profile != "local":
            if not (self.database.host or self.database.url.get_secret_value()):
                # A deployment without a database would write SQLite into its container.
                raise ValueError(
                    "the aws profile needs its database: set TEXTNLP_DATABASE__HOST (with "
                    "__USER and __PASSWORD) or TEXTNLP_DATABASE__URL"
                )
            # With Secrets Manager the secret is read, and checked, by Platform.auth_settings.
            weakness = (
                jwt_secret_problem(self.auth.jwt_secret.get_secret_value())
                if self.secrets.backend != "aws"
                else None
            )
            if weakness is not None:
                raise ValueError(
                    f"auth.jwt_secret {weakness}; set TEXTNLP_AUTH__JWT_SECRET to at least "
                    f"{MIN_JWT_SECRET_BYTES} random bytes or read it from Secrets Manager "
                    "(TEXTNLP_SECRETS__BACKEND=aws)"
                )
            if self.storage.backend == "s3" and not self.storage.bucket:
                self.storage.bucket = f"textnlp-{self.environment}"
        if self.auth.session_store == "dynamodb" and not self.auth.session_table:
            self.auth.session_table = session_table_name(self.environment)
        return self

    # Derived locations, all under ``home`` in the local profile.
    @property
    def database_url(self) -> str:
        db = self.database
        if db.url.get_secret_value():
            return db.url.get_secret_value()
        if db.host:
            password = db.password.get_secret_value()
            credentials = quote(db.user, safe="") + (
                f":{quote(password, safe='')}" if password else ""
            )
            return (
                f"postgresql+psycopg://{credentials}@{db.host}:{db.port}/"
                f"{quote(db.name, safe='')}?sslmode={db.sslmode}"
            )
        return f"sqlite:///{(self.home / 'textnlp.db').as_posix()}"

    @property
    def cache_url(self) -> str | None:
        """The Redis URL (with its auth token), or None: no shared cache server."""
        cache = self.cache
        if cache.url.get_secret_value():
            return cache.url.get_secret_value()
        if not cache.host:
            return None
        token = cache.auth_token.get_secret_value()
        credentials = f":{quote(token, safe='')}@" if token else ""
        return f"{'rediss' if cache.tls else 'redis'}://{credentials}{cache.host}:{cache.port}"

    @property
    def storage_root(self) -> Path:
        return Path(self.storage.root) if self.storage.root else self.home / "storage"

    @property
    def response_cache_path(self) -> Path:
        return self.home / "cache" / "responses.sqlite"

    @property
    def prefix_store_dir(self) -> Path:
        return self.home / "cache" / "prompt-kv"

    @property
    def user_models_file(self) -> Path | None:
        if self.models_file is not None:
            return self.models_file
        candidate = self.home / "models.yaml"
        return candidate if candidate.exists() else None

    @property
    def user_templates_dir(self) -> Path | None:
        if self.templates_dir is not None:
            return self.templates_dir
        candidate = self.home / "templates"
        return candidate if candidate.is_dir() else None


@contextmanager
def _reading(environ: Mapping[str, str] | None) -> Iterator[None]:
    token = _ENVIRON.set(dict(environ) if environ is not None else None)
    try:
        yield
    finally:
        _ENVIRON.reset(token)


def env_name(*path: str) -> str:
    """``env_name("database", "host")`` -> ``"TEXTNLP_DATABASE__HOST"``; ``ConfigError`` when
    the schema has no such setting (the deployment names its variables through this)."""
    name = ENV_PREFIX + "__".join(part.upper() for part in path)
    if not path or not _is_setting(tuple(part.lower() for part in path), leaf=True):
        raise ConfigError(f"no setting {'.'.join(path)} ({name}) in textnlp.config.Settings")
    return name


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """The ``TEXTNLP_*`` names in ``environ`` that are no setting (sorted)."""
    unknown = []
    for name in environ:
        upper = name.upper()
        if (
            not upper.startswith(ENV_PREFIX)
            or upper in NOT_SETTINGS
            or upper.startswith(_NOT_SETTINGS_PREFIXES)
        ):
            continue
        path = tuple(part.lower() for part in upper[len(ENV_PREFIX) :].split("__"))
        if not _is_setting(path):
            unknown.append(name)
    return sorted(unknown)


def _is_setting(path: tuple[str, ...], *, leaf: bool = False) -> bool:
    """Whether ``path`` names a setting (``leaf``: a value, not a whole section as JSON)."""
    model: Any = Settings
    for depth, part in enumerate(path):
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields or not part:
            return False
        annotation = fields[part].annotation
        if depth == len(path) - 1:
            return not (leaf and _is_model(annotation))
        if get_origin(annotation) is dict:  # a mapping setting: any key below it
            return True
        nested = [a for a in (annotation, *get_args(annotation)) if _is_model(a)]
        if not nested:
            return False
        model = nested[0]
    return False


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read settings from the environment (and ``.env``), or from ``environ`` alone when given;
    explicit ``overrides`` win.

    A bad value or an unknown ``TEXTNLP_*`` variable raises ``ConfigError`` with one line
    naming the variable (never its value, which may be a secret).
    """
    unknown = unknown_variables(_with_env_file() if environ is None else environ)
    if unknown:
        more = f" (+{len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise ConfigError(f"unknown setting {unknown[0]}: no such field in Settings{more}")
    from pydantic_settings import SettingsError

    try:
        with _reading(environ):
            return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    except SettingsError as exc:  # a list, mapping or section's value that is not JSON
        raise ConfigError(_not_json(str(exc))) from None


def _not_json(message: str) -> str:
    found = re.search(r'field "(\w+)"', message)
    where = f"{ENV_PREFIX}{found.group(1).upper()}" if found else "a setting"
    return (
        f"a value under {where} is not JSON: lists, mappings and sections are given as JSON "
        """(e.g. TEXTNLP_API__TRUSTED_PROXIES='["10.0.0.0/8"]')"""
    )


def _with_env_file() -> dict[str, str]:
    """The process's environment and the names of ``.env`` (read as ``Settings`` reads it):
    a misspelt setting there must not pass in silence either."""
    names = dict(os.environ)
    env_file = Path(".env")
    if env_file.is_file():
        from dotenv import dotenv_values

        names = {**{k: v or "" for k, v in dotenv_values(env_file).items()}, **names}
    return names


def _describe(exc: ValidationError) -> str:
    error = exc.errors()[0]
    location = "__".join(str(part) for part in error["loc"] if part != "__root__")
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "no such field in Settings"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    if not location:
        return f"invalid settings: {message}{more}"
    return f"invalid setting {ENV_PREFIX}{location.upper()}: {message}{more}"
