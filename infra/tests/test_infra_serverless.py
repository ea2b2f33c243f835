"""Design section 7: the Lambdas, their environment and permissions, and the upload trigger."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match
from textnlp.config import env_name
from textnlp.deployment import AUTHORIZER_HANDLER, BATCH_TRIGGER_HANDLER, JWT_SECRET, secret_path
from textnlp.lambdas.batch_trigger import CONFIG_VARIABLES
from textnlp.lambdas.upload_events import KEY_ENCODING_FIELD, RAW_KEY

from infra_assembly import Assembly
from textnlp_infra.stacks.serverless import batch_trigger_environment


def functions(assembly: Assembly) -> dict[str, dict]:
    """Handler -> the function's properties."""
    resources = assembly.resources("Serverless", "AWS::Lambda::Function").values()
    return {f["Properties"]["Handler"]: f["Properties"] for f in resources}


def role_statements(assembly: Assembly, properties: dict) -> list[dict]:
    """The statements of the inline policies attached to the function's role."""
    role = properties["Role"]["Fn::GetAtt"][0]
    policies = assembly.resources("Serverless", "AWS::IAM::Policy").values()
    return [
        statement
        for policy in policies
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def actions(statement: dict) -> set[str]:
    found = statement["Action"]
    return {found} if isinstance(found, str) else set(found)


def test_lambdas_from_the_application_source(assembly: Assembly) -> None:
    handlers = functions(assembly)
    assert set(handlers) == {AUTHORIZER_HANDLER, BATCH_TRIGGER_HANDLER}
    for properties in handlers.values():
        assert properties["Runtime"] == "python3.12"
        assert len(properties["VpcConfig"]["SubnetIds"]) == 3
        assert properties["TracingConfig"] == {"Mode": "Active"}
    # One asset for both handlers.
    assert len({json.dumps(p["Code"]) for p in handlers.values()}) == 1


def test_authorizer_reads_the_apis_settings_and_secret(assembly: Assembly) -> None:
    properties = functions(assembly)[AUTHORIZER_HANDLER]
    assert properties["Environment"]["Variables"] == {
        env_name("environment"): "production",
        env_name("secrets", "backend"): "aws",
        env_name("auth", "issuer"): "textnlp",
        env_name("auth", "audience"): "textnlp-api",
        env_name("auth", "jwt_algorithm"): "HS256",
        # The session store (test_infra_sessions.py): revoked tokens are denied.
        env_name("auth", "session_store"): "dynamodb",
        env_name("auth", "session_table"): "textnlp-production-sessions",
    }
    # It may read the secret at the path it reads (the security stack's, exported by ARN).
    secrets = assembly.resources("Security", "AWS::SecretsManager::Secret").items()
    path = secret_path("production", JWT_SECRET)
    (secret_id,) = [n for n, s in secrets if s["Properties"]["Name"] == path]
    exports = {
        output["Export"]["Name"]: output["Value"]
        for output in assembly.templates["Security"]["Outputs"].values()
        if "Export" in output
    }
    (read,) = [s for s in role_statements(assembly, properties)
               if "secretsmanager:GetSecretValue" in actions(s)]
    assert read["Effect"] == "Allow"
    assert exports[read["Resource"]["Fn::ImportValue"]] == {"Ref": secret_id}


def test_batch_trigger_environment_is_what_its_handler_declares(assembly: Assembly) -> None:
    variables = functions(assembly)[BATCH_TRIGGER_HANDLER]["Environment"]["Variables"]
    assert list(variables) == list(CONFIG_VARIABLES) == ["STATE_MACHINE_ARN"]
    (machine,) = assembly.resources("Serverless", "AWS::StepFunctions::StateMachine")
    assert variables["STATE_MACHINE_ARN"] == {"Ref": machine}


def test_batch_trigger_environment_names_what_is_missing() -> None:
    with pytest.raises(ValueError, match="STATE_MACHINE_ARN"):
        batch_trigger_environment({})
    with pytest.raises(ValueError, match="EXTRA"):
        batch_trigger_environment({"STATE_MACHINE_ARN": "arn", "EXTRA": "y"})


def test_batch_trigger_may_head_uploads_and_start_the_batch_machine(assembly: Assembly) -> None:
    statements = role_statements(assembly, functions(assembly)[BATCH_TRIGGER_HANDLER])
    reads = [s for s in statements if "s3:GetObject" in actions(s)]
    assert reads == [{
        "Action": "s3:GetObject", "Effect": "Allow",
        "Resource": "arn:aws:s3:::textnlp-production/prompts/user-uploads/*",
    }]
    assert any("states:StartExecution" in actions(s) for s in statements)
    assert any("sqs:SendMessage" in actions(s) for s in statements)  # its dead-letter queue


def test_a_failed_batch_trigger_is_retried_then_dead_lettered(assembly: Assembly) -> None:
    template = assembly.template("Serverless")
    template.has_resource_properties("AWS::Lambda::Function", {
        "Handler": BATCH_TRIGGER_HANDLER,
        "DeadLetterConfig": {"TargetArn": Match.any_value()},
    })
    template.has_resource_properties("AWS::Lambda::EventInvokeConfig", {
        "MaximumRetryAttempts": 2, "Qualifier": "$LATEST",
    })


def test_upload_trigger(assembly: Assembly) -> None:
    template = assembly.template("Serverless")
    template.has_resource_properties("AWS::Events::Rule", {
        "EventPattern": Match.object_like({
            "source": ["aws.s3"],
            "detail": {"bucket": {"name": ["textnlp-production"]},
                       "object": {"key": [{"prefix": "prompts/user-uploads/"}]}},
        }),
    })
    bucket = next(
        b for b in assembly.resources("Data", "AWS::S3::Bucket").values()
        if b["Properties"]["BucketName"] == "textnlp-production"
    )
    assert bucket["Properties"]["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }


def test_upload_trigger_passes_the_objects_etag(assembly: Assembly) -> None:
    rules = assembly.resources("Serverless", "AWS::Events::Rule").values()
    uploads = next(r for r in rules if r["Properties"]["Name"].endswith("-user-uploads"))
    (target,) = uploads["Properties"]["Targets"]
    transformer = target["InputTransformer"]
    assert "$.detail.object.etag" in transformer["InputPathsMap"].values()
    assert '"eTag":<detail-object-etag>' in transformer["InputTemplate"]
    # The Lambda takes the key as it comes only when the record says so (S3's are encoded).
    assert f'"{KEY_ENCODING_FIELD}":"{RAW_KEY}"' in transformer["InputTemplate"]
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 3
    assert "DeadLetterConfig" in target
