"""Design section 12, model serving costs: each model hosted on instances, serverless inference
or a multi-model endpoint, as its configuration says."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from aws_cdk import App, Environment
from aws_cdk.assertions import Template

from textnlp_infra.config import (
    EnvConfig,
    ModelServingConfig,
    MultiModelEndpoint,
    ServerlessModel,
    for_environment,
)
from textnlp_infra.stacks.model_serving import ModelServingStack, has_instance_storage
from textnlp_infra.stacks.network import NetworkStack
from textnlp_infra.stacks.security import SecurityStack

SERVERLESS = ServerlessModel("reviews-small", "models/fine-tuned/reviews-small/model.tar.gz",
                             memory_size_mb=4096, max_concurrency=10)
SHARED = MultiModelEndpoint("small-models", "models/small/", instance_type="ml.c5.xlarge")


def _config() -> EnvConfig:
    config = for_environment("production", {})
    serving = replace(config.model_serving, serverless=(SERVERLESS,), multi_model=(SHARED,))
    return replace(config, model_serving=serving)


@pytest.fixture(scope="module")
def hosting() -> Iterator[Template]:
    """The model-serving stack, with a serverless model and a multi-model endpoint added."""
    saved = {key: os.environ.pop(key) for key in list(os.environ) if key.startswith("AWS_")}
    try:
        config = _config()
        app = App()
        env = Environment(account=config.account, region=config.region)
        security = SecurityStack(app, "Security", config=config, env=env)
        network = NetworkStack(app, "Network", config=config, logs_key=security.keys.logs,
                               env=env)
        stack = ModelServingStack(app, "ModelServing", config=config, network=network,
                                  security=security, env=env)
        yield Template.from_stack(stack)
    finally:
        os.environ.update(saved)


def _models(template: Template) -> dict[str, dict]:
    models = template.find_resources("AWS::SageMaker::Model")
    return {m["Properties"]["ModelName"]: m["Properties"] for m in models.values()}


def _endpoint_configs(template: Template) -> dict[str, dict]:
    configs = template.find_resources("AWS::SageMaker::EndpointConfig")
    return {c["Properties"]["EndpointConfigName"]: c["Properties"] for c in configs.values()}


def test_instance_models_keep_the_designs_endpoint(hosting: Template) -> None:
    models = _models(hosting)
    for name in ("gpt-j-6b-model", "llama-7b-model"):
        assert models[name]["EnableNetworkIsolation"] is True
        assert len(models[name]["VpcConfig"]["Subnets"]) == 3
    hosting.has_resource_properties("AWS::SageMaker::Endpoint", {
        "EndpointName": "textnlp-multi-model"})


def test_a_serverless_model_has_memory_and_concurrency_and_no_instances(
    hosting: Template,
) -> None:
    (variant,) = _endpoint_configs(hosting)["textnlp-reviews-small"]["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 4096, "MaxConcurrency": 10}
    assert not {"InstanceType", "InitialInstanceCount"} & set(variant)
    hosting.has_resource_properties("AWS::SageMaker::Endpoint", {
        "EndpointName": "textnlp-reviews-small"})


def test_a_serverless_model_has_no_vpc_and_a_cpu_image(hosting: Template) -> None:
    # Serverless inference supports neither VPC configuration nor network isolation, nor GPUs.
    model = _models(hosting)["reviews-small-model"]
    assert "VpcConfig" not in model and model["EnableNetworkIsolation"] is False
    container = model["PrimaryContainer"]
    assert container["Image"] == ModelServingConfig().cpu_inference_image
    assert "-cpu-" in container["Image"]
    assert container["ModelDataUrl"] == (
        "s3://textnlp-production/models/fine-tuned/reviews-small/model.tar.gz")


def test_a_multi_model_endpoint_serves_an_s3_prefix(hosting: Template) -> None:
    model = _models(hosting)["small-models-models"]
    assert model["PrimaryContainer"]["Mode"] == "MultiModel"
    assert model["PrimaryContainer"]["ModelDataUrl"] == "s3://textnlp-production/models/small/"
    assert model["EnableNetworkIsolation"] is True and "VpcConfig" in model
    config = _endpoint_configs(hosting)["textnlp-small-models"]
    assert "KmsKeyId" in config  # instances have storage volumes to encrypt
    (variant,) = config["ProductionVariants"]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.c5.xlarge", 1)


def test_instances_with_local_storage_get_no_volume_key(hosting: Template) -> None:
    # SageMaker's CreateEndpointConfig fails for a KmsKeyId with an instance that has NVMe
    # instance storage (the design's ml.g4dn variants): their hardware encrypts it.
    config = _endpoint_configs(hosting)["textnlp-multi-model"]
    assert {v["InstanceType"] for v in config["ProductionVariants"]} == {
        "ml.g4dn.xlarge", "ml.g4dn.2xlarge"}
    assert "KmsKeyId" not in config
    (resource,) = [
        r for r in hosting.find_resources("AWS::SageMaker::EndpointConfig").values()
        if r["Properties"]["EndpointConfigName"] == "textnlp-multi-model"
    ]
    assert [s["id"] for s in resource["Metadata"]["checkov"]["skip"]] == ["CKV_AWS_98"]


@pytest.mark.parametrize(("instance_type", "local"), [
    ("ml.g4dn.xlarge", True), ("ml.g5.2xlarge", True), ("ml.p4d.24xlarge", True),
    ("ml.m5d.large", True), ("ml.c6gd.large", True), ("ml.p3dn.24xlarge", True),
    ("ml.g6e.xlarge", True), ("ml.c5.xlarge", False), ("ml.m5.large", False),
    ("ml.p3.2xlarge", False), ("ml.inf2.xlarge", False), ("ml.g5g.xlarge", False),
])
def test_which_instances_have_local_storage(instance_type: str, local: bool) -> None:
    assert has_instance_storage(instance_type) is local


def test_the_application_may_invoke_every_endpoint() -> None:
    assert _config().model_serving.endpoint_names == (
        "textnlp-multi-model", "textnlp-reviews-small", "textnlp-small-models")


@pytest.mark.parametrize(("build", "message"), [
    (lambda: ServerlessModel("m", "models/m.tar.gz", memory_size_mb=8192), "memory_size_mb"),
    (lambda: ServerlessModel("m", "models/m.tar.gz", max_concurrency=0), "max_concurrency"),
    (lambda: MultiModelEndpoint("m", "models/m.tar.gz"), "ending in '/'"),
])
def test_hosting_limits_are_checked_before_synthesis(
    build: Callable[[], object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build()
