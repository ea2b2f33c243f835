"""Every figure of the deployment, per environment, in one place.

`production` carries the values of `seed/aws-infrastructure-design.md`; `staging` and `dev`
shrink the expensive parts (instance sizes, counts, NAT gateways) and relax what only makes sense
for production data (deletion protection). Stacks read this module and nothing else for sizes,
names and thresholds, so a reviewer compares the design with one file.

Values a deployer must supply for a real account (domain, hosted zone, CodeStar connection,
image tag) come from CDK context (`cdk deploy -c domainName=...`), with harmless defaults so that
synthesis runs offline.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from textnlp import deployment


class Environment(StrEnum):
    DEV = "dev"
    STAGING = "staging"
    PRODUCTION = "production"


# A fixed account id keeps synthesis deterministic and offline; `cdk deploy` overrides it with
# the `account` context value (or CDK_DEFAULT_ACCOUNT) for a real account.
DEFAULT_ACCOUNT = "123456789012"
PRIMARY_REGION = "us-east-1"
DR_REGION = "us-west-2"


@dataclass(frozen=True)
class NetworkConfig:
    cidr: str = "10.0.0.0/16"
    # Design section 1: one /24 per AZ and tier, in AZ order a, b, c.
    public_cidrs: tuple[str, ...] = ("10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24")
    private_cidrs: tuple[str, ...] = ("10.0.11.0/24", "10.0.12.0/24", "10.0.13.0/24")
    database_cidrs: tuple[str, ...] = ("10.0.21.0/24", "10.0.22.0/24", "10.0.23.0/24")
    isolated_cidrs: tuple[str, ...] = ("10.0.31.0/24", "10.0.32.0/24", "10.0.33.0/24")
    nat_gateways: int = 3
    flow_log_retention_days: int = 90


@dataclass(frozen=True)
class ScalingConfig:
    min_capacity: int = 2
    max_capacity: int = 100
    cpu_target_percent: float = 70.0
    scale_in_cooldown_s: int = 300
    scale_out_cooldown_s: int = 60
    requests_per_task: float = 1000.0
    gpu_utilization_percent: float = 80.0


@dataclass(frozen=True)
class ComputeConfig:
    api_cpu: int = 2048
    api_memory_mib: int = 4096
    api_port: int = deployment.API_PORT
    api_desired_count: int = 2
    # 16 vCPU / 64 GiB for one task does not fit a g4dn.4xlarge once the ECS agent and the OS
    # take their share, so the hosts are g4dn.8xlarge (32 vCPU, 128 GiB, 1 T4 GPU).
    generation_instance_type: str = "g4dn.8xlarge"
    generation_cpu: int = 16384
    generation_memory_mib: int = 65536
    generation_gpus: int = 1
    generation_min_instances: int = 2
    generation_max_instances: int = 20
    generation_desired_count: int = 2
    #: The hosts' gp3 root volume: IOPS and MiB/s above gp3's 3,000 / 125 baseline.
    generation_volume_iops: int = 6000
    generation_volume_throughput_mibs: int = 250
    validation_cpu: int = 4096
    validation_memory_mib: int = 8192
    validation_desired_count: int = 2
    batch_cpu: int = 4096
    batch_memory_mib: int = 8192
    log_retention_days: int = 90
    scaling: ScalingConfig = field(default_factory=ScalingConfig)


@dataclass(frozen=True)
class SageMakerVariant:
    """A model on always-on instances, a production variant of the design's endpoint."""

    name: str
    model_name: str
    instance_type: str
    instance_count: int
    weight: float
    model_data_key: str


#: SageMaker serverless inference: memory in 1 GB steps, and at most 200 concurrent requests.
SERVERLESS_MEMORY_MB = (1024, 2048, 3072, 4096, 5120, 6144)
SERVERLESS_MAX_CONCURRENCY = 200


@dataclass(frozen=True)
class ServerlessModel:
    """A model on SageMaker serverless inference, at an endpoint of its own: no instances,
    billed per request and scaled to zero when idle; CPU only, at most 6 GB of memory."""

    name: str
    model_data_key: str
    memory_size_mb: int = 6144
    max_concurrency: int = 5
    #: None: `ModelServingConfig.cpu_inference_image` (serverless has no GPUs).
    image: str | None = None

    def __post_init__(self) -> None:
        if self.memory_size_mb not in SERVERLESS_MEMORY_MB:
            raise ValueError(f"serverless model {self.name}: memory_size_mb must be one of "
                             f"{SERVERLESS_MEMORY_MB}, not {self.memory_size_mb}")
        if not 1 <= self.max_concurrency <= SERVERLESS_MAX_CONCURRENCY:
            raise ValueError(f"serverless model {self.name}: max_concurrency must be 1.."
                             f"{SERVERLESS_MAX_CONCURRENCY}, not {self.max_concurrency}")

    @property
    def endpoint_name(self) -> str:
        return f"textnlp-{self.name}"


@dataclass(frozen=True)
class MultiModelEndpoint:
    """Many models on shared instances: every archive under `model_data_prefix` is loaded on
    its first request (`TargetModel`) and unloaded when memory runs short."""

    name: str
    #: An S3 prefix below the bucket (`models/small/`), holding one `.tar.gz` per model.
    model_data_prefix: str
    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1
    #: None: `ModelServingConfig.cpu_inference_image` (its model server loads many models).
    image: str | None = None

    def __post_init__(self) -> None:
        if not self.model_data_prefix.endswith("/"):
            raise ValueError(f"multi-model endpoint {self.name}: model_data_prefix must be "
                             f"an S3 prefix ending in '/', not {self.model_data_prefix!r}")

    @property
    def endpoint_name(self) -> str:
        return f"textnlp-{self.name}"


@dataclass(frozen=True)
class ModelServingConfig:
    """How each model is hosted: where it is listed. `variants`: always-on instances behind the
    design's endpoint; `serverless`: an endpoint per model that scales to zero;
    `multi_model`: endpoints whose instances serve many models (infra/README.md says when each
    fits)."""

    endpoint_name: str = "textnlp-multi-model"
    endpoint_config_name: str = "textnlp-multi-model"
    # Hugging Face TGI deep-learning container; SageMaker pulls it from AWS's own registry.
    inference_image: str = (
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/"
        "huggingface-pytorch-tgi-inference:2.1.1-tgi1.4.0-gpu-py310-cu121-ubuntu20.04"
    )
    # Hugging Face PyTorch inference on CPU: its model server (MMS) also serves multi-model
    # endpoints.
    cpu_inference_image: str = (
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/"
        "huggingface-pytorch-inference:2.1.0-transformers4.37.0-cpu-py310-ubuntu22.04"
    )
    serverless: tuple[ServerlessModel, ...] = ()
    multi_model: tuple[MultiModelEndpoint, ...] = ()
    variants: tuple[SageMakerVariant, ...] = (
        SageMakerVariant(
            "gpt-j-6b", "gpt-j-6b-model", "ml.g4dn.xlarge", 2, 0.5,
            "models/fine-tuned/gpt-j-6b/model.tar.gz",
        ),
        SageMakerVariant(
            "llama-7b", "llama-7b-model", "ml.g4dn.2xlarge", 2, 0.5,
            "models/fine-tuned/llama-7b/model.tar.gz",
        ),
    )
    bedrock_models: tuple[str, ...] = (
        "anthropic.claude-v2",
        "ai21.j2-ultra-v1",
        "amazon.titan-text-express-v1",
    )

    @property
    def endpoint_names(self) -> tuple[str, ...]:
        """Every endpoint the application may invoke."""
        others: tuple[ServerlessModel | MultiModelEndpoint, ...] = (
            *self.serverless, *self.multi_model)
        return (self.endpoint_name, *(model.endpoint_name for model in others))


@dataclass(frozen=True)
class StorageConfig:
    ia_after_days: int = 30
    glacier_after_days: int = 90
    temp_expiry_days: int = 7
    intelligent_tiering_after_days: int = 0
    noncurrent_expiry_days: int = 90
    replica_region: str = DR_REGION


@dataclass(frozen=True)
class AuroraConfig:
    #: The design names 15.4; AWS has deprecated that minor (it can no longer create clusters,
    #: cfn-lint W3690), so the default is a current minor of the same major version.
    engine_version: str = "15.10"
    writer_class: str = "db.r6g.2xlarge"
    reader_classes: tuple[str, ...] = ("db.r6g.xlarge", "db.r6g.xlarge")
    database_name: str = "textnlp"
    master_username: str = "textnlp_admin"
    backup_retention_days: int = 30
    backup_window: str = "03:00-04:00"
    maintenance_window: str = "sun:04:30-sun:05:30"
    deletion_protection: bool = True


@dataclass(frozen=True)
class RedisConfig:
    node_type: str = "cache.r6g.xlarge"
    node_groups: int = 3
    replicas_per_node_group: int = 2
    engine_version: str = "7.0"
    parameter_family: str = "redis7"
    maxmemory_policy: str = "allkeys-lru"
    timeout_s: int = 300
    tcp_keepalive_s: int = 60
    snapshot_retention_days: int = 7


@dataclass(frozen=True)
class MessagingConfig:
    generation_visibility_s: int = 3600
    generation_retention_s: int = 1209600
    max_receive_count: int = 3
    batch_visibility_s: int = 43200
    batch_receive_wait_s: int = 20
    #: The validation queue (not in the design, which has no queue for its validation service):
    #: long enough for a large dataset's report; workers extend their own visibility.
    validation_visibility_s: int = 3600


#: The queues the app's tasks use (named by ``EnvConfig.resource_name``): the task role reaches
#: these and no other environment's, which an account may hold too.
APP_QUEUES = (
    "generation-queue.fifo", "dlq.fifo", "batch-queue", "batch-dlq", "validation-queue",
    "validation-dlq",
)


@dataclass(frozen=True)
class ApiConfig:
    rest_api_name: str = "textnlp-api"
    websocket_api_name: str = "textnlp-stream"
    stage_name: str = "prod"
    throttling_rate_limit: float = 1000.0
    throttling_burst_limit: int = 5000
    cache_cluster_size: str = "1.6"
    cache_ttl_s: int = 300
    waf_rate_limit_per_5min: int = 2000
    #: Requests to `/api/v1/auth/` per viewer address in 5 minutes (CloudFront's WAF): the
    #: per-address login limit, where the viewer's address is known.
    waf_login_rate_limit_per_5min: int = 100


@dataclass(frozen=True)
class MonitoringConfig:
    error_rate_percent: float = 5.0
    p99_latency_ms: float = 3000.0
    aurora_cpu_percent: float = 80.0
    metrics_namespace: str = "Custom"


@dataclass(frozen=True)
class BackupConfig:
    rds_retention_days: int = 30
    ebs_retention_days: int = 7


@dataclass(frozen=True)
class DeliveryConfig:
    repository_owner: str = "inferloop"
    repository_name: str = "textnlp"
    branch: str = "main"
    build_image: str = "aws/codebuild/standard:6.0"
    deployment_config: str = "CodeDeployDefault.ECSLinear10PercentEvery1Minutes"
    blue_termination_wait_minutes: int = 5
    image_repositories: tuple[str, ...] = (
        "textnlp-api",
        "textnlp-generation",
        "textnlp-validation",
    )


#: The most days `textnlp jobs purge --older-than` takes (a century: what a date can go back by).
MAX_JOBS_RETENTION_DAYS = 36500


@dataclass(frozen=True)
class JobsConfig:
    """The jobs' retention: a scheduled task runs `textnlp jobs purge --older-than
    retention_days` every day at `purge_hour_utc`, deleting the jobs that ended earlier with
    their records and files (queued and running jobs stay); without it the database and the
    bucket grow with every job."""

    retention_days: int = 90
    #: Before Aurora's backup window (03:00-04:00 UTC) and the backup plan's 05:00 run.
    purge_hour_utc: int = 2

    def __post_init__(self) -> None:
        # `bool` is an int: a `True` from a typo would purge everything a day old.
        if (isinstance(self.retention_days, bool) or not isinstance(self.retention_days, int)
                or not 1 <= self.retention_days <= MAX_JOBS_RETENTION_DAYS):
            raise ValueError(f"jobs.retention_days must be a whole number of days from 1 to "
                             f"{MAX_JOBS_RETENTION_DAYS}, not {self.retention_days!r}")
        if not 0 <= self.purge_hour_utc <= 23:
            raise ValueError(f"jobs.purge_hour_utc must be an hour from 0 to 23, not "
                             f"{self.purge_hour_utc!r}")


@dataclass(frozen=True)
class TagConfig:
    cost_center: str = "engineering"
    owner: str = "textnlp-team@example.com"


@dataclass(frozen=True)
class EnvConfig:
    """The whole deployment of one environment."""

    environment: Environment
    account: str = DEFAULT_ACCOUNT
    region: str = PRIMARY_REGION
    domain_name: str = "textnlp.example.com"
    hosted_zone_id: str = "Z0123456789ABCDEFGHIJ"
    codestar_connection_arn: str = (
        "arn:aws:codestar-connections:us-east-1:123456789012:connection/"
        "00000000-0000-0000-0000-000000000000"
    )
    image_tag: str = "0.1.0"
    # GuardDuty, Config and Security Hub exist once per account and region; set the context
    # value `accountServices=false` where another stack already enables them.
    enable_account_services: bool = True
    # Who hears of alarms (e-mail addresses) and of finished jobs (HTTPS endpoints, e.g. a
    # team's chat webhook): subscriptions of the alarm and job-notification topics, from
    # context (`-c alarmEmails=a@x,b@y -c jobNotificationUrls=https://...`).
    alarm_emails: tuple[str, ...] = ()
    job_notification_urls: tuple[str, ...] = ()
    network: NetworkConfig = field(default_factory=NetworkConfig)
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    model_serving: ModelServingConfig = field(default_factory=ModelServingConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    aurora: AuroraConfig = field(default_factory=AuroraConfig)
    redis: RedisConfig = field(default_factory=RedisConfig)
    messaging: MessagingConfig = field(default_factory=MessagingConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    backup: BackupConfig = field(default_factory=BackupConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    jobs: JobsConfig = field(default_factory=JobsConfig)
    tags: TagConfig = field(default_factory=TagConfig)

    # -- names shared by several stacks (resources are found by name, never by lookup) --
    @property
    def name(self) -> str:
        return f"textnlp-{self.environment.value}"

    def resource_name(self, base: str) -> str:
        """The design's names (`textnlp-api`, `textnlp-dlq.fifo`...) in production; other
        environments insert their name so that they can share an account."""
        if self.is_production:
            return f"textnlp-{base}"
        return f"textnlp-{self.environment.value}-{base}"

    @property
    def jobs_purge_family(self) -> str:
        """The purge task's family, which is also its metrics' `ServiceName` (the Monitoring
        stack's heartbeat alarm) and what the pipeline registers each release under."""
        return self.resource_name("jobs-purge")

    @property
    def rest_api_name(self) -> str:
        """`textnlp-api` in production, `textnlp-dev-api`...: API Gateway's metrics are found by
        this name, so environments sharing an account must not share it (each one's alarms
        would watch the other's errors)."""
        return self.resource_name(self.api.rest_api_name.removeprefix("textnlp-"))

    @property
    def websocket_api_name(self) -> str:
        return self.resource_name(self.api.websocket_api_name.removeprefix("textnlp-"))

    @property
    def bucket_name(self) -> str:
        return self.name

    @property
    def replica_bucket_name(self) -> str:
        return f"{self.name}-replica-{self.storage.replica_region}"

    @property
    def access_logs_bucket_name(self) -> str:
        return f"{self.name}-access-logs-{self.account}"

    @property
    def dr_vault_name(self) -> str:
        """The backup vault in the DR region that Aurora's backups are copied to."""
        return f"{self.name}-dr-vault"

    def dr_key_alias_arn(self) -> str:
        """The DR region's key (by alias), for what is copied or replicated there."""
        return f"arn:aws:kms:{self.storage.replica_region}:{self.account}:alias/{self.name}-replica"

    @property
    def secrets_prefix(self) -> str:
        return f"/textnlp/{self.environment.value}"

    @property
    def dashboard_name(self) -> str:
        return f"TextNLP-{self.environment.value.capitalize()}"

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION

    @property
    def api_host(self) -> str:
        return f"api.{self.domain_name}"

    @property
    def origin_host(self) -> str:
        """The ALB's name; API Gateway forwards to it over HTTPS."""
        return f"origin.{self.domain_name}"

    @property
    def stream_host(self) -> str:
        """The WebSocket API's custom domain: clients connect to `wss://` it, and the API tasks
        post tokens back to connections through its management endpoint (`https://`)."""
        return f"stream.{self.domain_name}"


_PRODUCTION = EnvConfig(environment=Environment.PRODUCTION)

_STAGING = replace(
    _PRODUCTION,
    environment=Environment.STAGING,
    domain_name="staging.textnlp.example.com",
    compute=replace(
        ComputeConfig(),
        generation_min_instances=1,
        generation_max_instances=4,
        generation_desired_count=1,
        validation_desired_count=1,
        scaling=replace(ScalingConfig(), max_capacity=10),
    ),
    model_serving=replace(
        ModelServingConfig(),
        variants=tuple(replace(v, instance_count=1) for v in ModelServingConfig().variants),
    ),
    aurora=replace(AuroraConfig(), writer_class="db.r6g.large", reader_classes=("db.r6g.large",)),
    redis=replace(RedisConfig(), node_type="cache.r6g.large", replicas_per_node_group=1),
)

_DEV = replace(
    _STAGING,
    environment=Environment.DEV,
    domain_name="dev.textnlp.example.com",
    # One NAT gateway: dev tolerates losing egress with an AZ, and saves two gateways' cost.
    network=replace(NetworkConfig(), nat_gateways=1, flow_log_retention_days=30),
    compute=replace(
        _STAGING.compute,
        api_desired_count=1,
        generation_min_instances=0,
        generation_max_instances=2,
        generation_desired_count=0,
        validation_desired_count=1,
        log_retention_days=30,
        scaling=replace(ScalingConfig(), min_capacity=1, max_capacity=4),
    ),
    aurora=replace(
        _STAGING.aurora,
        reader_classes=(),
        backup_retention_days=7,
        deletion_protection=False,
    ),
    redis=replace(_STAGING.redis, node_groups=1, replicas_per_node_group=1),
    backup=BackupConfig(rds_retention_days=7, ebs_retention_days=7),
)

_BY_ENVIRONMENT = {
    Environment.PRODUCTION: _PRODUCTION,
    Environment.STAGING: _STAGING,
    Environment.DEV: _DEV,
}

# Context keys a deployer may set to replace the offline defaults.
_CONTEXT_OVERRIDES = {
    "account": "account",
    "domainName": "domain_name",
    "hostedZoneId": "hosted_zone_id",
    "codestarConnectionArn": "codestar_connection_arn",
    "imageTag": "image_tag",
}


def for_environment(
    environment: Environment | str, context: dict[str, Any] | None = None
) -> EnvConfig:
    """The configuration of `environment`, with the deployer's context overrides applied."""
    config = _BY_ENVIRONMENT[Environment(environment)]
    context = context or {}
    overrides: dict[str, Any] = {
        attribute: str(context[key])
        for key, attribute in _CONTEXT_OVERRIDES.items()
        if context.get(key)
    }
    if "accountServices" in context:
        overrides["enable_account_services"] = str(context["accountServices"]).lower() == "true"
    for key, attribute in (("alarmEmails", "alarm_emails"),
                           ("jobNotificationUrls", "job_notification_urls")):
        if context.get(key):
            overrides[attribute] = _listed(context[key])
    if context.get("jobsRetentionDays"):  # `-c jobsRetentionDays=30`
        overrides["jobs"] = replace(config.jobs,
                                    retention_days=_whole_days(context["jobsRetentionDays"]))
    if context.get("owner"):  # the design's Owner tag: the team's e-mail address
        overrides["tags"] = replace(config.tags, owner=str(context["owner"]))
    for url in overrides.get("job_notification_urls", ()):
        if not url.startswith("https://"):
            raise ValueError(f"jobNotificationUrls must be https:// URLs (got {url!r})")
    return replace(config, **overrides)


def _listed(value: Any) -> tuple[str, ...]:
    """A context list: a JSON list, or a comma-separated string (`-c key=a,b`)."""
    items = value if isinstance(value, list) else str(value).split(",")
    return tuple(str(item).strip() for item in items if str(item).strip())


def _whole_days(value: Any) -> int:
    """A context number of days (`-c` passes strings): a whole number, or ValueError."""
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit():
        raise ValueError(f"jobsRetentionDays must be a whole number of days, not {value!r}")
    return int(text)
