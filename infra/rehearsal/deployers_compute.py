"""Deployers for the VPC's ids, the ECS cluster, task definitions and services, and Lambdas.

The VPC, subnets and security groups are created in moto only for their ids (the batch
trigger passes them to `run_task`); no traffic is filtered by them. Lambda functions are not
created in moto (it would need Docker): `rehearsal.lambdas` runs them from their assets.
"""

from __future__ import annotations

from typing import Any

from rehearsal.deploy import DeployContext, Deployer, camel_keys
from rehearsal.template import Physical, placeholder

NOT_EMULATED_NETWORK = (
    "VPC networking: subnets, routes, NAT, security groups and endpoints (ids only, in moto)"
)
# Maps inside container definitions whose keys are data, not property names.
_VERBATIM = frozenset({"Options", "DockerLabels", "SystemControls"})
_TASK_FIELDS = (
    "NetworkMode", "RequiresCompatibilities", "Cpu", "Memory", "TaskRoleArn",
    "ExecutionRoleArn", "Volumes", "PlacementConstraints", "RuntimePlatform",
)


def deploy_vpc(c: DeployContext) -> Physical:
    c.ledger.leave_out(NOT_EMULATED_NETWORK)
    ec2 = c.client("ec2")
    vpc = ec2.create_vpc(CidrBlock=c.properties["CidrBlock"])["Vpc"]
    for name in ("EnableDnsSupport", "EnableDnsHostnames"):
        if name in c.properties:
            ec2.modify_vpc_attribute(VpcId=vpc["VpcId"], **{
                name: {"Value": str(c.properties[name]).lower() == "true"}})
    return Physical(vpc["VpcId"], {"VpcId": vpc["VpcId"], "CidrBlock": vpc["CidrBlock"]})


def deploy_subnet(c: DeployContext) -> Physical:
    props = c.properties
    kwargs = {"VpcId": props["VpcId"], "CidrBlock": props["CidrBlock"]}
    if "AvailabilityZone" in props:
        kwargs["AvailabilityZone"] = props["AvailabilityZone"]
    subnet = c.client("ec2").create_subnet(**kwargs)["Subnet"]
    return Physical(subnet["SubnetId"], {"SubnetId": subnet["SubnetId"],
                                         "AvailabilityZone": subnet["AvailabilityZone"]})


def deploy_security_group(c: DeployContext) -> Physical:
    props = c.properties
    kwargs = {
        "GroupName": props.get("GroupName") or c.generated_name(255),
        "Description": props.get("GroupDescription", "rehearsal"),
    }
    if "VpcId" in props:
        kwargs["VpcId"] = props["VpcId"]
    group_id = c.client("ec2").create_security_group(**kwargs)["GroupId"]
    return Physical(group_id, {"GroupId": group_id, "VpcId": props.get("VpcId", "")})


def deploy_cluster(c: DeployContext) -> Physical:
    name = c.properties.get("ClusterName") or c.generated_name(255)
    arn = c.client("ecs").create_cluster(clusterName=name)["cluster"]["clusterArn"]
    return Physical(name, {"Arn": arn})


def deploy_task_definition(c: DeployContext) -> Physical:
    props = c.properties
    kwargs: dict[str, Any] = {
        "family": props.get("Family") or c.generated_name(255),
        "containerDefinitions": camel_keys(props["ContainerDefinitions"], _VERBATIM),
    }
    for key in _TASK_FIELDS:
        if key in props:
            kwargs[key[0].lower() + key[1:]] = camel_keys(props[key], _VERBATIM)
    _give_containers_memory(c, kwargs)
    definition = c.client("ecs").register_task_definition(**kwargs)["taskDefinition"]
    arn = definition["taskDefinitionArn"]
    return Physical(arn, {"TaskDefinitionArn": arn, "Family": kwargs["family"]})


def _give_containers_memory(c: DeployContext, kwargs: dict[str, Any]) -> None:
    """moto's run_task adds up the containers' memory and fails on a container without any,
    which Fargate allows (the task's memory suffices): such containers are registered in moto
    with the task's memory as their reservation. moto's bookkeeping only."""
    containers = kwargs["containerDefinitions"]
    bare = [d for d in containers if "memory" not in d and "memoryReservation" not in d]
    if bare and kwargs.get("memory"):
        share = max(int(kwargs["memory"]) // len(containers), 4)
        for definition in bare:
            definition["memoryReservation"] = share
        c.ledger.emulate("moto's ECS bookkeeping: containers without a memory figure (allowed "
                         "on Fargate) are registered in moto with a share of the task's memory")


def deploy_service(c: DeployContext) -> Physical:
    props = c.properties
    # A service may name its task definition by family (CodeDeploy-controlled services do):
    # register them all first.
    c.deployment.deploy(["AWS::ECS::TaskDefinition"])
    name = props.get("ServiceName") or c.generated_name(255)
    kwargs: dict[str, Any] = {
        "cluster": props["Cluster"], "serviceName": name,
        "taskDefinition": props["TaskDefinition"],
        "desiredCount": int(props.get("DesiredCount", 1)),
    }
    if props.get("LaunchType") in ("EC2", "FARGATE"):
        kwargs["launchType"] = props["LaunchType"]
    service = c.client("ecs").create_service(**kwargs)["service"]
    return Physical(service["serviceArn"], {"Name": name, "ServiceArn": service["serviceArn"]})


def deploy_function(c: DeployContext) -> Physical:
    props = c.properties
    name = props.get("FunctionName") or c.generated_name(64)
    arn = f"arn:aws:lambda:{c.region}:{c.account}:function:{name}"
    return Physical(name, {"Arn": arn, "Rehearsal.Code": _code(c, props.get("Code", {}))})


def _code(c: DeployContext, code: dict[str, Any]) -> str:
    """The function's code directory: a synthesised asset, or inline code written out."""
    if "S3Key" in code:
        asset = c.stack.assets.get(str(code["S3Key"]))
        return str(asset) if asset else placeholder(f"asset {code['S3Key']}")
    if "ZipFile" in code:
        directory = c.deployment.work_dir / f"inline-{c.logical_id}"
        directory.mkdir(parents=True, exist_ok=True)
        module = str(c.properties.get("Handler", "index.handler")).rsplit(".", 1)[0]
        (directory / f"{module.replace('.', '/')}.py").write_text(str(code["ZipFile"]))
        return str(directory)
    return placeholder("Lambda code (container images are not emulated)")


DEPLOYERS: dict[str, Deployer] = {
    "AWS::EC2::VPC": deploy_vpc,
    "AWS::EC2::Subnet": deploy_subnet,
    "AWS::EC2::SecurityGroup": deploy_security_group,
    "AWS::ECS::Cluster": deploy_cluster,
    "AWS::ECS::TaskDefinition": deploy_task_definition,
    "AWS::ECS::Service": deploy_service,
    "AWS::Lambda::Function": deploy_function,
}
