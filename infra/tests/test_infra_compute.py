"""Design section 2: ECS cluster, services, task definitions, autoscaling."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match
from textnlp import deployment

from infra_assembly import Assembly


def _task(assembly: Assembly, family: str) -> dict:
    tasks = assembly.resources("Compute", "AWS::ECS::TaskDefinition").values()
    return next(t["Properties"] for t in tasks if t["Properties"]["Family"] == family)


def _container(task: dict, name: str) -> dict:
    return next(c for c in task["ContainerDefinitions"] if c["Name"] == name)


def test_api_task_definition(assembly: Assembly) -> None:
    task = _task(assembly, "textnlp-api")
    assert (task["Cpu"], task["Memory"]) == ("2048", "4096")
    assert task["RequiresCompatibilities"] == ["FARGATE"]
    api = _container(task, "api")
    assert api["PortMappings"][0]["ContainerPort"] == deployment.API_PORT == 8000
    assert api["Command"] == list(deployment.API_COMMAND)
    assert api["LogConfiguration"]["LogDriver"] == "awslogs"
    assert api["LogConfiguration"]["Options"]["awslogs-stream-prefix"] == "api"
    # The design's DB_PASSWORD, under the name of the app's setting.
    assert "TEXTNLP_DATABASE__PASSWORD" in {s["Name"] for s in api["Secrets"]}
    environment = {e["Name"]: e["Value"] for e in api["Environment"]}
    assert environment["TEXTNLP_AWS__REGION"] == "us-east-1"
    assert environment["TEXTNLP_ENVIRONMENT"] == "production"
    assert environment["TEXTNLP_OBSERVABILITY__SERVICE_NAME"] == "textnlp-api"
    assert api["ReadonlyRootFilesystem"] is True
    assert [m["ContainerPath"] for m in api["MountPoints"]] == [deployment.SCRATCH_PATH]
    assert environment["TEXTNLP_HOME"].startswith(deployment.SCRATCH_PATH)
    assembly.template("Compute").has_resource_properties(
        "AWS::Logs::LogGroup", {"LogGroupName": "/ecs/textnlp-api"}
    )


def test_generation_task_on_gpu_hosts(assembly: Assembly) -> None:
    task = _task(assembly, "textnlp-generation")
    assert (task["Cpu"], task["Memory"]) == ("16384", "65536")
    assert task["RequiresCompatibilities"] == ["EC2"]
    assert task["PlacementConstraints"] == [
        {"Type": "memberOf", "Expression": "attribute:ecs.instance-type =~ g4dn.*"}
    ]
    generation = _container(task, "generation")
    assert generation["ResourceRequirements"] == [{"Type": "GPU", "Value": "1"}]
    template = assembly.template("Compute")
    template.has_resource_properties(
        "AWS::EC2::LaunchTemplate",
        {"LaunchTemplateData": Match.object_like(
            {"InstanceType": Match.string_like_regexp("g4dn")})},
    )
    (launch,) = assembly.resources("Compute", "AWS::EC2::LaunchTemplate").values()
    (device,) = launch["Properties"]["LaunchTemplateData"]["BlockDeviceMappings"]
    volume = device["Ebs"]  # gp3 with customized IOPS (the design's cost section)
    assert (volume["VolumeType"], volume["Iops"], volume["Throughput"]) == ("gp3", 6000, 250)
    template.resource_count_is("AWS::ECS::CapacityProvider", 1)
    template.has_resource_properties(
        "AWS::ECS::Service",
        {"ServiceName": "textnlp-generation",
         "CapacityProviderStrategy": [Match.object_like({"Weight": 1})]},
    )


def test_validation_service_and_batch_task(assembly: Assembly) -> None:
    template = assembly.template("Compute")
    template.has_resource_properties(
        "AWS::ECS::Service", {"ServiceName": "textnlp-validation", "LaunchType": "FARGATE"}
    )
    validation = _container(_task(assembly, "textnlp-validation"), "validation")
    assert validation["Command"] == list(deployment.VALIDATION_COMMAND)
    batch = _task(assembly, "textnlp-batch-processor")
    assert _container(batch, "batch-processor")["Command"] == list(
        deployment.BATCH_PROCESSOR_COMMAND
    )
    migrate = _task(assembly, "textnlp-migrate")
    assert _container(migrate, "migrate")["Command"] == list(deployment.MIGRATE_COMMAND)


def test_api_service_is_blue_green(assembly: Assembly) -> None:
    assembly.template("Compute").has_resource_properties(
        "AWS::ECS::Service",
        {"ServiceName": "textnlp-api", "DeploymentController": {"Type": "CODE_DEPLOY"}},
    )


def test_api_autoscaling(assembly: Assembly) -> None:
    template = assembly.template("Compute")
    targets = assembly.resources("Compute", "AWS::ApplicationAutoScaling::ScalableTarget")
    assert any(
        (t["Properties"]["MinCapacity"], t["Properties"]["MaxCapacity"]) == (2, 100)
        for t in targets.values()
    )
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {"TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": 70,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "ECSServiceAverageCPUUtilization"},
            "ScaleInCooldown": 300, "ScaleOutCooldown": 60}},
    )
    for metric, value in (("RequestsPerTask", 1000), ("GPUUtilization", 80)):
        template.has_resource_properties(
            "AWS::ApplicationAutoScaling::ScalingPolicy",
            {"TargetTrackingScalingPolicyConfiguration": Match.object_like({
                "TargetValue": value,
                "CustomizedMetricSpecification": Match.object_like(
                    {"MetricName": metric, "Namespace": "Custom"}),
            })},
        )


def test_alb_is_multi_az_with_https_and_waf(assembly: Assembly) -> None:
    template = assembly.template("Compute")
    albs = assembly.resources("Compute", "AWS::ElasticLoadBalancingV2::LoadBalancer")
    (alb,) = albs.values()
    assert alb["Properties"]["Scheme"] == "internet-facing"
    assert len(alb["Properties"]["Subnets"]) == 3
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener", {"Port": 443, "Protocol": "HTTPS"}
    )
    template.resource_count_is("AWS::WAFv2::WebACLAssociation", 1)
    template.has_resource_properties(
        "AWS::WAFv2::WebACL",
        {"Scope": "REGIONAL", "Rules": Match.array_with([Match.object_like({
            "Statement": {"RateBasedStatement": Match.object_like({"AggregateKeyType": "IP"})}
        })])},
    )
    # Behind the gateway every client shares its few addresses: the per-IP rule counts only the
    # requests without the gateway's origin header (the ones that walked around it).
    (acl,) = assembly.resources("Compute", "AWS::WAFv2::WebACL").values()
    rule = next(r for r in acl["Properties"]["Rules"] if r["Name"] == "RateLimitPerIp")
    scope_down = rule["Statement"]["RateBasedStatement"]["ScopeDownStatement"]
    match = scope_down["NotStatement"]["Statement"]["ByteMatchStatement"]
    assert match["FieldToMatch"] == {"SingleHeader": {"Name": "x-origin-verify"}}
    assert match["PositionalConstraint"] == "EXACTLY"
    assert "resolve:secretsmanager" in json.dumps(match["SearchString"])  # never the value


def test_every_task_traces_through_its_collector_sidecar(assembly: Assembly) -> None:
    """Design section 10: the app's spans (OTLP) reach X-Ray through the task's collector (the
    one-off tasks too: without it their exporter retried a dead port and lost every span)."""
    families = {
        t["Properties"]["Family"]
        for t in assembly.resources("Compute", "AWS::ECS::TaskDefinition").values()
    }
    assert {"textnlp-batch-processor", "textnlp-migrate", "textnlp-jobs-purge"} <= families
    for family in families:
        task = _task(assembly, family)
        collector = _container(task, "trace-collector")
        assert "aws-otel-collector" in str(collector["Image"])
        config = {e["Name"]: e["Value"] for e in collector["Environment"]}["AOT_CONFIG_CONTENT"]
        assert "otlp" in config and "awsxray" in config
        app = next(c for c in task["ContainerDefinitions"] if c.get("Essential", True))
        environment = {e["Name"]: e["Value"] for e in app["Environment"]}
        assert environment["TEXTNLP_OBSERVABILITY__TRACE_EXPORTER"] == "otlp"
        assert environment["TEXTNLP_OBSERVABILITY__OTLP_ENDPOINT"] == (
            "http://localhost:4318/v1/traces"
        )


def test_the_waf_lets_the_platforms_own_bodies_through(assembly: Assembly) -> None:
    """AWS's core rule set blocks any body over 8 KB (an uploaded prompt file, a long prompt)
    and its SQLi/XSS body rules a text-to-SQL dataset's prompts: at both ACLs those rules
    count, and everything else in the groups still blocks."""
    for section in ("Compute", "Api"):
        (acl,) = assembly.resources(section, "AWS::WAFv2::WebACL").values()
        overrides = {
            rule["Name"]: {
                o["Name"]: o["ActionToUse"]
                for o in rule["Statement"]["ManagedRuleGroupStatement"].get(
                    "RuleActionOverrides", []
                )
            }
            for rule in acl["Properties"]["Rules"]
            if "ManagedRuleGroupStatement" in rule["Statement"]
        }
        assert overrides["AWSManagedRulesCommonRuleSet"] == {
            rule: {"Count": {}}
            for rule in ("SizeRestrictions_BODY", "CrossSiteScripting_BODY", "GenericLFI_BODY",
                         "GenericRFI_BODY", "EC2MetaDataSSRF_BODY")
        }
        assert overrides["AWSManagedRulesSQLiRuleSet"] == {
            "SQLi_BODY": {"Count": {}},
            "SQLiExtendedPatterns_BODY": {"Count": {}},
        }
        assert overrides["AWSManagedRulesKnownBadInputsRuleSet"] == {}


def test_workers_have_time_to_hand_their_jobs_back(assembly: Assembly) -> None:
    """A stopping worker stores its finished records and hands its job back: ECS's default
    30 s before SIGKILL is raised for the workers, to Fargate's most."""
    for family, name in (("textnlp-generation", "generation"),
                         ("textnlp-validation", "validation"),
                         ("textnlp-batch-processor", "batch-processor")):
        assert _container(_task(assembly, family), name)["StopTimeout"] == 120, family
    assert "StopTimeout" not in _container(_task(assembly, "textnlp-api"), "api")
