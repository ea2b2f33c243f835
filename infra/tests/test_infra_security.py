"""Design section 9: roles, secrets, keys, detective controls."""

from __future__ import annotations

import json

from textnlp import deployment

from infra_assembly import Assembly

SECRET_NAMES = {
    f"/textnlp/production/{name}" for name in (
        "database/master-password", "database/read-replica-password",
        "api/jwt-secret", "api/api-keys", "api/oauth-credentials",
        "models/openai-api-key", "models/anthropic-api-key", "models/huggingface-token",
        "external/smtp-credentials", "external/monitoring-api-keys", "cache/auth-token",
        "api/origin-verify", "api/viewer-verify",
    )
}


def _policy_statements(assembly: Assembly, policy_prefix: str) -> list[dict]:
    policies = assembly.resources("Security", "AWS::IAM::Policy")
    return [
        statement
        for name, policy in policies.items() if name.startswith(policy_prefix)
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_secrets_tree(assembly: Assembly) -> None:
    names = {
        s["Properties"]["Name"]
        for s in assembly.resources("Security", "AWS::SecretsManager::Secret").values()
    }
    assert names == SECRET_NAMES
    # Every secret the app reads by name exists where the app looks (textnlp.deployment).
    for name in (deployment.JWT_SECRET, deployment.OPENAI_API_KEY, deployment.ANTHROPIC_API_KEY,
                 deployment.HUGGINGFACE_TOKEN, deployment.ORIGIN_VERIFY_SECRET,
                 deployment.VIEWER_VERIFY_SECRET):
        assert deployment.secret_path("production", name) in names
    data_secrets = assembly.resources("Data", "AWS::SecretsManager::Secret").values()
    assert {s["Properties"]["Name"] for s in data_secrets} == {
        "/textnlp/production/database/connection-string"
    }


def test_application_role_is_least_privilege(assembly: Assembly) -> None:
    statements = _policy_statements(assembly, "TaskRolesTaskPolicy")
    by_action = {json.dumps(s["Action"]): s for s in statements}
    text = json.dumps(statements)
    assert "arn:aws:s3:::textnlp-production/*" in text
    assert "endpoint/textnlp-multi-model" in text
    for model in ("anthropic.claude-v2", "ai21.j2-ultra-v1", "amazon.titan-text-express-v1"):
        assert f"foundation-model/{model}" in text
    restore = next(s for s in statements if s["Action"] == "s3:RestoreObject")
    assert "generated/*" in json.dumps(restore["Resource"])  # archived results, nothing else
    # The environment's own queues, never a pattern another environment's queues match.
    sqs = next(s for s in statements if "sqs:ReceiveMessage" in s["Action"])
    assert sorted(sqs["Resource"]) == sorted(
        f"arn:aws:sqs:us-east-1:123456789012:textnlp-{queue}"
        for queue in ("generation-queue.fifo", "dlq.fifo", "batch-queue", "batch-dlq",
                      "validation-queue", "validation-dlq")
    )
    wildcard = [s for s in by_action.values() if s["Resource"] == "*"]
    # Metrics and traces, and the listing of Bedrock batch jobs by name: actions with no
    # resource-level permissions.
    assert all("Put" in json.dumps(s["Action"]) or s["Action"] == "bedrock:ListModelInvocationJobs"
               for s in wildcard)


def test_execution_role(assembly: Assembly) -> None:
    statements = _policy_statements(assembly, "TaskRolesTaskExecutionPolicy")
    actions = {
        action for s in statements
        for action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert {"ecr:GetAuthorizationToken", "ecr:BatchGetImage", "logs:PutLogEvents",
            "secretsmanager:GetSecretValue", "kms:Decrypt"} <= actions


def test_keys_rotate(assembly: Assembly) -> None:
    keys = assembly.resources("Security", "AWS::KMS::Key").values()
    assert len(keys) == 4
    assert all(k["Properties"]["EnableKeyRotation"] for k in keys)


def test_detective_controls(assembly: Assembly) -> None:
    template = assembly.template("Security")
    template.resource_count_is("AWS::GuardDuty::Detector", 1)
    template.resource_count_is("AWS::SecurityHub::Hub", 1)
    template.resource_count_is("AWS::Config::ConfigurationRecorder", 1)
    assert len(assembly.resources("Security", "AWS::Config::ConfigRule")) >= 3


def test_configs_delivery_channel_comes_after_its_recorder_and_bucket_policy(
    assembly: Assembly,
) -> None:
    # CloudFormation creates a resource as soon as what it references exists: the channel
    # references only the bucket, and failed before its recorder (NoAvailableConfigurationRecorder)
    # or the bucket's policy (InsufficientDeliveryPolicyException) was there.
    (channel,) = assembly.resources("Security", "AWS::Config::DeliveryChannel").values()
    (recorder,) = assembly.resources("Security", "AWS::Config::ConfigurationRecorder")
    policies = assembly.resources("Security", "AWS::S3::BucketPolicy")
    (bucket_policy,) = [
        name for name, policy in policies.items()
        if policy["Properties"]["Bucket"] == channel["Properties"]["S3BucketName"]
    ]
    assert {recorder, bucket_policy} <= set(channel["DependsOn"])


def test_config_delivers_with_its_recorders_role(assembly: Assembly) -> None:
    # In its own account, Config writes the bucket with the recorder's role, whose managed
    # policy (AWS_ConfigRole) grants no s3:PutObject.
    (recorder,) = assembly.resources("Security", "AWS::Config::ConfigurationRecorder").values()
    role = recorder["Properties"]["RoleARN"]["Fn::GetAtt"][0]
    statements = [
        statement
        for policy in assembly.resources("Security", "AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    puts = [s for s in statements if s["Action"] == "s3:PutObject"]
    assert len(puts) == 1 and "config/AWSLogs/" in json.dumps(puts[0]["Resource"])
