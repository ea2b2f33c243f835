"""AWS Secrets Manager through moto's server: the design's paths, the TTL cache, no values in
logs."""

from __future__ import annotations

import logging

import boto3
import pytest
from botocore.exceptions import ClientError

from textnlp.adapters.secrets import ANTHROPIC_API_KEY, OPENAI_API_KEY, AwsSecretsManager
from textnlp.errors import ConfigError, ServiceUnavailable


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_reads_design_paths_with_ttl_cache(aws_env: str, caplog: pytest.LogCaptureFixture) -> None:
    client = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=aws_env)
    client.create_secret(Name="/textnlp/staging/models/openai-api-key", SecretString="sk-live-1")
    client.create_secret(
        Name="/textnlp/staging/models/anthropic-api-key", SecretString='{"api_key": "sk-ant-1"}'
    )
    calls: list[str] = []
    client.meta.events.register(
        "before-call.secrets-manager.GetSecretValue", lambda **kw: calls.append("get")
    )
    clock = Clock()
    secrets = AwsSecretsManager("staging", ttl_s=60, client=client, clock=clock)
    caplog.set_level(logging.DEBUG, logger="textnlp")  # botocore at DEBUG logs bodies itself

    assert secrets.get(OPENAI_API_KEY).get_secret_value() == "sk-live-1"
    assert secrets.get(OPENAI_API_KEY).get_secret_value() == "sk-live-1"
    assert len(calls) == 1  # cached
    assert secrets.get(ANTHROPIC_API_KEY).get_secret_value() == "sk-ant-1"  # JSON unwrapped

    client.put_secret_value(
        SecretId="/textnlp/staging/models/openai-api-key", SecretString="sk-live-2"
    )
    assert secrets.get(OPENAI_API_KEY).get_secret_value() == "sk-live-1"
    clock.now = 61
    assert secrets.get(OPENAI_API_KEY).get_secret_value() == "sk-live-2"  # rotated after the TTL

    with pytest.raises(ConfigError, match="/textnlp/staging/models/huggingface-token"):
        secrets.get("models/huggingface-token")
    assert "sk-live" not in caplog.text and "sk-ant" not in caplog.text
    assert "sk-" not in repr(secrets)


def test_client_built_from_endpoint(aws_env: str) -> None:
    boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=aws_env).create_secret(
        Name="/textnlp/dev/api/jwt-secret", SecretString="j" * 40
    )
    secrets = AwsSecretsManager("dev", region="us-east-1", endpoint_url=aws_env)
    assert secrets.get("api/jwt-secret").get_secret_value() == "j" * 40


def test_an_outage_is_the_services_and_a_refusal_the_deployments(aws_env: str) -> None:
    """Throttled, failing or unreachable: ``ServiceUnavailable`` (503, a worker waits it out);
    denied: ``ConfigError`` (the deployment's fault); a binary secret: one line, no traceback."""
    client = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=aws_env)
    client.create_secret(Name="/textnlp/dev/models/raw", SecretBinary=b"\xff\xfe")
    answers = {"code": "", "status": 0}

    def answer(**_: object) -> None:
        if answers["code"]:
            raise ClientError(
                {
                    "Error": {"Code": answers["code"], "Message": "no"},
                    "ResponseMetadata": {"HTTPStatusCode": answers["status"]},
                },
                "GetSecretValue",
            )

    client.meta.events.register("before-call.secrets-manager.GetSecretValue", answer)
    secrets = AwsSecretsManager("dev", ttl_s=0, client=client)
    for code, status in (("ThrottlingException", 400), ("InternalServiceError", 500)):
        answers.update(code=code, status=status)
        with pytest.raises(ServiceUnavailable) as raised:
            secrets.find("models/openai-api-key")
        assert raised.value.details["dependency"] == "secrets"
    answers.update(code="AccessDeniedException", status=400)
    with pytest.raises(ConfigError, match="AccessDeniedException"):
        secrets.find("models/openai-api-key")
    answers.update(code="", status=0)
    with pytest.raises(ConfigError, match="not UTF-8"):
        secrets.find("models/raw")

    nowhere = AwsSecretsManager("dev", region="us-east-1", endpoint_url="http://127.0.0.1:9")
    with pytest.raises(ServiceUnavailable):
        nowhere.find("models/openai-api-key")
