"""The jobs' retention: a daily EventBridge schedule runs the `textnlp-jobs-purge` task
(`textnlp jobs purge --older-than DAYS`), with a role that may do that and nothing more."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from textnlp import deployment
from textnlp.config import load_settings

from infra_assembly import Assembly
from test_app_contract import deployed_environment
from textnlp_infra.config import (
    MAX_JOBS_RETENTION_DAYS,
    Environment,
    JobsConfig,
    for_environment,
)

FAMILY = "textnlp-jobs-purge"
RULE = "textnlp-production-jobs-purge"


def _task(assembly: Assembly, family: str) -> tuple[str, dict[str, Any]]:
    tasks = assembly.resources("Compute", "AWS::ECS::TaskDefinition")
    return next((logical_id, t["Properties"]) for logical_id, t in tasks.items()
                if t["Properties"]["Family"] == family)


def _app_container(task: dict[str, Any]) -> dict[str, Any]:
    (container,) = [c for c in task["ContainerDefinitions"] if c.get("Essential", True)]
    return container


def _rule(assembly: Assembly) -> tuple[str, dict[str, Any]]:
    rules = assembly.resources("Compute", "AWS::Events::Rule")
    (found,) = [(logical_id, r["Properties"]) for logical_id, r in rules.items()
                if r["Properties"].get("Name") == RULE]
    return found


def _statements(assembly: Assembly, role_id: str) -> list[dict[str, Any]]:
    policies = assembly.resources("Compute", "AWS::IAM::Policy").values()
    return [statement for policy in policies
            if {"Ref": role_id} in policy["Properties"]["Roles"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]]


def test_the_rule_runs_the_purge_task_daily(assembly: Assembly) -> None:
    rule_id, rule = _rule(assembly)
    assert rule["ScheduleExpression"] == "cron(0 2 * * ? *)"
    assert rule.get("State", "ENABLED") == "ENABLED"
    (target,) = rule["Targets"]
    task_id, task = _task(assembly, FAMILY)
    (cluster_id,) = assembly.resources("Compute", "AWS::ECS::Cluster")
    assert target["Arn"] == {"Fn::GetAtt": [cluster_id, "Arn"]}
    ecs = target["EcsParameters"]
    # The family, not one revision: ECS runs the latest, the one with the release's image.
    assert ecs["TaskDefinitionArn"] == (
        f"arn:aws:ecs:us-east-1:123456789012:task-definition/{FAMILY}")
    assert task_id in assembly.templates["Compute"]["Resources"][rule_id]["DependsOn"]
    assert (ecs["LaunchType"], ecs["TaskCount"]) == ("FARGATE", 1)
    # Where the API's tasks run: private subnets, the API security group (Aurora, Redis).
    network = ecs["NetworkConfiguration"]["AwsVpcConfiguration"]
    (service,) = [s["Properties"] for s in
                  assembly.resources("Compute", "AWS::ECS::Service").values()
                  if s["Properties"].get("ServiceName") == "textnlp-validation"]
    service_network = service["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert network["AssignPublicIp"] == service_network["AssignPublicIp"] == "DISABLED"
    assert network["Subnets"] == service_network["Subnets"]
    assert network["SecurityGroups"] == service_network["SecurityGroups"]
    assert task["NetworkMode"] == "awsvpc" and task["RequiresCompatibilities"] == ["FARGATE"]
    # The command as the task definition holds it: no override changes the retention.
    assert target.get("Input") in (None, "{}")
    assert _app_container(task)["Command"] == list(deployment.jobs_purge_command(90))
    assert JobsConfig().retention_days == 90


def test_the_rule_retries_and_dead_letters_a_failed_run(assembly: Assembly) -> None:
    _, rule = _rule(assembly)
    (target,) = rule["Targets"]
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 21600}
    queues = assembly.resources("Compute", "AWS::SQS::Queue")
    (dlq_id,) = [q for q, r in queues.items()
                 if r["Properties"]["QueueName"] == "textnlp-jobs-purge-dlq"]
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dlq_id, "Arn"]}}
    assert "KmsMasterKeyId" in queues[dlq_id]["Properties"]
    (policy,) = [p["Properties"] for p in
                 assembly.resources("Compute", "AWS::SQS::QueuePolicy").values()
                 if {"Ref": dlq_id} in p["Properties"]["Queues"]]
    senders = [s for s in policy["PolicyDocument"]["Statement"]
               if s["Effect"] == "Allow" and s["Action"] == "sqs:SendMessage"]
    assert [s["Principal"] for s in senders] == [{"Service": "events.amazonaws.com"}]
    alarms = {a["Properties"]["AlarmName"]: a["Properties"]
              for a in assembly.resources("Monitoring", "AWS::CloudWatch::Alarm").values()}
    assert "textnlp-jobs-purge-dlq" in str(
        alarms["textnlp-production-jobs-purge-dlq-not-empty"]["Metrics"])


def test_the_task_is_the_apps_image_environment_and_roles(assembly: Assembly) -> None:
    _, task = _task(assembly, FAMILY)
    _, migrate = _task(assembly, "textnlp-migrate")
    purge, api = _app_container(task), _app_container(_task(assembly, "textnlp-api")[1])
    assert purge["Image"] == api["Image"]
    service = "TEXTNLP_OBSERVABILITY__SERVICE_NAME"

    def variables(container: dict[str, Any]) -> dict[str, Any]:
        return {e["Name"]: e["Value"] for e in container["Environment"] if e["Name"] != service}

    assert variables(purge) == variables(api)
    assert purge["Secrets"] == api["Secrets"]
    for role in ("TaskRoleArn", "ExecutionRoleArn"):
        assert task[role] == migrate[role]
    assert purge["ReadonlyRootFilesystem"] is True
    assembly.template("Compute").has_resource_properties(
        "AWS::Logs::LogGroup", {"LogGroupName": "/ecs/textnlp-jobs-purge"}
    )


def _published(command: tuple[str, ...], environment: dict[str, str], home: Path) -> list[Any]:
    """(namespace, metric, dimensions) of every EMF point the real CLI prints running
    `command` with `environment` on a local database."""
    env = {**os.environ, **environment, "TEXTNLP_HOME": str(home)}
    bin_dir = Path(sys.executable).parent
    for argv in (deployment.MIGRATE_COMMAND, command):
        executable, *args = argv
        done = subprocess.run([str(bin_dir / executable), *args], env=env, capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
    points = []
    for line in done.stdout.splitlines():
        if not line.startswith("{"):
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for names in directive["Dimensions"]:
                for metric in directive["Metrics"]:
                    points.append((directive["Namespace"], metric["Name"],
                                   sorted((n, document[n]) for n in names)))
    return points


def test_an_alarm_goes_off_when_no_purge_succeeded_for_a_day(
    assembly: Assembly, tmp_path: Path
) -> None:
    """A purge task that exits non-zero, cannot start or is never run publishes nothing; the
    alarm watches exactly the point the real CLI prints with the task's environment."""
    _, task = _task(assembly, FAMILY)
    deployed = load_settings(environ=deployed_environment(_app_container(task))).observability
    assert deployed.emf  # the aws profile's
    # The deployed metrics settings on a local database (the deployed one is Aurora's).
    metrics = {"TEXTNLP_OBSERVABILITY__EMF": "true",
               "TEXTNLP_OBSERVABILITY__EMF_NAMESPACE": deployed.emf_namespace,
               "TEXTNLP_OBSERVABILITY__SERVICE_NAME": deployed.service_name}
    published = _published(deployment.jobs_purge_command(90), metrics, tmp_path / "home")
    alarms = [a["Properties"] for a in
              assembly.resources("Monitoring", "AWS::CloudWatch::Alarm").values()
              if a["Properties"]["AlarmName"] == "textnlp-production-jobs-purge-missed"]
    (alarm,) = alarms
    watched = (alarm["Namespace"], alarm["MetricName"],
               sorted((d["Name"], d["Value"]) for d in alarm["Dimensions"]))
    assert watched in published, published
    assert alarm["Statistic"] == "SampleCount" and alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "LessThanThreshold"
    assert alarm["TreatMissingData"] == "breaching"
    # Every hourly period of 26 hours without a point: a day's schedule plus grace, within
    # CloudWatch's seven days for periods of an hour or more.
    assert alarm["Period"] == 3600
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == 26
    assert alarm["AlarmActions"] and alarm["OKActions"]


def test_the_rules_role_may_run_that_task_and_nothing_else(assembly: Assembly) -> None:
    _, rule = _rule(assembly)
    (target,) = rule["Targets"]
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    role = assembly.resources("Compute", "AWS::IAM::Role")[role_id]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    # Only this rule may assume it.
    assert trust["Condition"] == {"ArnEquals": {
        "aws:SourceArn": f"arn:aws:events:us-east-1:123456789012:rule/{RULE}"}}
    assert "ManagedPolicyArns" not in role and "Policies" not in role
    statements = _statements(assembly, role_id)
    by_action = {s["Action"]: s for s in statements}
    assert sorted(by_action) == ["ecs:RunTask", "ecs:TagResource", "iam:PassRole"]
    assert len(statements) == 3 and all(s["Effect"] == "Allow" for s in statements)

    run = by_action["ecs:RunTask"]
    assert f":task-definition/{FAMILY}:*" in str(run["Resource"])
    (cluster_id,) = assembly.resources("Compute", "AWS::ECS::Cluster")
    assert run["Condition"] == {"ArnEquals": {"ecs:cluster": {"Fn::GetAtt": [cluster_id, "Arn"]}}}

    _, task = _task(assembly, FAMILY)
    passed = by_action["iam:PassRole"]
    assert sorted(map(str, passed["Resource"])) == sorted(
        map(str, (task["ExecutionRoleArn"], task["TaskRoleArn"])))
    assert passed["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}

    tag = by_action["ecs:TagResource"]
    assert ":task/textnlp-production/*" in str(tag["Resource"])
    assert tag["Condition"] == {"StringEquals": {"ecs:CreateAction": "RunTask"}}


def test_each_release_registers_the_purge_with_its_image(assembly: Assembly) -> None:
    """The pipeline's Migrate stage, once the schema is upgraded, registers a revision of the
    purge's family with the new image (the old one would refuse the upgraded schema)."""
    projects = assembly.resources("Delivery", "AWS::CodeBuild::Project").values()
    (migrate,) = [p for p in projects if p["Properties"]["Name"] == "textnlp-production-migrate"]
    spec = json.dumps(migrate["Properties"]["Source"]["BuildSpec"])
    after_check = spec[spec.index("exited with $CODE"):]
    assert f"describe-task-definition --task-definition {FAMILY}" in after_check
    assert f"register-task-definition --cli-input-json file://{FAMILY}.json" in after_check
    # The container whose image is replaced (quotes escaped once per JSON level).
    assert re.search(r'select\(\.name==[\\"]+jobs-purge[\\"]+\)', after_check)


@pytest.mark.parametrize("days", [0, -1, MAX_JOBS_RETENTION_DAYS + 1, True, 1.5, "90"])
def test_the_retention_is_a_whole_number_of_days_from_one(days: Any) -> None:
    with pytest.raises(ValueError, match="retention_days"):
        JobsConfig(retention_days=days)


def test_a_deployer_sets_the_retention_by_context() -> None:
    config = for_environment(Environment.PRODUCTION, {"jobsRetentionDays": "30"})
    assert config.jobs.retention_days == 30
    assert for_environment(Environment.DEV).jobs.retention_days == 90
    for bad in ("0", "thirty", "1.5"):
        with pytest.raises(ValueError):
            for_environment(Environment.PRODUCTION, {"jobsRetentionDays": bad})
