"""The service role of Bedrock batch inference (provider batch jobs): assumed by Bedrock for this
account's invocation jobs only, reading and writing nothing but the jobs' provider files, and
passed to Bedrock (only) by the workers' task role; the workers' rights to look jobs up and to
run SageMaker batch transform, and the SageMaker models' access to the jobs' provider files."""

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


def test_workers_look_up_batch_jobs_and_run_sagemaker_batch_transform(assembly: Assembly) -> None:
    statements = _statements(assembly, "TaskRolesTaskPolicy")
    # A worker that died between creating a part's job and recording it finds it by name
    # (an action without resource-level permissions; CDK may merge it with other such ones).
    (listing,) = [s for s in statements if "bedrock:ListModelInvocationJobs" in s["Action"]]
    assert listing["Resource"] == "*"
    (transform,) = [s for s in statements if "sagemaker:CreateTransformJob" in s["Action"]]
    assert "transform-job/textnlp-*" in json.dumps(transform["Resource"])
    assert {"sagemaker:DescribeTransformJob", "sagemaker:StopTransformJob"} <= set(
        transform["Action"])
    (describe,) = [s for s in statements if "sagemaker:DescribeEndpointConfig" in s["Action"]]
    assert "endpoint-config/textnlp-multi-model" in json.dumps(describe["Resource"])


def test_sagemaker_models_read_and_write_only_the_jobs_provider_files(
    assembly: Assembly,
) -> None:
    policies = assembly.resources("ModelServing", "AWS::IAM::Policy")
    statements = [
        statement
        for policy in policies.values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    text = json.dumps(statements)
    provider = "arn:aws:s3:::textnlp-production/generated/batch-jobs/*/provider"
    assert f"{provider}/input/*" in text and f"{provider}/output/*" in text
    (put,) = [s for s in statements if "s3:PutObject" in json.dumps(s["Action"])]
    resources = put["Resource"] if isinstance(put["Resource"], list) else [put["Resource"]]
    assert resources == [f"{provider}/output/*"]
