"""The rehearsal's IAM evaluation (`rehearsal.iam_policy.permits`), which decides whether a
scheduled rule's role may start its ECS task: statements as CloudFormation resolves them."""

from __future__ import annotations

import pytest

from rehearsal.iam_policy import permits

FAMILY = "arn:aws:ecs:us-east-1:123456789012:task-definition/textnlp-jobs-purge"
CLUSTER = "arn:aws:ecs:us-east-1:123456789012:cluster/textnlp-production"
RUN = {"Effect": "Allow", "Action": "ecs:RunTask", "Resource": f"{FAMILY}:*",
       "Condition": {"ArnEquals": {"ecs:cluster": CLUSTER}}}


def test_an_allow_matches_its_action_resource_and_conditions() -> None:
    assert permits([RUN], "ecs:RunTask", f"{FAMILY}:3", {"ecs:cluster": CLUSTER})
    assert permits([RUN], "ECS:runtask", f"{FAMILY}:3", {"ecs:cluster": CLUSTER})


@pytest.mark.parametrize(("action", "resource", "context"), [
    ("ecs:StopTask", f"{FAMILY}:3", {"ecs:cluster": CLUSTER}),
    ("ecs:RunTask", f"{FAMILY}-other:3", {"ecs:cluster": CLUSTER}),
    ("ecs:RunTask", f"{FAMILY}:3", {"ecs:cluster": CLUSTER + "-other"}),
    ("ecs:RunTask", f"{FAMILY}:3", {}),  # a condition key the request lacks
])
def test_anything_else_is_denied(action: str, resource: str, context: dict[str, str]) -> None:
    assert not permits([RUN], action, resource, context)


def test_an_explicit_deny_wins() -> None:
    deny = {"Effect": "Deny", "Action": "ecs:*", "Resource": "*"}
    assert not permits([RUN, deny], "ecs:RunTask", f"{FAMILY}:3", {"ecs:cluster": CLUSTER})


def test_a_condition_it_cannot_evaluate_is_no_guess() -> None:
    odd = {**RUN, "Condition": {"DateLessThan": {"aws:CurrentTime": "2030-01-01"}}}
    with pytest.raises(ValueError, match="DateLessThan"):
        permits([odd], "ecs:RunTask", f"{FAMILY}:3", {})
