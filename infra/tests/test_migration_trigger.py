"""A deployment migrates before its services: the trigger in the Compute template, and its
handler against moto's ECS.

moto keeps the task RUNNING until it is stopped (as ECS does, by its state-manager API); the
handler's `sleep` is where ECS's time passes, so the tests stop the task there, with the
migration container's exit code, as the task's end would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.ecs.models import ecs_backends
from moto.moto_api import state_manager
from textnlp.lambdas import migration_trigger
from textnlp.lambdas.migration_trigger import MigrationConfig, MigrationFailed, run_migration

from infra_assembly import Assembly

REGION = "us-east-1"
ACCOUNT = "123456789012"


# -- the template ------------------------------------------------------------------------------
def _trigger(assembly: Assembly) -> tuple[str, dict[str, Any]]:
    triggers = assembly.resources("Compute", "Custom::Trigger")
    assert len(triggers) == 1, triggers
    return next(iter(triggers.items()))


def test_every_service_waits_for_the_migration_trigger(assembly: Assembly) -> None:
    logical_id, _ = _trigger(assembly)
    services = assembly.resources("Compute", "AWS::ECS::Service")
    assert len(services) == 3
    for name, service in services.items():
        assert logical_id in service.get("DependsOn", []), name


def test_the_trigger_runs_the_current_migration_task_definition(assembly: Assembly) -> None:
    logical_id, trigger = _trigger(assembly)
    resources = assembly.templates["Compute"]["Resources"]
    (migrate,) = [k for k, r in assembly.resources("Compute", "AWS::ECS::TaskDefinition").items()
                  if r["Properties"]["Family"] == "textnlp-migrate"]
    (cluster,) = assembly.resources("Compute", "AWS::ECS::Cluster")
    assert {migrate, cluster} <= set(trigger["DependsOn"])
    properties = trigger["Properties"]
    # A new revision (a new image) changes the trigger's properties: it runs again.
    assert properties["TaskDefinitionArn"] == {"Ref": migrate}
    assert properties["InvocationType"] == "RequestResponse"
    version = resources[properties["HandlerArn"]["Ref"]]
    function = resources[version["Properties"]["FunctionName"]["Ref"]]["Properties"]
    assert function["Handler"] == "textnlp.lambdas.migration_trigger.handler"
    # The invocation outlasts the function, which keeps a margin for its own answer.
    assert int(properties["Timeout"]) > function["Timeout"] * 1000
    variables = function["Environment"]["Variables"]
    assert variables["TASK_DEFINITION_ARN"] == {"Ref": migrate}
    assert variables["CLUSTER"] == {"Ref": cluster}
    assert variables["CONTAINER_NAME"] == "migrate"
    assert "VpcConfig" in function


def test_the_trigger_function_may_run_only_the_migration_task(assembly: Assembly) -> None:
    _, trigger = _trigger(assembly)
    resources = assembly.templates["Compute"]["Resources"]
    version = resources[trigger["Properties"]["HandlerArn"]["Ref"]]
    function = resources[version["Properties"]["FunctionName"]["Ref"]]["Properties"]
    role = function["Role"]["Fn::GetAtt"][0]
    (policy,) = [r for r in assembly.resources("Compute", "AWS::IAM::Policy").values()
                 if {"Ref": role} in r["Properties"]["Roles"]]
    statements = {
        (s["Action"] if isinstance(s["Action"], str) else tuple(s["Action"])): s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    }
    run = statements["ecs:RunTask"]
    assert run["Resource"].endswith(":task-definition/textnlp-migrate:*")
    assert "ecs:cluster" in run["Condition"]["ArnEquals"]
    assert statements["ecs:DescribeTasks"]["Resource"].endswith(":task/textnlp-production/*")
    passed = statements["iam:PassRole"]
    assert len(passed["Resource"]) == 2
    assert passed["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    for statement in statements.values():
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            assert "*" not in action and (statement["Resource"] != "*"
                                          or action.startswith("xray:")), statement


# -- the handler against moto's ECS ------------------------------------------------------------
@pytest.fixture
def ecs() -> Iterator[tuple[Any, MigrationConfig]]:
    # moto advances a task one status per DescribeTasks by default; ECS keeps it running
    # until it ends.
    state_manager.set_transition(
        model_name="ecs::task", transition={"progression": "manual", "times": 1_000_000_000})
    try:
        with mock_aws():
            ec2 = boto3.client("ec2", region_name=REGION)
            vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
            ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # as ours
            subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
            group = ec2.create_security_group(
                GroupName="app", Description="app", VpcId=vpc)["GroupId"]
            client = boto3.client("ecs", region_name=REGION)
            client.create_cluster(clusterName="textnlp-production")
            definition = client.register_task_definition(
                family="textnlp-migrate", networkMode="awsvpc",
                requiresCompatibilities=["FARGATE"], cpu="512", memory="1024",
                containerDefinitions=[
                    {"name": "migrate", "image": "textnlp-api:1", "memory": 512,
                     "command": ["textnlp", "db", "upgrade"]},
                    {"name": "xray", "image": "adot:1", "memory": 128},
                ],
            )["taskDefinition"]["taskDefinitionArn"]
            yield client, MigrationConfig(
                cluster="textnlp-production", task_definition_arn=definition,
                container_name="migrate", subnets=(subnet,), security_groups=(group,),
            )
    finally:
        state_manager.unset_transition("ecs::task")


def _ends_with(client: Any, exit_code: int, reason: str) -> Callable[[float], None]:
    """ECS's passing time: the running migration task ends with `exit_code`."""
    def sleep(_seconds: float) -> None:
        (task_arn,) = client.list_tasks(cluster="textnlp-production")["taskArns"]
        backend = ecs_backends[ACCOUNT][REGION]
        task = backend.tasks["textnlp-production"][task_arn]
        for container in task.containers:
            container.exitCode = exit_code
        client.stop_task(cluster="textnlp-production", task=task_arn, reason=reason)
    return sleep


def test_a_migration_that_exits_0_lets_the_deployment_go_on(
    ecs: tuple[Any, MigrationConfig],
) -> None:
    client, config = ecs
    sleeps: list[float] = []
    ends = _ends_with(client, 0, "Essential container in task exited")

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        ends(seconds)

    result = run_migration(client, config, time_left=lambda: 600.0, sleep=sleep)
    assert result["exitCode"] == 0
    (task,) = client.describe_tasks(
        cluster="textnlp-production", tasks=[result["taskArn"]])["tasks"]
    assert task["taskDefinitionArn"] == config.task_definition_arn
    assert task["startedBy"] == migration_trigger.STARTED_BY
    assert task["launchType"] == "FARGATE"
    assert sleeps == [migration_trigger.POLL_S]  # it waited for the task to stop


def test_a_failed_migration_fails_the_deployment_with_the_stopped_reason(
    ecs: tuple[Any, MigrationConfig],
) -> None:
    client, config = ecs
    reason = "Essential container in task exited"
    with pytest.raises(MigrationFailed) as failed:
        run_migration(client, config, time_left=lambda: 600.0,
                      sleep=_ends_with(client, 3, reason))
    message = str(failed.value)
    assert reason in message and "exit code 3" in message
    assert config.container_name in message


def test_a_migration_still_running_when_time_runs_out_fails_and_is_left_running(
    ecs: tuple[Any, MigrationConfig],
) -> None:
    client, config = ecs

    def never(_seconds: float) -> None:
        raise AssertionError("no time left: it must not wait")

    with pytest.raises(MigrationFailed, match="out of time"):
        run_migration(client, config, time_left=lambda: 5.0, sleep=never)
    (task_arn,) = client.list_tasks(cluster="textnlp-production")["taskArns"]
    (task,) = client.describe_tasks(cluster="textnlp-production", tasks=[task_arn])["tasks"]
    assert task["lastStatus"] == "RUNNING"


def test_the_handler_reads_its_configuration_from_the_environment(
    ecs: tuple[Any, MigrationConfig], monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, config = ecs
    for name, value in {
        "CLUSTER": config.cluster, "TASK_DEFINITION_ARN": config.task_definition_arn,
        "CONTAINER_NAME": "migrate", "SUBNETS": ",".join(config.subnets),
        "SECURITY_GROUPS": ",".join(config.security_groups), "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(migration_trigger, "_clients", {"ecs": client})
    monkeypatch.setattr(migration_trigger.time, "sleep", _ends_with(client, 0, "done"))

    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 600_000

    assert migration_trigger.handler({}, Context())["exitCode"] == 0
    monkeypatch.delenv("SUBNETS")
    with pytest.raises(RuntimeError, match="lacks SUBNETS"):
        migration_trigger.handler({}, Context())
