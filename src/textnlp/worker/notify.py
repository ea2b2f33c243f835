"""Job completion notices: a webhook given at submit (any profile), an SNS topic (aws).

A notice is best effort: failures are logged, never raised, so that a dead webhook cannot
fail a finished job.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import httpx

from textnlp.config import Settings
from textnlp.services.job_models import JobView

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, settings: Settings, *, sns_client: Any = None, attempts: int = 3) -> None:
        self.topic_arn = settings.queue.notify_topic_arn
        self.settings = settings
        self._sns = sns_client
        self.attempts = attempts

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
        for attempt in range(1, self.attempts + 1):
            try:
                answer = httpx.post(url, json=body, timeout=10.0)
                if answer.status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            if attempt < self.attempts:
                time.sleep(0.5 * 2 ** (attempt - 1))
        log.warning("webhook %s did not accept the notice of job %s", url, body["job"]["id"])
