"""Job completion notices: a webhook given at submit (any profile), an SNS topic (aws).

A notice is best effort: failures are logged, never raised, so that a dead webhook cannot
fail a finished job.

A webhook goes through the egress policy (``textnlp.egress``) again at send time: the URL was
checked at submit, but its name may resolve elsewhere now (DNS rebinding). The request goes to
an address that was just checked (the host name only travels in ``Host`` and as the TLS server
name, so nothing resolves it a second time), ignores proxy variables (a proxy would resolve the
name itself), and never follows a redirect. Only the URL's origin is logged: a path or query may
carry the receiver's secret.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import httpx
from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_exponential

from textnlp.config import Settings
from textnlp.deployment import JOB_RESULTS_PATH
from textnlp.egress import EgressPolicy, EgressTarget, Resolver
from textnlp.errors import InvalidInput
from textnlp.services.job_models import JobView

log = logging.getLogger(__name__)

#: Seconds for connecting, and for the whole exchange, of one webhook attempt.
CONNECT_TIMEOUT_S = 5.0
TIMEOUT_S = 10.0


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

    def notify(self, job: JobView, webhook_url: str | None) -> None:
        if job.result is not None and job.result.url is None:  # as the API's views link it
            url = JOB_RESULTS_PATH.format(job_id=job.id)
            job = job.model_copy(update={"result": job.result.model_copy(update={"url": url})})
        body = {"event": f"job.{job.state}", "job": job.model_dump(mode="json")}
        if webhook_url:
            self._webhook(webhook_url, body)
        if self.topic_arn:
            try:
                self._sns_client().publish(
                    TopicArn=self.topic_arn,
                    Subject=f"TextNLP job {job.state}",
                    Message=json.dumps(body),
                    MessageAttributes={"state": {"DataType": "String", "StringValue": job.state}},
                )
            except Exception:
                log.warning("SNS notice for job %s failed", job.id, exc_info=True)

    def _webhook(self, url: str, body: dict[str, Any]) -> None:
        job_id = body["job"]["id"]
        try:
            target = self.egress.check(url)
        except InvalidInput as exc:
            log.warning("webhook of job %s refused: %s", job_id, exc.message)
            return
        with httpx.Client(
            timeout=httpx.Timeout(TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
            follow_redirects=False,
            trust_env=False,
        ) as client:
            # No answer or a 5xx: tried again after 0.5 s, 1 s, 2 s... up to ``attempts``.
            retrying = Retrying(
                stop=stop_after_attempt(self.attempts),
                wait=wait_exponential(multiplier=0.5),
                retry=retry_if_result(lambda status: status is None or status >= 500),
                retry_error_callback=lambda state: None,
                sleep=lambda seconds: time.sleep(seconds),  # looked up at call time (tests)
            )
            status = retrying(_post, client, target, body)
        if status is None or status >= 500:
            log.warning("webhook %s did not accept the notice of job %s", target.origin, job_id)
        elif status >= 300:  # 3xx included: a redirect is not followed (it could point anywhere)
            log.warning(
                "webhook %s answered %d to the notice of job %s", target.origin, status, job_id
            )


def _post(client: httpx.Client, target: EgressTarget, body: dict[str, Any]) -> int | None:
    """POST to the first checked address that connects; its status, or None (no answer)."""
    for address in target.addresses:
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        try:
            answer = client.post(
                target.url_for(address),
                json=body,
                headers={"Host": target.host_header},
                extensions=extensions,
            )
        except httpx.ConnectError:
            continue  # the next address of the name
        except httpx.HTTPError:
            return None
        return answer.status_code
    return None
