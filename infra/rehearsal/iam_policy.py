"""Evaluating IAM policy statements as AWS does: an explicit Deny wins, then any Allow; no
matching statement is a deny. `*` and `?` are IAM's wildcards in actions and resources.

`allows`: an authorizer's policy against a method ARN, as API Gateway does. `permits`: a role's
statements for one action on one resource, with the request's condition keys; a condition
operator not evaluated here (`_OPERATORS`) raises `ValueError` rather than guess."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

INVOKE = "execute-api:Invoke"


@cache
def _pattern(text: str) -> re.Pattern[str]:
    parts = (".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in text)
    return re.compile("".join(parts), re.DOTALL)


def matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    if ignore_case:
        return _pattern(pattern.lower()).fullmatch(value.lower()) is not None
    return _pattern(pattern).fullmatch(value) is not None


def _listed(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def allows(policy: dict[str, Any], method_arn: str) -> bool:
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    allowed = False
    for statement in statements:
        actions = _listed(statement.get("Action", []))
        resources = _listed(statement.get("Resource", []))
        if not any(matches(a, INVOKE, ignore_case=True) for a in actions):
            continue
        if not any(matches(r, method_arn) for r in resources):
            continue
        if str(statement.get("Effect")) == "Deny":
            return False
        if str(statement.get("Effect")) == "Allow":
            allowed = True
    return allowed


def _string_equals(wanted: str, value: str) -> bool:
    return wanted == value


def _string_like(wanted: str, value: str) -> bool:
    return matches(wanted, value)


#: Condition operators and how one of their values matches the request's value (ARNs compare
#: as strings: IAM's Arn* operators match component-wise, which equals that for whole ARNs).
_OPERATORS = {
    "StringEquals": _string_equals, "ArnEquals": _string_equals,
    "StringLike": _string_like, "ArnLike": _string_like,
}


def _conditions_hold(conditions: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, keys in conditions.items():
        test = _OPERATORS.get(operator)
        if test is None:
            raise ValueError(f"the rehearsal does not evaluate IAM's {operator} conditions")
        for key, wanted in keys.items():
            value = context.get(key)
            if value is None or not any(test(w, value) for w in _listed(wanted)):
                return False
    return True


def permits(statements: list[dict[str, Any]], action: str, resource: str,
            context: dict[str, str] | None = None) -> bool:
    """Whether identity-policy `statements` allow `action` on `resource` with the request's
    condition keys `context`."""
    allowed = False
    for statement in statements:
        if not any(matches(a, action, ignore_case=True)
                   for a in _listed(statement.get("Action", []))):
            continue
        if not any(matches(r, resource) for r in _listed(statement.get("Resource", []))):
            continue
        if not _conditions_hold(statement.get("Condition", {}), context or {}):
            continue
        if str(statement.get("Effect")) == "Deny":
            return False
        allowed = allowed or str(statement.get("Effect")) == "Allow"
    return allowed
