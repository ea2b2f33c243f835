"""The DynamoDB session table's items and the one rule that reads them, shared by the app's
``DynamoDbSessionStore`` and the Lambda authorizer.

Standard library only (the authorizer's asset carries no pydantic, no SQLAlchemy, no boto3:
callers pass a boto3 DynamoDB client). One table, partition key ``pk`` (a string):

- ``family#<id>``: a login (a refresh-token family): ``user_id``, ``current_jti`` (the refresh
  token that may be used next), ``revoked`` (a boolean), and once rotated ``previous_jti`` and
  ``rotated_at`` (epoch seconds): the token the last rotation replaced, and when;
- ``jti#<id>``: an access token revoked by logout: ``revoked`` = true.

Both carry ``expires_at`` (epoch seconds, a number), the table's TTL attribute: DynamoDB deletes
an item some time after it passes (typically within days), so nothing needs purging, and
readers compare ``expires_at`` with the clock themselves rather than trust deletion to be
prompt. Items use DynamoDB's typed JSON (``{"S": ...}``, ``{"N": ...}``, ``{"BOOL": ...}``).
"""

from __future__ import annotations

import time
from typing import Any

from textnlp.errors import ServiceUnavailable

PARTITION_KEY = "pk"
TTL_ATTRIBUTE = "expires_at"
#: Attempts at the keys a BatchGetItem leaves unprocessed (throttling) before giving up.
BATCH_ATTEMPTS = 3

Item = dict[str, Any]


def family_key(family: str) -> Item:
    return {PARTITION_KEY: {"S": f"family#{family}"}}


def jti_key(jti: str) -> Item:
    return {PARTITION_KEY: {"S": f"jti#{jti}"}}


def epoch(value: float) -> dict[str, str]:
    """A TTL value: whole seconds, as DynamoDB's TTL reads them."""
    return {"N": str(int(value))}


def fetch_session(
    client: Any, table: str, family: str, jti: str
) -> tuple[Item | None, Item | None]:
    """The family's and the access token's items (None where there is none), in one strongly
    consistent BatchGetItem, so a logout is seen by the very next read.

    ``ServiceUnavailable`` when DynamoDB leaves keys unprocessed ``BATCH_ATTEMPTS`` times;
    botocore's own errors pass through (the callers decide what an outage means)."""
    keys = [family_key(family), jti_key(jti)]
    found: dict[str, Item] = {}
    for _ in range(BATCH_ATTEMPTS):
        answer = client.batch_get_item(RequestItems={table: {"Keys": keys, "ConsistentRead": True}})
        for item in answer.get("Responses", {}).get(table, []):
            found[item[PARTITION_KEY]["S"]] = item
        keys = answer.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
        if not keys:
            return (
                found.get(family_key(family)[PARTITION_KEY]["S"]),
                found.get(jti_key(jti)[PARTITION_KEY]["S"]),
            )
    raise ServiceUnavailable("DynamoDB left the session lookup unprocessed", dependency="sessions")


def _live(item: Item, now: float) -> bool:
    expires = item.get(TTL_ATTRIBUTE, {}).get("N")
    return expires is None or float(expires) > now


def access_is_live(
    family_item: Item | None, jti_item: Item | None, user_id: str, now: float | None = None
) -> bool:
    """Whether an access token of ``user_id`` in that family may still be used: its family
    exists, belongs to the user, is neither revoked nor expired, and the token was not revoked
    (``access_holder`` of the SQL store, the same rule)."""
    now = time.time() if now is None else now
    if family_item is None or not _live(family_item, now):
        return False
    if _revoked(family_item):
        return False
    if family_item.get("user_id", {}).get("S") != user_id:
        return False
    # A revoked token's item outlives the token (same expiry), so its mere presence decides.
    return jti_item is None or not _revoked(jti_item)


def session_is_live(
    family_item: Item | None, user_id: str, refresh_jti: str, now: float | None = None
) -> bool:
    """Whether the family is live and the user's and ``refresh_jti`` is its current refresh
    token (``session_holder`` of the SQL store, the same rule)."""
    return (
        access_is_live(family_item, None, user_id, now)
        and family_item is not None
        and family_item.get("current_jti", {}).get("S") == refresh_jti
    )


def rotated_from(
    family_item: Item | None, jti: str, since: float, now: float | None = None
) -> bool:
    """Whether the family is live and its last rotation replaced ``jti`` at ``since`` or later
    (``rotated_from`` of the SQL store, the same rule)."""
    now = time.time() if now is None else now
    if family_item is None or not _live(family_item, now) or _revoked(family_item):
        return False
    rotated_at = family_item.get("rotated_at", {}).get("N")
    return (
        family_item.get("previous_jti", {}).get("S") == jti
        and rotated_at is not None
        and float(rotated_at) >= since
    )


def _revoked(item: Item) -> bool:
    return bool(item.get("revoked", {}).get("BOOL", False))
