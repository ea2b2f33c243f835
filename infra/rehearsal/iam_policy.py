"""Evaluating an authorizer's policy document against a method ARN, as API Gateway does:
an explicit Deny wins, then any Allow; no matching statement is a deny. `*` and `?` are IAM's
wildcards in actions and resources."""

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
