"""An EventBridge rule's ECS target (`EcsParameters`), started as EventBridge starts it.

EventBridge assumes the target's `RoleArn` (its trust policy must let the rule do so) and, as
that role, calls `RunTask` with the target's task definition, count, launch type, platform,
network configuration and tag propagation, the target's input as the task's `overrides` (a
task definition named by family runs its latest revision, as in ECS). The
role's policies in the templates are evaluated for each permission that call needs:
`ecs:RunTask` on the task definition (condition key `ecs:cluster`), `iam:PassRole` of the task
and execution roles (`iam:PassedToService`: ECS tasks) and, when tags propagate,
`ecs:TagResource` on the new task (`ecs:CreateAction`). A refusal is `RunTaskRefused`, as
EventBridge's failed invocation; otherwise moto records the task and `rehearsal.ecs_tasks` runs
its containers.
"""

from __future__ import annotations

import re
from typing import Any

from rehearsal.aws import MotoAws
from rehearsal.deploy import Deployed, Deployment, camel_keys
from rehearsal.iam_policy import permits

EVENTS = "events.amazonaws.com"
ECS_TASKS = "ecs-tasks.amazonaws.com"


class RunTaskRefused(RuntimeError):
    """EventBridge could not start the target's task (its role, or ECS, refused)."""


def run_task(deployment: Deployment, aws: MotoAws, rule: Deployed, target: dict[str, Any],
             overrides: Any) -> list[str]:
    """Start the target's task as EventBridge would; the started tasks' ARNs."""
    parameters = target.get("EcsParameters", {})
    cluster = str(target.get("Arn", ""))
    definition = task_definition(deployment, str(parameters.get("TaskDefinitionArn", "")))
    if definition is None:
        raise RunTaskRefused(f"the target names task definition "
                             f"{parameters.get('TaskDefinitionArn')}, which no template registers")
    statements = _role_statements(deployment, rule, str(target.get("RoleArn", "")))
    _check(statements, "ecs:RunTask", str(definition.physical.ref), {"ecs:cluster": cluster})
    for key in ("TaskRoleArn", "ExecutionRoleArn"):
        role = definition.properties.get(key)
        if role:
            _check(statements, "iam:PassRole", str(role), {"iam:PassedToService": ECS_TASKS})
    propagate = parameters.get("PropagateTags")
    if propagate or parameters.get("TagList"):
        task = f"{cluster.replace(':cluster/', ':task/')}/{'0' * 32}"
        _check(statements, "ecs:TagResource", task, {"ecs:CreateAction": "RunTask"})
    kwargs: dict[str, Any] = {
        "cluster": cluster, "taskDefinition": str(definition.physical.ref),
        "count": int(parameters.get("TaskCount", 1)),
        # ECS's own mark on a task a rule started.
        "startedBy": f"events-rule/{rule.physical.ref}"[:36],
        "overrides": overrides if isinstance(overrides, dict) else {},
    }
    for key in ("LaunchType", "PlatformVersion", "NetworkConfiguration", "PropagateTags"):
        if key in parameters:
            kwargs[key[0].lower() + key[1:]] = camel_keys(parameters[key])
    if "networkConfiguration" in kwargs:  # the API spells it awsvpcConfiguration
        kwargs["networkConfiguration"] = {
            "awsvpcConfiguration": kwargs["networkConfiguration"]["awsVpcConfiguration"]}
    region = cluster.split(":")[3]
    answer = aws.client("ecs", region).run_task(**kwargs)
    if answer.get("failures"):
        raise RunTaskRefused(f"RunTask failed: {answer['failures']}")
    return [str(task["taskArn"]) for task in answer.get("tasks", [])]


def task_definition(deployment: Deployment, arn: str) -> Deployed | None:
    """The registered task definition `arn` names: a revision, or a family (its ARN without a
    revision), whose latest revision ECS runs (the rehearsal registers one per family)."""
    found = deployment.find("AWS::ECS::TaskDefinition", arn)
    if found is not None or not re.fullmatch(r"arn:aws:ecs:[^:]+:\d+:task-definition/[\w-]+", arn):
        return found
    family = arn.rsplit("/", 1)[-1]
    latest = [d for d in deployment.deployed("AWS::ECS::TaskDefinition")
              if d.physical.attributes.get("Family") == family]
    return latest[-1] if latest else None


def _role_statements(deployment: Deployment, rule: Deployed, role_arn: str
                     ) -> list[dict[str, Any]]:
    """The statements of the target's role, once EventBridge may assume it for `rule`."""
    role = deployment.find("AWS::IAM::Role", role_arn)
    if role is None:
        raise RunTaskRefused(f"the target's RoleArn {role_arn or '(none)'} is no role of the "
                             "templates: EventBridge cannot run an ECS task without one")
    trust = role.properties.get("AssumeRolePolicyDocument", {}).get("Statement", [])
    trusted = [s for s in _listed_statements(trust)
               if isinstance(s.get("Principal"), dict)
               and EVENTS in _listed(s["Principal"].get("Service"))]
    context = {"aws:SourceArn": str(rule.physical.attributes["Arn"]),
               "aws:SourceAccount": rule.stack.account}
    if not permits([{**s, "Resource": "*"} for s in trusted], "sts:AssumeRole", "*", context):
        raise RunTaskRefused(f"role {role.physical.ref} does not let EventBridge assume it for "
                             f"rule {rule.physical.ref}")
    if role.properties.get("ManagedPolicyArns"):
        raise RunTaskRefused(f"role {role.physical.ref} has managed policies, which the "
                             "rehearsal does not evaluate")
    statements = [s for policy in role.properties.get("Policies", [])
                  for s in _listed_statements(policy["PolicyDocument"].get("Statement"))]
    # The role's own stack attaches its policies (`Roles: [{"Ref": <role>}]`).
    for stack, _, resource in deployment.assembly.resources_of_type("AWS::IAM::Policy"):
        properties = resource.get("Properties", {})
        if stack.name != role.stack.name or {"Ref": role.logical_id} not in properties.get(
                "Roles", []):
            continue
        document = deployment.resolver(stack).resolve(properties.get("PolicyDocument", {}))
        statements += _listed_statements(document.get("Statement"))
    return statements


def _check(statements: list[dict[str, Any]], action: str, resource: str,
           context: dict[str, str]) -> None:
    if not permits(statements, action, resource, context):
        raise RunTaskRefused(f"the target's role may not {action} on {resource} ({context})")


def _listed(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _listed_statements(value: Any) -> list[dict[str, Any]]:
    """A policy's `Statement`: a list, or one statement."""
    if isinstance(value, dict):
        return [value]
    return [s for s in value or [] if isinstance(s, dict)]
