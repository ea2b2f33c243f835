"""Deployer for Step Functions state machines: created in moto, which runs their ASL
(`rehearsal.state_machines`). moto parses the definition when it is created, so a definition
its interpreter cannot read fails the deployment, naming the state machine."""

from __future__ import annotations

import json
from typing import Any

from rehearsal.deploy import DeployContext, Deployer
from rehearsal.template import Physical


def deploy_state_machine(c: DeployContext) -> Physical:
    props = c.properties
    name = props.get("StateMachineName") or c.generated_name(80)
    definition: Any = props.get("DefinitionString") or json.dumps(props.get("Definition", {}))
    kwargs: dict[str, Any] = {
        "name": name, "definition": definition, "roleArn": str(props["RoleArn"]),
        "type": props.get("StateMachineType", "STANDARD"),
    }
    try:
        arn = c.client("stepfunctions").create_state_machine(**kwargs)["stateMachineArn"]
    except Exception as exc:
        raise RuntimeError(f"state machine {name}: moto refused its definition: {exc}") from exc
    c.ledger.leave_out("Step Functions' IAM role, logging and X-Ray tracing settings")
    return Physical(arn, {"Arn": arn, "Name": name})


DEPLOYERS: dict[str, Deployer] = {
    "AWS::StepFunctions::StateMachine": deploy_state_machine,
}
