"""The service role of Bedrock batch inference (provider batch jobs): assumed by Bedrock for this
account's invocation jobs only, reading and writing nothing but the jobs' provider files, and
passed to Bedrock (only) by the workers' task role."""

from __future__ import annotations

import json

from infra_assembly import Assembly


def _statements(assembly: Assembly, prefix: str) -> list[dict]:
    policies = assembly.resources("Security", "AWS::IAM::Policy")
    return [
        statement
        for name, policy in policies.items() if name.startswith(prefix)
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_bedrock_batch_role_is_least_privilege(assembly: Assembly) -> None:
    roles = assembly.resources("Security", "AWS::IAM::Role")
    (role,) = [r for r in roles.values()
               if r["Properties"].get("RoleName") == "textnlp-production-bedrock-batch"]
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "bedrock.amazonaws.com"}
    assert "aws:SourceAccount" in trust["Condition"]["StringEquals"]
    assert "model-invocation-job/*" in json.dumps(trust["Condition"]["ArnLike"])
    statements = _statements(assembly, "TaskRolesBedrockBatchPolicy")
    by_action = {json.dumps(s["Action"]): s for s in statements}
    provider = "arn:aws:s3:::textnlp-production/generated/batch-jobs/*/provider"
    assert by_action['"s3:GetObject"']["Resource"] == f"{provider}/input/*"
    assert by_action['"s3:PutObject"']["Resource"] == f"{provider}/output/*"
    assert all(s["Resource"] != "*" for s in statements)


def test_workers_create_batch_jobs_and_pass_only_that_role(assembly: Assembly) -> None:
    text = json.dumps(_statements(assembly, "TaskRolesTaskPolicy"))
    for action in ("CreateModelInvocationJob", "GetModelInvocationJob",
                   "StopModelInvocationJob"):
        assert f"bedrock:{action}" in text
    (passing,) = [s for s in _statements(assembly, "TaskRolesTaskPolicy")
                  if s["Action"] == "iam:PassRole"]
    assert passing["Condition"] == {
        "StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}
    }
