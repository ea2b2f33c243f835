"""What a deployment runs: TextNLP's processes, their commands, port, health check and writable
path, owned here and read (never copied) by the infrastructure code and the Dockerfiles' tests.

Every command is a real ``textnlp`` CLI command; ``tests/e2e/test_deployment_commands.py`` runs
each one against the CLI, and ``infra/`` builds its task definitions from these tuples. The
environment each process gets is named through ``textnlp.config.env_name``; the settings schema
is the other half of this contract. Standard library only: the infra and the Lambda assets
import it.
"""

from __future__ import annotations

import json

#: The API's port inside its container (the ALB's target port).
API_PORT = 8000
#: The route load balancers probe (a task that cannot reach the database leaves its target
#: group) and people read (every component's state).
HEALTH_PATH = "/api/v1/admin/health"
#: The route the container health check probes: the process answers. A dependency's outage
#: is not a reason to replace the task (a new one would meet the same outage).
LIVE_PATH = "/api/v1/admin/health/live"
#: Probes are answered even at the concurrency cap and without the gateway's origin header.
PROBE_PATHS = frozenset({HEALTH_PATH, LIVE_PATH})
#: A job's results route: what a notice links when storage gives no URL (local storage, or a
#: file archived by the bucket's lifecycle), as the API's job views do.
JOB_RESULTS_PATH = "/api/v1/generate/status/{job_id}/results"
#: The route API Gateway's WebSocket API forwards every frame to (with the connection id).
GATEWAY_STREAM_PATH = "/api/v1/stream"
#: The query parameter WebSocket clients pass their credential in (browsers cannot set
#: headers on a WebSocket); the app's own socket and the gateway's authorizer both read it.
ACCESS_TOKEN_PARAMETER = "access_token"

#: Containers run with a read-only root; this is the one writable path (a task volume), and
#: TEXTNLP_HOME lives in it (scratch files, the models' re-encoded weights, caches).
SCRATCH_PATH = "/tmp"
CONTAINER_HOME = f"{SCRATCH_PATH}/textnlp"
#: Where libraries write their caches (re-encoded GGUF weights, Hugging Face, matplotlib): the
#: writable volume too, never the read-only home directory.
SCRATCH_ENVIRONMENT = {
    "XDG_CACHE_HOME": f"{SCRATCH_PATH}/cache",
    "HF_HOME": f"{SCRATCH_PATH}/hf",
    "MPLCONFIGDIR": f"{SCRATCH_PATH}/matplotlib",
}

API_COMMAND = ("textnlp", "serve", "--host", "0.0.0.0", "--port", str(API_PORT))  # noqa: S104
#: The GPU generation service: short jobs first, and the long ones of the batch queue.
GENERATION_COMMAND = ("textnlp", "worker", "--queues", "generation,batch")
#: The CPU validation service: validation gates and reports of finished jobs.
VALIDATION_COMMAND = ("textnlp", "worker", "--queues", "validation")
#: The batch processor, one task per uploaded prompt file (S3_BUCKET, S3_KEY overrides).
BATCH_PROCESSOR_COMMAND = ("textnlp", "worker", "--queues", "batch", "--once")
#: The one-off task that migrates the database before services roll out.
MIGRATE_COMMAND = ("textnlp", "db", "upgrade")


def jobs_purge_command(days: int) -> tuple[str, ...]:
    """The scheduled retention task: delete the jobs that ended more than ``days`` days ago,
    with their records and files (the CLI takes 1 or more)."""
    return ("textnlp", "jobs", "purge", "--older-than", str(days))


#: The container health check of the API: exits non-zero unless the process answers 200.
HEALTH_CHECK_COMMAND = (
    'python -c "import urllib.request; '
    f"urllib.request.urlopen('http://localhost:{API_PORT}{LIVE_PATH}', timeout=3)\""
)

#: Secrets Manager names below ``/textnlp/<environment>/`` (the design's tree) that the app
#: reads itself; the deployment creates them under these names.
JWT_SECRET = "api/jwt-secret"
OPENAI_API_KEY = "models/openai-api-key"
ANTHROPIC_API_KEY = "models/anthropic-api-key"
HUGGINGFACE_TOKEN = "models/huggingface-token"


def secret_path(environment: str, name: str) -> str:
    """``/textnlp/production/api/jwt-secret``: where ``name`` lives in Secrets Manager."""
    return f"/textnlp/{environment}/{name}"


def unwrap_secret(raw: str) -> str:
    """A secret's value as stored: JSON with a ``value`` key or with one key is that value (an
    operator may store ``{"api_key": "..."}``); anything else is the value itself."""
    if not raw.lstrip().startswith("{"):
        return raw
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(value, dict):
        if isinstance(value.get("value"), str):
            return str(value["value"])
        if len(value) == 1:
            only = next(iter(value.values()))
            if isinstance(only, str):
                return only
    return raw


AUTHORIZER_HANDLER = "textnlp.lambdas.authorizer.handler"
BATCH_TRIGGER_HANDLER = "textnlp.lambdas.batch_trigger.handler"
#: Runs the migration task during a deployment, before the services (a CDK trigger).
MIGRATION_TRIGGER_HANDLER = "textnlp.lambdas.migration_trigger.handler"


def session_table_name(environment: str) -> str:
    """``textnlp-production-sessions``: the DynamoDB session store of an environment (the
    ``aws`` profile's default ``auth.session_table``, and the table the deployment creates)."""
    return f"textnlp-{environment}-sessions"


#: The header API Gateway adds to every request it forwards, with the deployment's generated
#: secret (``api/origin-verify``); the app refuses requests without it (``api.origin_verify``).
ORIGIN_VERIFY_HEADER = "X-Origin-Verify"
#: The header only the WebSocket API's integration adds, with the same secret: the bridge
#: (``GATEWAY_STREAM_PATH``) trusts its connection id and route key from nothing else (the REST
#: API forwards a client's own headers, ``X-Connection-Id`` included, to every app route).
WEBSOCKET_ORIGIN_HEADER = "X-WebSocket-Origin"
ORIGIN_VERIFY_SECRET = "api/origin-verify"
#: The viewer's address as CloudFront saw it: a viewer-request function of the distribution
#: sets it from the connection, replacing whatever the viewer sent under that name.
VIEWER_ADDRESS_HEADER = "X-Viewer-Address"
#: The header the distribution adds to what it sends to API Gateway, with the deployment's
#: generated secret (``api/viewer-verify``; CloudFront overwrites a viewer's own): only a
#: request carrying it came through the distribution, whose ``VIEWER_ADDRESS_HEADER`` the app
#: then believes (``api.viewer_verify``). API Gateway's own URL is public too, and there anyone
#: can send that header.
VIEWER_VERIFY_HEADER = "X-Viewer-Verify"
VIEWER_VERIFY_SECRET = "api/viewer-verify"

#: S3 object metadata the API's upload route sets on prompt files: the user submits the job
#: with their own parameters, so the upload trigger leaves the file alone (no second job).
UPLOAD_METADATA_KEY = "textnlp-submit"
UPLOAD_METADATA_MANUAL = "manual"
