"""Design sections 2, 6, 7: the state machine runs the batch processor (`ecs:runTask.sync`),
reruns it after a Spot interruption, and sends a failed run to the batch DLQ and the topic."""

from __future__ import annotations

import json
from typing import Any

from textnlp.deployment import BATCH_TRIGGER_HANDLER
from textnlp.lambdas.batch_trigger import EXECUTION_INPUT_FIELDS

from infra_assembly import Assembly
from test_infra_serverless import actions, functions, role_statements

RUN = "RunBatchProcessor"


def _token(value: Any) -> str:
    """A CloudFormation function inside the definition, as a readable placeholder."""
    (name, argument), = value.items()
    if value == {"Ref": "AWS::Partition"}:
        return "aws"
    if name == "Ref":
        return f"<Ref {argument}>"
    if name == "Fn::GetAtt":
        return f"<GetAtt {'.'.join(argument)}>"
    if name == "Fn::ImportValue":
        return f"<Import {argument}>"
    return f"<{name}>"


def state_machine(assembly: Assembly) -> tuple[str, dict]:
    (logical, resource), = assembly.resources(
        "Serverless", "AWS::StepFunctions::StateMachine").items()
    return logical, resource["Properties"]


def definition(assembly: Assembly) -> dict:
    """The ASL, with the template's references as placeholders."""
    body = state_machine(assembly)[1]["DefinitionString"]
    if isinstance(body, dict) and "Fn::Join" in body:
        separator, parts = body["Fn::Join"]
        body = separator.join(p if isinstance(p, str) else _token(p) for p in parts)
    return dict(json.loads(body))


def machine_statements(assembly: Assembly) -> list[dict]:
    logical, properties = state_machine(assembly)
    role = properties["RoleArn"]["Fn::GetAtt"][0]
    return [
        statement
        for policy in assembly.resources("Serverless", "AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_the_machine_runs_the_batch_processor_and_waits(assembly: Assembly) -> None:
    states = definition(assembly)["States"]
    run = states[RUN]
    assert run["Resource"] == "arn:aws:states:::ecs:runTask.sync"
    parameters = run["Parameters"]
    assert parameters["CapacityProviderStrategy"] == [
        {"CapacityProvider": "FARGATE_SPOT", "Weight": 1}]
    assert "LaunchType" not in parameters  # a capacity provider strategy replaces it
    network = parameters["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert len(network["Subnets"]) == 3
    assert network.get("AssignPublicIp", "DISABLED") == "DISABLED"  # RunTask's default
    (override,) = parameters["Overrides"]["ContainerOverrides"]
    assert override["Name"] == "batch-processor"
    # The CLI reads S3_BUCKET/S3_KEY; their values come from the Lambda's execution input.
    assert override["Environment"] == [
        {"Name": "S3_BUCKET", "Value.$": "$.bucket"},
        {"Name": "S3_KEY", "Value.$": "$.key"},
    ]
    assert {"bucket", "key"} <= set(EXECUTION_INPUT_FIELDS)
    assert run["TimeoutSeconds"] == 43200


def test_the_task_definition_is_the_batch_processors(assembly: Assembly) -> None:
    run = definition(assembly)["States"][RUN]
    # By family: ECS runs its latest revision, the one the last deployment registered.
    family = run["Parameters"]["TaskDefinition"]
    (task,) = [t["Properties"]
               for t in assembly.resources("Compute", "AWS::ECS::TaskDefinition").values()
               if t["Properties"]["Family"] == family]
    assert family == "textnlp-batch-processor"
    (container,) = [c for c in task["ContainerDefinitions"] if c["Name"] == "batch-processor"]
    assert container["Command"] == ["textnlp", "worker", "--queues", "batch", "--once"]


def test_a_spot_interruption_runs_the_task_again(assembly: Assembly) -> None:
    states = definition(assembly)["States"]
    catches = {tuple(c["ErrorEquals"]): c for c in states[RUN]["Catch"]}
    after = catches[("States.TaskFailed",)]
    assert after["ResultPath"] == "$.failure"
    choice = states[after["Next"]]
    (rule,) = choice["Choices"]
    conditions = {json.dumps(c, sort_keys=True) for c in rule["And"]}
    assert json.dumps({"StringMatches": "*SpotInterruption*", "Variable": "$.failure.Cause"},
                      sort_keys=True) in conditions
    rerun = states[rule["Next"]]
    assert rerun["Type"] == "Pass" and rerun["Next"] == RUN
    assert rerun["Parameters"]["spotReruns.$"] == "States.MathAdd($.spotReruns, 1)"
    assert choice["Default"] == catches[("States.ALL",)]["Next"]
    (retry,) = states[RUN]["Retry"]
    assert "AmazonECS.Unknown" in retry["ErrorEquals"]  # RunTask answered `failures`


def test_a_failed_run_goes_to_the_batch_dlq_and_the_topic(assembly: Assembly) -> None:
    states = definition(assembly)["States"]
    dead_letter = states[states[RUN]["Catch"][-1]["Next"]]
    assert dead_letter["Resource"] == "arn:aws:states:::sqs:sendMessage"
    body = dead_letter["Parameters"]["MessageBody"]
    assert body["key.$"] == "$.key" and body["error.$"] == "$.failure.Error"
    queue = dead_letter["Parameters"]["QueueUrl"]
    assert "BatchDeadLetterQueue" in json.dumps(queue) or "Import" in queue
    notify = states[dead_letter["Next"]]
    assert notify["Resource"] == "arn:aws:states:::sns:publish"
    assert notify["Parameters"]["MessageAttributes"]["outcome"]["StringValue"] == "failed"
    assert states[notify["Next"]]["Type"] == "Fail"
    succeeded = states[states[RUN]["Next"]]
    assert succeeded["Parameters"]["MessageAttributes"]["outcome"]["StringValue"] == (
        "succeeded")


def test_the_machine_may_run_wait_for_and_stop_the_batch_task(assembly: Assembly) -> None:
    statements = machine_statements(assembly)
    granted = set().union(*(actions(s) for s in statements))
    assert {"ecs:RunTask", "ecs:StopTask", "ecs:DescribeTasks", "iam:PassRole",
            "sqs:SendMessage", "sns:Publish"} <= granted
    # The .sync integration learns that a task stopped through a managed EventBridge rule.
    (events,) = [s for s in statements if "events:PutRule" in actions(s)]
    assert {"events:PutTargets", "events:DescribeRule"} <= actions(events)
    assert "StepFunctionsGetEventsForECSTaskRule" in json.dumps(events["Resource"])
    (pass_role,) = [s for s in statements if "iam:PassRole" in actions(s)]
    assert len(pass_role["Resource"]) == 2  # the task role and the execution role


def test_the_machine_may_tag_the_task_it_starts(assembly: Assembly) -> None:
    # RunTask propagates the task definition's tags: without ecs:TagResource on the task it
    # creates, AWS refuses the RunTask and every upload would end in the batch DLQ.
    assert definition(assembly)["States"][RUN]["Parameters"]["PropagateTags"] == "TASK_DEFINITION"
    (tag,) = [s for s in machine_statements(assembly) if "ecs:TagResource" in actions(s)]
    assert actions(tag) == {"ecs:TagResource"}
    assert tag["Condition"] == {"StringEquals": {"ecs:CreateAction": "RunTask"}}
    assert ":task/" in json.dumps(tag["Resource"])


def test_the_trigger_starts_executions_and_no_task(assembly: Assembly) -> None:
    statements = role_statements(assembly, functions(assembly)[BATCH_TRIGGER_HANDLER])
    (start,) = [s for s in statements if "states:StartExecution" in actions(s)]
    logical, _ = state_machine(assembly)
    assert start["Resource"] == {"Ref": logical}
    granted = set().union(*(actions(s) for s in statements))
    assert not {"ecs:RunTask", "iam:PassRole"} & granted


def test_no_rule_watches_tasks_stop_any_more(assembly: Assembly) -> None:
    rules = assembly.resources("Serverless", "AWS::Events::Rule").values()
    assert all(r["Properties"].get("EventPattern", {}).get("source") != ["aws.ecs"]
               for r in rules)
