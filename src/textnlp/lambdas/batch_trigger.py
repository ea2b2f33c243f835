"""S3 ``ObjectCreated`` (via EventBridge, reshaped to ``Records[].s3``) -> an ECS batch task.

For each prompt upload (``upload_events``) it starts the batch processor
(``textnlp worker --queues batch --once``) with ``S3_BUCKET``/``S3_KEY`` overrides, except for:

- files uploaded through the API's own upload route, which carry the object metadata
  ``textnlp-submit: manual`` (``textnlp.deployment``): their owner submits the job with their
  own parameters, so a task here would generate the file a second time;
- objects deleted before the trigger looked at them (HEAD answers 404; without
  ``s3:ListBucket``, which the function does not hold, S3 answers 403 instead, and the event
  goes the failure path below).

Failures: a ``run_task`` that raises or answers ``failures`` (no Spot capacity, throttling), or
a HEAD that fails, is logged, the other records are still tried, and then the invocation
raises ``BatchTriggerFailed``. Lambda retries the asynchronous invocation (twice) and then
sends the event to the function's dead-letter queue with the error message. Retries are safe:
``run_task`` gets a ``clientToken`` derived from bucket, key and ETag, so ECS starts at most
one task per object version (for 24 hours, the token's lifetime); a ``ConflictException``
means that task exists already. Whether ECS replays an answer that held only ``failures`` for
the same token is not documented; if it does, such an event reaches the dead-letter queue.
A malformed event raises ``ValueError`` at once.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from textnlp.deployment import UPLOAD_METADATA_KEY, UPLOAD_METADATA_MANUAL
from textnlp.lambdas.upload_events import Upload, uploads_in

log = logging.getLogger(__name__)
log.setLevel(logging.INFO)

#: The function's configuration, one variable each; the infra builds the environment from this.
CONFIG_VARIABLES: dict[str, str] = {
    "CLUSTER_ARN": "the ECS cluster the batch processor runs in",
    "TASK_DEFINITION_ARN": "the batch processor's task definition",
    "CONTAINER_NAME": "its container, which gets the S3_BUCKET/S3_KEY overrides",
    "CAPACITY_PROVIDER": "the capacity provider to run it on (FARGATE_SPOT)",
    "SUBNETS": "comma-separated subnet ids of the task's network interface",
    "SECURITY_GROUPS": "comma-separated security group ids of that interface",
}
STARTED_BY = "textnlp-batch-trigger"
#: RunTask accepts client tokens of at most 64 characters (a SHA-256 in hex is exactly that).
CLIENT_TOKEN_MAX = 64
_clients: dict[str, Any] = {}


class BatchTriggerFailed(RuntimeError):
    """Some uploads started no task; the message lists them and why."""


@dataclass(frozen=True)
class TriggerConfig:
    cluster_arn: str
    task_definition_arn: str
    container_name: str
    capacity_provider: str
    subnets: list[str]
    security_groups: list[str]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> TriggerConfig:
        missing = [name for name in CONFIG_VARIABLES if not environ.get(name, "").strip()]
        if missing:
            raise RuntimeError(f"batch trigger environment lacks {', '.join(missing)}")

        def split(name: str) -> list[str]:
            return [part.strip() for part in environ[name].split(",") if part.strip()]

        return cls(
            cluster_arn=environ["CLUSTER_ARN"].strip(),
            task_definition_arn=environ["TASK_DEFINITION_ARN"].strip(),
            container_name=environ["CONTAINER_NAME"].strip(),
            capacity_provider=environ["CAPACITY_PROVIDER"].strip(),
            subnets=split("SUBNETS"),
            security_groups=split("SECURITY_GROUPS"),
        )


def _client(service: str) -> Any:
    """One boto3 client per service and container."""
    if service not in _clients:
        import boto3

        _clients[service] = boto3.client(service)
    return _clients[service]


def client_token(upload: Upload) -> str:
    """The same object version always gets the same token, whatever the retry."""
    identity = "\n".join((upload.bucket, upload.key, upload.etag))
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()[:CLIENT_TOKEN_MAX]


def run_task_arguments(config: TriggerConfig, upload: Upload) -> dict[str, Any]:
    return {
        "cluster": config.cluster_arn,
        "taskDefinition": config.task_definition_arn,
        "count": 1,
        "capacityProviderStrategy": [{"capacityProvider": config.capacity_provider, "weight": 1}],
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": config.subnets,
                "securityGroups": config.security_groups,
                "assignPublicIp": "DISABLED",
            }
        },
        "overrides": {
            "containerOverrides": [
                {
                    "name": config.container_name,
                    "environment": [
                        {"name": "S3_BUCKET", "value": upload.bucket},
                        {"name": "S3_KEY", "value": upload.key},
                    ],
                }
            ]
        },
        "startedBy": STARTED_BY,
        "clientToken": client_token(upload),
    }


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def submitted_manually(metadata: Mapping[str, str]) -> bool:
    """Whether the API's upload route stored the object (S3 lower-cases metadata names)."""
    lowered = {str(k).lower(): str(v) for k, v in metadata.items()}
    return lowered.get(UPLOAD_METADATA_KEY) == UPLOAD_METADATA_MANUAL


def _head(upload: Upload) -> dict[str, Any] | None:
    """HEAD of the object; None when it no longer exists."""
    try:
        return dict(_client("s3").head_object(Bucket=upload.bucket, Key=upload.key))
    except Exception as exc:
        if _error_code(exc) in {"404", "NoSuchKey", "NotFound"}:
            return None
        raise


def _start(config: TriggerConfig, upload: Upload) -> list[str]:
    """The task ARNs started (or already started) for ``upload``; raises on failure."""
    try:
        answer = _client("ecs").run_task(**run_task_arguments(config, upload))
    except Exception as exc:
        if _error_code(exc) == "ConflictException":  # this token started a task already
            existing = [str(arn) for arn in getattr(exc, "response", {}).get("resourceIds", [])]
            log.info("s3://%s/%s was started before: %s", upload.bucket, upload.key, existing)
            return existing
        raise
    failures = answer.get("failures") or []
    if failures:
        reasons = "; ".join(str(f.get("reason", f)) for f in failures)
        raise BatchTriggerFailed(f"run_task failures: {reasons}")
    return [str(task["taskArn"]) for task in answer.get("tasks", [])]


def _process(config: TriggerConfig, upload: Upload) -> list[str] | None:
    """The tasks started for ``upload``, or None when it is skipped."""
    head = _head(upload)
    where = f"s3://{upload.bucket}/{upload.key}"
    if head is None:
        log.info("%s no longer exists: skipped", where)
        return None
    if submitted_manually(head.get("Metadata") or {}):
        log.info("%s was uploaded through the API, its owner submits it: skipped", where)
        return None
    if not upload.etag:  # the token needs the object's version; HEAD knows it
        upload = replace(upload, etag=str(head.get("ETag", "")).strip('"'))
    tasks = _start(config, upload)
    log.info("%s -> %s", where, tasks)
    return tasks


def handler(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    uploads = uploads_in(event)
    if not uploads:
        return {"started": [], "skipped": []}
    config = TriggerConfig.from_environ(os.environ)
    started: list[str] = []
    skipped: list[str] = []
    failed: list[str] = []
    for upload in uploads:
        try:
            tasks = _process(config, upload)
        except Exception as exc:  # every record is tried before the invocation fails
            log.error("s3://%s/%s started no task: %s", upload.bucket, upload.key, exc)
            failed.append(f"{upload.key}: {exc}")
            continue
        if tasks is None:
            skipped.append(upload.key)
        else:
            started.extend(tasks)
    if failed:
        summary = " | ".join(failed)
        raise BatchTriggerFailed(f"{len(failed)} of {len(uploads)} uploads failed: {summary}")
    return {"started": started, "skipped": skipped}
