"""Session stores for tests: a DynamoDB table in moto's server laid out as the deployment's
(``infra/textnlp_infra/constructs/session_table.py``), and the database's store on a migrated
SQLite file or a PostgreSQL schema of its own."""

from __future__ import annotations

import uuid
from typing import Any

import boto3

from textnlp.auth.session_items import PARTITION_KEY, TTL_ATTRIBUTE


def dynamodb(endpoint: str) -> Any:
    return boto3.client("dynamodb", region_name="us-east-1", endpoint_url=endpoint)


def create_session_table(client: Any, name: str | None = None) -> str:
    """A session table of the test's own (moto's server lives for the whole session)."""
    table = name or f"sessions-{uuid.uuid4().hex[:10]}"
    client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": PARTITION_KEY, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.update_time_to_live(
        TableName=table,
        TimeToLiveSpecification={"AttributeName": TTL_ATTRIBUTE, "Enabled": True},
    )
    return table


def items(client: Any, table: str) -> list[dict[str, Any]]:
    return list(client.scan(TableName=table, ConsistentRead=True)["Items"])
