"""S3 ``ObjectCreated`` (via EventBridge, reshaped to ``Records[].s3``) -> an ECS batch task.

For each record under ``prompts/user-uploads/`` it starts the batch processor
(``textnlp worker --queues batch --once``) on Fargate Spot with ``S3_BUCKET``/``S3_KEY``
overrides. Records it cannot use (other prefixes, folders, missing fields) are skipped and
logged; a failed ``run_task`` is logged and reported in the answer's ``failures``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

log = logging.getLogger(__name__)
log.setLevel(logging.INFO)

PREFIX = "prompts/user-uploads/"
_ENCODED = re.compile(r"%[0-9A-Fa-f]{2}|\+")
_ecs: Any = None


def decode_key(key: str) -> str:
    """S3 notifications URL-encode keys; EventBridge's do not. Decode only what looks encoded."""
    return unquote_plus(key) if _ENCODED.search(key) else key


def _client() -> Any:
    global _ecs
    if _ecs is None:
        import boto3

        _ecs = boto3.client("ecs")
    return _ecs


def _split(name: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, "").split(",") if part.strip()]


def objects(event: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(bucket, key) of the usable records; the others are logged and skipped."""
    found: list[tuple[str, str]] = []
    records = event.get("Records")
    if not isinstance(records, list):
        log.warning("event without Records: skipped")
        return found
    for number, record in enumerate(records):
        try:
            s3 = record["s3"]
            bucket = str(s3["bucket"]["name"])
            key = decode_key(str(s3["object"]["key"]))
        except (KeyError, TypeError):
            log.warning("record %d has no s3.bucket.name/object.key: skipped", number)
            continue
        if not key.startswith(PREFIX) or key.endswith("/"):
            log.info("record %d: %s is not a prompt upload: skipped", number, key)
            continue
        found.append((bucket, key))
    return found


def run_task_arguments(bucket: str, key: str) -> dict[str, Any]:
    container = os.environ.get("CONTAINER_NAME", "batch-processor")
    return {
        "cluster": os.environ["CLUSTER_ARN"],
        "taskDefinition": os.environ["TASK_DEFINITION_ARN"],
        "count": 1,
        "capacityProviderStrategy": [
            {"capacityProvider": os.environ.get("CAPACITY_PROVIDER", "FARGATE_SPOT"), "weight": 1}
        ],
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": _split("SUBNETS"),
                "securityGroups": _split("SECURITY_GROUPS"),
                "assignPublicIp": "DISABLED",
            }
        },
        "overrides": {
            "containerOverrides": [
                {
                    "name": container,
                    "environment": [
                        {"name": "S3_BUCKET", "value": bucket},
                        {"name": "S3_KEY", "value": key},
                    ],
                }
            ]
        },
        "startedBy": "textnlp-batch-trigger",
    }


def handler(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    started: list[str] = []
    failures: list[dict[str, str]] = []
    for bucket, key in objects(event):
        try:
            answer = _client().run_task(**run_task_arguments(bucket, key))
        except Exception as exc:
            log.error("run_task for s3://%s/%s failed: %s", bucket, key, exc)
            failures.append({"key": key, "reason": str(exc)})
            continue
        for failure in answer.get("failures", []):
            log.error("run_task for %s: %s", key, failure)
            failures.append({"key": key, "reason": str(failure.get("reason", failure))})
        tasks = [str(t["taskArn"]) for t in answer.get("tasks", [])]
        log.info("s3://%s/%s -> %s", bucket, key, tasks)
        started.extend(tasks)
    return {"started": started, "failures": failures}
