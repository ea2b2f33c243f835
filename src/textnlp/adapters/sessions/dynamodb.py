"""The session store in one DynamoDB table (the ``aws`` profile), which the Lambda authorizer
reads too. The item layout and the liveness rule are ``textnlp.auth.session_items``'; users
stay in the database (``users`` looks one up by id), only families and revocations live here.

Every write is a single conditional request, so the store needs no transaction: a rotation
succeeds only while the family's ``current_jti`` is the token presented and the family is not
revoked, which makes two concurrent refreshes with the same token resolve to one winner. Items
expire by the table's TTL (``expires_at``); ``purge_expired`` has nothing to do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textnlp.adapters.aws_outage import aws_unavailable
from textnlp.auth import session_items as items

if TYPE_CHECKING:
    from textnlp.adapters.db.users import User

UserLookup = Callable[[str], "User | None"]
_SERVICE = "the DynamoDB session store"


def _conditional_check_failed(exc: Exception) -> bool:
    response = getattr(exc, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return code == "ConditionalCheckFailedException"


class DynamoDbSessionStore:
    def __init__(self, client: Any, table: str, users: UserLookup) -> None:
        self.client = client
        self.table = table
        self._users = users

    def start_family(self, family: str, user_id: str, refresh_jti: str, expires_at: float) -> None:
        item = {
            **items.family_key(family),
            "user_id": {"S": user_id},
            "current_jti": {"S": refresh_jti},
            "revoked": {"BOOL": False},
            items.TTL_ATTRIBUTE: items.epoch(expires_at),
        }
        with aws_unavailable("sessions", _SERVICE):
            self.client.put_item(TableName=self.table, Item=item)

    def rotate(self, family: str, used_jti: str, new_jti: str, expires_at: float) -> bool:
        try:
            with aws_unavailable("sessions", _SERVICE):
                self.client.update_item(
                    TableName=self.table,
                    Key=items.family_key(family),
                    UpdateExpression=(
                        "SET current_jti = :new, #expires = :expires, "
                        "previous_jti = :used, rotated_at = :now"
                    ),
                    ConditionExpression="current_jti = :used AND revoked = :false",
                    ExpressionAttributeNames={"#expires": items.TTL_ATTRIBUTE},
                    ExpressionAttributeValues={
                        ":new": {"S": new_jti},
                        ":used": {"S": used_jti},
                        ":false": {"BOOL": False},
                        ":expires": items.epoch(expires_at),
                        ":now": {"N": repr(time.time())},
                    },
                )
        except Exception as exc:
            if _conditional_check_failed(exc):
                return False  # stale token, revoked or unknown family
            raise
        return True

    def rotated_from(self, family: str, jti: str, since: float) -> bool:
        with aws_unavailable("sessions", _SERVICE):
            answer = self.client.get_item(
                TableName=self.table, Key=items.family_key(family), ConsistentRead=True
            )
        return items.rotated_from(answer.get("Item"), jti, since)

    def revoke_family(self, family: str) -> None:
        try:
            with aws_unavailable("sessions", _SERVICE):
                # attribute_exists: an update of a missing key would create an item without
                # an expiry, which the TTL would never remove.
                self.client.update_item(
                    TableName=self.table,
                    Key=items.family_key(family),
                    UpdateExpression="SET revoked = :true",
                    ConditionExpression=f"attribute_exists({items.PARTITION_KEY})",
                    ExpressionAttributeValues={":true": {"BOOL": True}},
                )
        except Exception as exc:
            if not _conditional_check_failed(exc):
                raise

    def revoke_jti(self, jti: str, expires_at: float) -> None:
        item = {
            **items.jti_key(jti),
            "revoked": {"BOOL": True},
            items.TTL_ATTRIBUTE: items.epoch(expires_at),
        }
        with aws_unavailable("sessions", _SERVICE):
            self.client.put_item(TableName=self.table, Item=item)

    def access_holder(self, user_id: str, family: str, jti: str) -> User | None:
        with aws_unavailable("sessions", _SERVICE):
            family_item, jti_item = items.fetch_session(self.client, self.table, family, jti)
        if not items.access_is_live(family_item, jti_item, user_id):
            return None
        return self._users(user_id)

    def session_holder(self, user_id: str, family: str, refresh_jti: str) -> User | None:
        with aws_unavailable("sessions", _SERVICE):
            answer = self.client.get_item(
                TableName=self.table, Key=items.family_key(family), ConsistentRead=True
            )
        family_item = answer.get("Item")
        if not items.session_is_live(family_item, user_id, refresh_jti):
            return None
        return self._users(user_id)

    def purge_expired(self, now: float | None = None) -> None:
        """Nothing to do: the table's TTL deletes expired items."""
