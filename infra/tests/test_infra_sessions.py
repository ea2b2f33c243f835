"""The design's "DynamoDB (Session Store)": the table, and who is told of it and may use it.

The API's containers and the authorizer get the same two settings (the app's schema names
them), the API's task role may read and write the table, the authorizer may only read it.
"""

from __future__ import annotations

import re
from typing import Any

from textnlp.config import env_name
from textnlp.deployment import AUTHORIZER_HANDLER

from infra_assembly import Assembly
from test_infra_serverless import actions, functions, role_statements

TABLE = "textnlp-production-sessions"
TABLE_ARN = re.compile(rf"arn:aws:dynamodb:us-east-1:\d{{12}}:table/{TABLE}")
SESSION_ENVIRONMENT = {
    env_name("auth", "session_store"): "dynamodb",
    env_name("auth", "session_table"): TABLE,
}


def _table(assembly: Assembly) -> dict[str, Any]:
    (table,) = assembly.resources("Data", "AWS::DynamoDB::Table").values()
    return table


def _exports(assembly: Assembly, section: str) -> dict[str, Any]:
    return {
        output["Export"]["Name"]: output["Value"]
        for output in assembly.templates[section].get("Outputs", {}).values()
        if "Export" in output
    }


def _data_key_ref(assembly: Assembly) -> dict[str, Any]:
    (key_id,) = [
        name for name, key in assembly.resources("Security", "AWS::KMS::Key").items()
        if name.startswith("KeysDataKey")
    ]
    return {"Fn::GetAtt": [key_id, "Arn"]}


def _resolved(assembly: Assembly, value: Any) -> Any:
    """An `Fn::ImportValue` of the security stack's exports -> what it exports."""
    if isinstance(value, dict) and "Fn::ImportValue" in value:
        return _exports(assembly, "Security")[value["Fn::ImportValue"]]
    return value


def test_the_table(assembly: Assembly) -> None:
    table = _table(assembly)
    properties = table["Properties"]
    assert properties["TableName"] == TABLE
    assert properties["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert properties["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    # Expired families and revocations go by themselves: no purge job.
    assert properties["TimeToLiveSpecification"] == {
        "AttributeName": "expires_at", "Enabled": True,
    }
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    sse = properties["SSESpecification"]
    assert sse["SSEEnabled"] is True and sse["SSEType"] == "KMS"
    assert _resolved(assembly, sse["KMSMasterKeyId"]) == _data_key_ref(assembly)
    # Production keeps it, as the other data stores.
    assert properties["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain"


def test_the_api_containers_and_the_authorizer_are_pointed_at_it(assembly: Assembly) -> None:
    for task in assembly.resources("Compute", "AWS::ECS::TaskDefinition").values():
        for container in task["Properties"]["ContainerDefinitions"]:
            if container.get("Essential", True) is False:
                continue  # the trace collector sidecar
            variables = {v["Name"]: v["Value"] for v in container.get("Environment", [])}
            assert {k: variables.get(k) for k in SESSION_ENVIRONMENT} == SESSION_ENVIRONMENT
    authorizer = functions(assembly)[AUTHORIZER_HANDLER]["Environment"]["Variables"]
    assert {k: authorizer.get(k) for k in SESSION_ENVIRONMENT} == SESSION_ENVIRONMENT


def _table_statements(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in statements if any(a.startswith("dynamodb:") for a in actions(s))]


def test_the_api_task_role_reads_and_writes_the_table(assembly: Assembly) -> None:
    statements = [
        statement
        for name, policy in assembly.resources("Security", "AWS::IAM::Policy").items()
        if name.startswith("TaskRolesTaskPolicy")
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    (grant,) = _table_statements(statements)
    assert actions(grant) == {
        "dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"
    }
    assert TABLE_ARN.fullmatch(grant["Resource"])


def test_the_authorizer_only_reads_it(assembly: Assembly) -> None:
    statements = role_statements(assembly, functions(assembly)[AUTHORIZER_HANDLER])
    (grant,) = _table_statements(statements)
    assert actions(grant) == {"dynamodb:BatchGetItem"}
    assert TABLE_ARN.fullmatch(grant["Resource"])
    # The table is encrypted with the data key: decrypting through DynamoDB only.
    (decrypt,) = [
        s for s in statements
        if actions(s) == {"kms:Decrypt"} and "kms:ViaService" in str(s.get("Condition"))
    ]
    assert _resolved(assembly, decrypt["Resource"]) == _data_key_ref(assembly)
    assert decrypt["Condition"] == {
        "StringEquals": {"kms:ViaService": "dynamodb.us-east-1.amazonaws.com"}
    }
