"""Design section 7: the Lambdas and the upload trigger."""

from __future__ import annotations

from aws_cdk.assertions import Match

from infra_assembly import Assembly


def test_lambdas_from_the_application_source(assembly: Assembly) -> None:
    functions = assembly.resources("Serverless", "AWS::Lambda::Function").values()
    handlers = {f["Properties"]["Handler"]: f["Properties"] for f in functions}
    assert set(handlers) == {
        "textnlp.lambdas.authorizer.handler", "textnlp.lambdas.batch_trigger.handler"
    }
    for properties in handlers.values():
        assert properties["Runtime"].startswith("python3")
        assert len(properties["VpcConfig"]["SubnetIds"]) == 3
        assert properties["TracingConfig"] == {"Mode": "Active"}


def test_upload_trigger(assembly: Assembly) -> None:
    template = assembly.template("Serverless")
    template.has_resource_properties("AWS::Events::Rule", {
        "EventPattern": Match.object_like({
            "source": ["aws.s3"],
            "detail": {"bucket": {"name": ["textnlp-production"]},
                       "object": {"key": [{"prefix": "prompts/user-uploads/"}]}},
        }),
    })
    bucket = next(
        b for b in assembly.resources("Data", "AWS::S3::Bucket").values()
        if b["Properties"]["BucketName"] == "textnlp-production"
    )
    assert bucket["Properties"]["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }


def test_batch_trigger_runs_on_spot(assembly: Assembly) -> None:
    assembly.template("Serverless").has_resource_properties("AWS::Lambda::Function", {
        "Handler": "textnlp.lambdas.batch_trigger.handler",
        "Environment": {"Variables": Match.object_like({"CAPACITY_PROVIDER": "FARGATE_SPOT"})},
    })
