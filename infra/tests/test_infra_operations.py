"""Design sections 3, 10, 11, 13: model serving, monitoring, backup, delivery."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match

from infra_assembly import Assembly


def test_sagemaker_endpoint(assembly: Assembly) -> None:
    template = assembly.template("ModelServing")
    template.has_resource_properties("AWS::SageMaker::EndpointConfig", {
        "EndpointConfigName": "textnlp-multi-model",
        "ProductionVariants": [
            Match.object_like({"VariantName": "gpt-j-6b", "InstanceType": "ml.g4dn.xlarge",
                               "InitialInstanceCount": 2, "InitialVariantWeight": 0.5}),
            Match.object_like({"VariantName": "llama-7b", "InstanceType": "ml.g4dn.2xlarge",
                               "InitialInstanceCount": 2, "InitialVariantWeight": 0.5}),
        ],
    })
    models = assembly.resources("ModelServing", "AWS::SageMaker::Model").values()
    assert {m["Properties"]["ModelName"] for m in models} == {"gpt-j-6b-model", "llama-7b-model"}
    assert all(len(m["Properties"]["VpcConfig"]["Subnets"]) == 3 for m in models)


def test_dashboard_and_alarms(assembly: Assembly) -> None:
    template = assembly.template("Monitoring")
    dashboards = assembly.resources("Monitoring", "AWS::CloudWatch::Dashboard").values()
    (dashboard,) = dashboards
    assert dashboard["Properties"]["DashboardName"] == "TextNLP-Production"
    body = str(dashboard["Properties"]["DashboardBody"])
    for metric in ("CPUUtilization", "MemoryUtilization", "RequestLatency", "TokensGenerated",
                   "textnlp-dlq.fifo", "textnlp-batch-queue", "textnlp-validation-queue",
                   "textnlp-batch-dlq", "textnlp-validation-dlq"):
        assert metric in body
    # Tokens of the API's answers and of the generation service's job records.
    assert '"TokensGenerated","ServiceName","textnlp-generation"' in body.replace(" ", "")
    assert '"TokensGenerated","ServiceName","textnlp-api"' in body.replace(" ", "")
    alarms = {a["Properties"]["AlarmName"]: a["Properties"]
              for a in assembly.resources("Monitoring", "AWS::CloudWatch::Alarm").values()}
    assert set(alarms) == {f"textnlp-production-{name}" for name in (
        "api-5xx-rate", "dlq-not-empty", "batch-dlq-not-empty", "validation-dlq-not-empty",
        "batch-trigger-dlq-not-empty", "jobs-purge-dlq-not-empty", "jobs-purge-missed",
        "api-p99-latency", "aurora-cpu")}
    assert alarms["textnlp-production-api-5xx-rate"]["MetricName"] == "5XXError"
    assert alarms["textnlp-production-api-p99-latency"]["ExtendedStatistic"] == "p99"
    assert alarms["textnlp-production-aurora-cpu"]["Dimensions"] == [
        {"Name": "DBClusterIdentifier", "Value": "textnlp-production"}]
    assert "textnlp-dlq.fifo" in str(alarms["textnlp-production-dlq-not-empty"]["Metrics"])
    # The workers' sweep receives every DLQ message (an hour's visibility): the alarm counts
    # received letters too, or it would see a dead letter for 30 s an hour.
    for name in ("dlq", "batch-dlq", "validation-dlq", "batch-trigger-dlq", "jobs-purge-dlq"):
        metrics = alarms[f"textnlp-production-{name}-not-empty"]["Metrics"]
        (expression,) = [m["Expression"] for m in metrics if "Expression" in m]
        key = name.replace("-", "_") + ("_fifo" if name == "dlq" else "")
        assert expression == f"{key}_visible + {key}_received"
        names = {m["MetricStat"]["Metric"]["MetricName"] for m in metrics if "MetricStat" in m}
        assert names == {
            "ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible"}
    template.has_resource_properties("AWS::CloudWatch::Alarm", {
        "AlarmActions": [Match.any_value()],
    })


def test_backup_plan(assembly: Assembly) -> None:
    plans = assembly.resources("Backup", "AWS::Backup::BackupPlan")
    rules_of = {
        logical_id: {r["RuleName"]: r for r in plan["Properties"]["BackupPlan"]["BackupPlanRule"]}
        for logical_id, plan in plans.items()
    }
    selections = assembly.resources("Backup", "AWS::Backup::BackupSelection").values()
    # A selection gets every rule of its plan: Aurora's plan holds its rule alone, the
    # volumes' plan theirs (7 days, no copy to the DR region).
    rules_by_selection = {}
    for selection in selections:
        plan_id = selection["Properties"]["BackupPlanId"]["Fn::GetAtt"][0]
        name = selection["Properties"]["BackupSelection"]["SelectionName"]
        rules_by_selection[name] = rules_of[plan_id]
    assert set(rules_by_selection["Aurora"]) == {"AuroraDaily"}
    assert set(rules_by_selection["EbsVolumes"]) == {"EbsDaily"}
    aurora = rules_by_selection["Aurora"]["AuroraDaily"]
    ebs = rules_by_selection["EbsVolumes"]["EbsDaily"]
    assert aurora["Lifecycle"]["DeleteAfterDays"] == 30 and aurora["CopyActions"]
    assert ebs["Lifecycle"]["DeleteAfterDays"] == 7 and "CopyActions" not in ebs


def test_registry_and_pipeline(assembly: Assembly) -> None:
    repositories = assembly.resources("Registry", "AWS::ECR::Repository").values()
    assert {r["Properties"]["RepositoryName"] for r in repositories} == {
        "textnlp-api", "textnlp-generation", "textnlp-validation"
    }
    template = assembly.template("Delivery")
    template.has_resource_properties("AWS::CodeBuild::Project", {"Environment": Match.object_like({
        "ComputeType": "BUILD_GENERAL1_LARGE", "Image": "aws/codebuild/standard:6.0",
    })})
    source = Match.object_like({"Configuration": Match.object_like({
        "FullRepositoryId": "inferloop/textnlp", "BranchName": "main"})})
    template.has_resource_properties("AWS::CodePipeline::Pipeline", {"Stages": Match.array_with([
        Match.object_like({"Name": "Source", "Actions": [source]}),
    ])})
    template.has_resource_properties("AWS::CodeDeploy::DeploymentGroup", {
        "DeploymentConfigName": "CodeDeployDefault.ECSLinear10PercentEvery1Minutes",
        "BlueGreenDeploymentConfiguration": Match.object_like({
            "TerminateBlueInstancesOnDeploymentSuccess": {
                "Action": "TERMINATE", "TerminationWaitTimeInMinutes": 5},
        }),
    })


def test_required_tags_everywhere(assembly: Assembly) -> None:
    required = {"Environment": "production", "Application": "textnlp",
                "CostCenter": "engineering", "Terraform": "false"}
    tagged = 0
    for section, template in assembly.templates.items():
        for name, resource in template["Resources"].items():
            tags = resource.get("Properties", {}).get("Tags")
            if isinstance(tags, list) and tags and isinstance(tags[0], dict) and "Key" in tags[0]:
                values = {t["Key"]: t["Value"] for t in tags}
            elif isinstance(tags, dict):
                values = tags
            else:
                continue
            tagged += 1
            for key, value in required.items():
                assert values.get(key) == value, f"{section}/{name} lacks {key}"
            assert "Owner" in values
    assert tagged > 100


def test_the_pipeline_migrates_before_it_deploys(assembly: Assembly) -> None:
    (pipeline,) = assembly.resources("Delivery", "AWS::CodePipeline::Pipeline").values()
    stages = [stage["Name"] for stage in pipeline["Properties"]["Stages"]]
    assert stages == ["Source", "Build", "Migrate", "Deploy"]
    projects = assembly.resources("Delivery", "AWS::CodeBuild::Project").values()
    (migrate,) = [p for p in projects if p["Properties"]["Name"] == "textnlp-production-migrate"]
    spec = json.dumps(migrate["Properties"]["Source"]["BuildSpec"])
    assert "--task-definition textnlp-migrate" in spec and "tasks-stopped" in spec
    # Once the schema is upgraded, the batch processor's family gets the new image too (the
    # state machine runs its latest revision; the old image refuses the new schema).
    after_check = spec[spec.index("exited with $CODE"):]
    assert "describe-task-definition --task-definition textnlp-batch-processor" in after_check
    assert "register-task-definition --cli-input-json file://textnlp-batch-processor" in after_check


def test_the_owner_tag_comes_from_context() -> None:
    from textnlp_infra.config import for_environment

    assert for_environment("production").tags.owner == "textnlp-team@example.com"
    chosen = for_environment("production", {"owner": "data-platform@corp.example"})
    assert chosen.tags.owner == "data-platform@corp.example"
