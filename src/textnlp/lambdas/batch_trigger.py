"""S3 ``ObjectCreated`` (via EventBridge, reshaped to ``Records[].s3``) -> a batch execution.

For each prompt upload (``upload_events``) it starts one execution of the batch state machine
(``STATE_MACHINE_ARN``) with the input ``{"bucket", "key", "etag"}`` (``execution_input``). The
machine owns the rest: it runs the batch processor (``textnlp worker --queues batch --once``)
with ``S3_BUCKET``/``S3_KEY`` overrides taken from that input, waits for it
(``ecs:runTask.sync``), runs it again after a Spot interruption, and sends a failed run to the
batch dead-letter queue and the job-notifications topic
(``infra/textnlp_infra/constructs/batch_machine.py``). Skipped:

- files uploaded through the API's own upload route, which carry the object metadata
  ``textnlp-submit: manual`` (``textnlp.deployment``): their owner submits the job with their
  own parameters, so a batch run here would generate the file a second time;
- objects deleted before the trigger looked at them (HEAD answers 404; without
  ``s3:ListBucket``, which the function does not hold, S3 answers 403 instead, and the event
  goes the failure path below).

Failures: a ``start_execution`` or a HEAD that raises is logged, the other records are still
tried, and then the invocation raises ``BatchTriggerFailed``. Lambda retries the asynchronous
invocation (twice) and then sends the event to the function's dead-letter queue with the error
message. Retries are safe: the execution's name is derived from bucket, key and ETag, and
Step Functions starts one execution per name (a standard workflow answers a repeated name
with the same input with the running execution, and with ``ExecutionAlreadyExists`` once it
has finished; both mean this object version was started already, for the 90 days a name is
kept). A malformed event raises ``ValueError`` at once.

Tracing: the HEAD and the start are X-Ray subsegments of the function's segment
(``textnlp.lambdas.xray``), and the execution is started with the trace header of its call,
so the upload's trace runs on into the state machine and its task.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from textnlp.deployment import UPLOAD_METADATA_KEY, UPLOAD_METADATA_MANUAL
from textnlp.lambdas.upload_events import Upload, uploads_in
from textnlp.lambdas.xray import aws_subsegment

log = logging.getLogger(__name__)
log.setLevel(logging.INFO)

#: The function's configuration, one variable each; the infra builds the environment from this.
CONFIG_VARIABLES: dict[str, str] = {
    "STATE_MACHINE_ARN": "the batch state machine that runs the batch processor per upload",
}
#: The fields of an execution's input; the state machine's JSONPath (``$.bucket``...) reads
#: these names, and the infra builds its paths from this tuple.
EXECUTION_INPUT_FIELDS = ("bucket", "key", "etag")
#: Execution names are at most 80 characters; a SHA-256 in hex is 64.
EXECUTION_NAME_MAX = 80
_clients: dict[str, Any] = {}


class BatchTriggerFailed(RuntimeError):
    """Some uploads started no execution; the message lists them and why."""


@dataclass(frozen=True)
class TriggerConfig:
    state_machine_arn: str

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> TriggerConfig:
        missing = [name for name in CONFIG_VARIABLES if not environ.get(name, "").strip()]
        if missing:
            raise RuntimeError(f"batch trigger environment lacks {', '.join(missing)}")
        return cls(state_machine_arn=environ["STATE_MACHINE_ARN"].strip())


def _client(service: str) -> Any:
    """One boto3 client per service and container."""
    if service not in _clients:
        import boto3

        _clients[service] = boto3.client(service)
    return _clients[service]


def execution_name(upload: Upload) -> str:
    """The same object version always gets the same name, whatever the retry."""
    identity = "\n".join((upload.bucket, upload.key, upload.etag))
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()[:EXECUTION_NAME_MAX]


def execution_input(upload: Upload) -> dict[str, str]:
    values = {"bucket": upload.bucket, "key": upload.key, "etag": upload.etag}
    return {name: values[name] for name in EXECUTION_INPUT_FIELDS}


def start_execution_arguments(config: TriggerConfig, upload: Upload) -> dict[str, Any]:
    return {
        "stateMachineArn": config.state_machine_arn,
        "name": execution_name(upload),
        "input": json.dumps(execution_input(upload), sort_keys=True),
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
        with aws_subsegment("S3", operation="HeadObject", region=_region()):
            return dict(_client("s3").head_object(Bucket=upload.bucket, Key=upload.key))
    except Exception as exc:
        if _error_code(exc) in {"404", "NoSuchKey", "NotFound"}:
            return None
        raise


def _start(config: TriggerConfig, upload: Upload) -> str:
    """The execution ARN started (or already started) for ``upload``; raises on failure."""
    arguments = start_execution_arguments(config, upload)
    try:
        with aws_subsegment("SFN", operation="StartExecution", region=_region()) as trace:
            if trace is not None:  # the execution's trace continues this one
                arguments["traceHeader"] = trace
            answer = _client("stepfunctions").start_execution(**arguments)
    except Exception as exc:
        if _error_code(exc) == "ExecutionAlreadyExists":  # this object version ran already
            arn = _execution_arn(config.state_machine_arn, arguments["name"])
            log.info("s3://%s/%s was started before: %s", upload.bucket, upload.key, arn)
            return arn
        raise
    return str(answer["executionArn"])


def _region() -> str:
    return os.environ.get("AWS_REGION", "")


def _execution_arn(state_machine_arn: str, name: str) -> str:
    """``arn:aws:states:<region>:<account>:execution:<machine>:<name>``."""
    return f"{state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{name}"


def _process(config: TriggerConfig, upload: Upload) -> str | None:
    """The execution started for ``upload``, or None when it is skipped."""
    head = _head(upload)
    where = f"s3://{upload.bucket}/{upload.key}"
    if head is None:
        log.info("%s no longer exists: skipped", where)
        return None
    if submitted_manually(head.get("Metadata") or {}):
        log.info("%s was uploaded through the API, its owner submits it: skipped", where)
        return None
    if not upload.etag:  # the name needs the object's version; HEAD knows it
        upload = replace(upload, etag=str(head.get("ETag", "")).strip('"'))
    execution = _start(config, upload)
    log.info("%s -> %s", where, execution)
    return execution


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
            execution = _process(config, upload)
        except Exception as exc:  # every record is tried before the invocation fails
            log.error("s3://%s/%s started no execution: %s", upload.bucket, upload.key, exc)
            failed.append(f"{upload.key}: {exc}")
            continue
        if execution is None:
            skipped.append(upload.key)
        else:
            started.append(execution)
    if failed:
        summary = " | ".join(failed)
        raise BatchTriggerFailed(f"{len(failed)} of {len(uploads)} uploads failed: {summary}")
    return {"started": started, "skipped": skipped}
