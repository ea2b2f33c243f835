"""The SNS notice of a job's end (``queue.notify_topic_arn``): every user's jobs reach the
deployment's topic and whatever it fans out to, so a notice carries no bearer credential to the
job's records (a presigned S3 URL) but the API's results route, which asks for the owner's own
credentials. Real parts: moto's server for S3, SNS and SQS (the topic's subscriber), SQLite."""

from __future__ import annotations

import json
from pathlib import Path

import boto3

from tests.support.job_backends import MODELS_YAML, register
from tests.support.platform import job_service, run_worker
from textnlp.adapters.db.schema import upgrade_database
from textnlp.config import load_settings
from textnlp.deployment import JOB_RESULTS_PATH
from textnlp.services.job_models import JobSpec, Owner

ALICE = Owner(id="alice")
BUCKET = "textnlp-notice-results"


def test_the_topics_notice_links_the_results_route_not_a_presigned_url(
    tmp_path: Path, aws_env: str
) -> None:
    register()
    models = tmp_path / "models.yaml"
    models.write_text(MODELS_YAML)
    aws = {"region_name": "us-east-1", "endpoint_url": aws_env}
    boto3.client("s3", **aws).create_bucket(Bucket=BUCKET)
    sns, sqs = boto3.client("sns", **aws), boto3.client("sqs", **aws)
    topic = sns.create_topic(Name="job-notices")["TopicArn"]
    inbox = sqs.create_queue(QueueName="job-notice-subscriber")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=inbox_arn["Attributes"]["QueueArn"],
        Attributes={"RawMessageDelivery": "true"},
    )
    settings = load_settings(
        home=tmp_path / "home",
        models_file=models,
        storage={"backend": "s3", "bucket": BUCKET},
        aws={"region": "us-east-1", "endpoint_url": aws_env},
        queue={"notify_topic_arn": topic},
    )
    upgrade_database(settings.database_url)
    with job_service(settings) as jobs:
        view = jobs.submit(ALICE, JobSpec(prompts=["hi"], model="fake-fast"))
    run_worker(settings)
    with job_service(settings) as jobs:
        owners = jobs.status(ALICE, view.id)
    assert owners.state == "succeeded" and owners.result is not None
    # The owner's own status answer still hands out the download link.
    assert "X-Amz-Signature" in (owners.result.url or "")
    received = sqs.receive_message(QueueUrl=inbox, WaitTimeSeconds=5)["Messages"]
    notice = json.loads(received[0]["Body"])
    assert notice["event"] == "job.succeeded" and notice["job"]["id"] == view.id
    url = notice["job"]["result"]["url"]
    assert url == JOB_RESULTS_PATH.format(job_id=view.id)
    assert "X-Amz" not in received[0]["Body"]
