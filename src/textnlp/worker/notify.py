"""Job completion notices: a webhook given at submit (any profile), an SNS topic (aws).

A notice is best effort: failures are logged, never raised, so that a dead webhook cannot
fail a finished job.

A webhook goes through the egress policy (``textnlp.egress``) again at send time: the URL was
checked at submit, but its name may resolve elsewhere now (DNS rebinding). The request goes to
an address that was just checked (the host name only travels in ``Host`` and as the TLS server
name, so nothing resolves it a second time), ignores proxy variables (a proxy would resolve the
name itself), and never follows a redirect. Only the URL's origin is logged: a path or query may
carry the receiver's secret.

The webhook is the job owner's: its body is the job as the API's status answer gives it to the
owner, a presigned download URL included. The SNS topic is the deployment's, told of every
user's jobs: its notice links the API's results route instead.

An attempt has a deadline for the whole exchange (``TIMEOUT_S``): httpx's timeouts bound each
read, so a receiver that trickles its answer a byte at a time would otherwise hold the worker
for ever. The answer's body is never read, only its status: a receiver that streams an endless
body must not fill the worker's memory.

Each try carries the Standard Webhooks headers: ``webhook-id`` (the job's id: the same for
every try, a receiver deduplicates on it), ``webhook-timestamp`` (Unix seconds of this try)
and, where the job has a ``webhook_secret``, ``webhook-signature``: ``v1,`` and the base64
HMAC-SHA256, keyed by the secret's base64-decoded bytes after ``whsec_``, of
``{id}.{timestamp}.{body}`` (``sign``), as the Standard Webhooks libraries verify it. A
receiver that checks it, and refuses a timestamp minutes old, refuses forged and replayed
notices.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_exponential

from textnlp.config import Settings
from textnlp.deployment import JOB_RESULTS_PATH
from textnlp.egress import EgressPolicy, EgressTarget, Resolver
from textnlp.errors import InvalidInput
from textnlp.services.job_models import JobView, webhook_key

log = logging.getLogger(__name__)

#: Seconds for connecting, and for the whole exchange (a deadline), of one webhook attempt.
CONNECT_TIMEOUT_S = 5.0
TIMEOUT_S = 10.0
#: What an attempt answers for a job deleted since its notice was due: no status, no retry.
DELETED = 0


class Notifier:
    def __init__(
        self,
        settings: Settings,
        *,
        sns_client: Any = None,
        attempts: int = 3,
        resolver: Resolver | None = None,
    ) -> None:
        self.topic_arn = settings.queue.notify_topic_arn
        self.settings = settings
        self._sns = sns_client
        self.attempts = attempts
        self.egress = EgressPolicy(
            allow_private=settings.queue.webhook_allow_private, resolver=resolver
        )

    def _sns_client(self) -> Any:
        if self._sns is None:
            import boto3

            self._sns = boto3.client(
                "sns",
                region_name=self.settings.aws.region,
                endpoint_url=self.settings.aws.endpoint_url,
            )
        return self._sns

    def notify(
        self,
        job: JobView,
        webhook_url: str | None,
        *,
        secret: str | None = None,
        exists: Callable[[], bool] = lambda: True,
    ) -> None:
        """Tell the webhook and the topic that ``job`` ended. ``exists`` is asked before each
        attempt: a job deleted meanwhile (its owner, a purge) is not told about any more.
        ``secret`` (the job's ``webhook_secret``) signs the webhook's tries."""
        if job.result is not None and job.result.url is None:  # as the API's views link it
            job = _linking_route(job)
        body = {"event": f"job.{job.state}", "job": job.model_dump(mode="json")}
        if webhook_url:
            self._webhook(webhook_url, body, secret, exists)
        if self.topic_arn and exists():
            # Every user's jobs reach the topic and what it fans out to: its notice links the
            # results route (the owner's credentials), never a presigned URL, which hands the
            # records to whoever holds it.
            topic_job = _linking_route(job) if job.result is not None else job
            notice = {"event": body["event"], "job": topic_job.model_dump(mode="json")}
            try:
                self._sns_client().publish(
                    TopicArn=self.topic_arn,
                    Subject=f"TextNLP job {job.state}",
                    Message=json.dumps(notice),
                    MessageAttributes={"state": {"DataType": "String", "StringValue": job.state}},
                )
            except Exception:
                log.warning("SNS notice for job %s failed", job.id, exc_info=True)

    def _webhook(
        self, url: str, body: dict[str, Any], secret: str | None, exists: Callable[[], bool]
    ) -> None:
        job_id = body["job"]["id"]
        payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        try:
            target = self.egress.check(url)
        except InvalidInput as exc:
            log.warning("webhook of job %s refused: %s", job_id, exc.message)
            return
        # No answer or a 5xx: tried again after 0.5 s, 1 s, 2 s... up to ``attempts``.
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=0.5),
            retry=retry_if_result(lambda status: status is None or status >= 500),
            retry_error_callback=lambda state: None,
            sleep=lambda seconds: time.sleep(seconds),  # looked up at call time (tests)
        )

        def attempt() -> int | None:
            if not exists():
                return DELETED
            return _post(target, payload, _headers(job_id, payload, secret))

        status = retrying(attempt)
        if status == DELETED:
            log.info("job %s was deleted: its notice is not sent", job_id)
        elif status is None or status >= 500:
            log.warning("webhook %s did not accept the notice of job %s", target.origin, job_id)
        elif status >= 300:  # 3xx included: a redirect is not followed (it could point anywhere)
            log.warning(
                "webhook %s answered %d to the notice of job %s", target.origin, status, job_id
            )


def _linking_route(job: JobView) -> JobView:
    """``job`` with its result's ``url`` the API's results route."""
    assert job.result is not None
    url = JOB_RESULTS_PATH.format(job_id=job.id)
    return job.model_copy(update={"result": job.result.model_copy(update={"url": url})})


def sign(secret: str, message_id: str, timestamp: int, payload: bytes) -> str:
    """The ``webhook-signature`` of a notice: what a receiver computes again to check it."""
    signed = f"{message_id}.{timestamp}.".encode() + payload
    digest = hmac.new(webhook_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def _headers(job_id: str, payload: bytes, secret: str | None) -> dict[str, str]:
    """The headers of one try (its own timestamp, so a receiver can refuse an old one)."""
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "webhook-id": job_id,
        "webhook-timestamp": str(timestamp),
    }
    if secret:
        headers["webhook-signature"] = sign(secret, job_id, timestamp, payload)
    return headers


def _post(target: EgressTarget, payload: bytes, headers: dict[str, str]) -> int | None:
    """One attempt, within ``TIMEOUT_S`` in all: the status, or None (no answer in time).

    Called in a worker's thread (``Patience.run``), where no event loop runs: the attempt gets
    its own, for ``asyncio.timeout``, the deadline that a read timeout is not."""
    return asyncio.run(_post_within(target, payload, headers))


async def _post_within(target: EgressTarget, payload: bytes, headers: dict[str, str]) -> int | None:
    try:
        async with (
            asyncio.timeout(TIMEOUT_S),
            httpx.AsyncClient(
                timeout=httpx.Timeout(TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
                follow_redirects=False,
                trust_env=False,
            ) as client,
        ):
            return await _post_first(client, target, payload, headers)
    except TimeoutError:
        return None


async def _post_first(
    client: httpx.AsyncClient, target: EgressTarget, payload: bytes, headers: dict[str, str]
) -> int | None:
    """POST to the first checked address that connects; its status, or None (no answer)."""
    for address in target.addresses:
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        request = client.build_request(
            "POST",
            target.url_for(address),
            content=payload,
            headers={**headers, "Host": target.host_header},
            extensions=extensions,
        )
        try:
            # Streamed and closed unread: only the status counts.
            answer = await client.send(request, stream=True)
        except httpx.ConnectError:
            continue  # the next address of the name
        except httpx.HTTPError:
            return None
        await answer.aclose()
        return answer.status_code
    return None
