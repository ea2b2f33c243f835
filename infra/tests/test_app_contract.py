"""The deployment against the real application: every variable and secret the synthesised task
definitions and Lambdas set loads into the app's `Settings` and builds the app, and every route
of the app is reachable through the API Gateway tree.

Values CloudFormation resolves at deployment (endpoints, ARNs, secrets) stand in as placeholders
of the type the setting wants; the rehearsal (`make rehearse`) runs the same environment with
real values.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from opentelemetry import trace
from textnlp.api.app import create_app
from textnlp.api.console import PAGE_ROUTERS
from textnlp.api.console.session import CONSOLE_PATH
from textnlp.config import Settings, load_settings, unknown_variables
from textnlp.deployment import GATEWAY_STREAM_PATH

from infra_assembly import Assembly, rest_methods, rest_route

APP_SECTIONS = ("Compute",)


#: The console's live job events (``api/console/pages/jobs.py``: Server-Sent Events).
CONSOLE_EVENTS = "/console/jobs/events"


def _containers(assembly: Assembly) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for task in assembly.resources("Compute", "AWS::ECS::TaskDefinition").values():
        properties = task["Properties"]
        for container in properties["ContainerDefinitions"]:
            if container.get("Essential", True) is False:
                continue  # the trace collector sidecar is AWS's image, not the app
            found.append((f"{properties['Family']}/{container['Name']}", container))
    return found


def _placeholder(name: str) -> str:
    """A value CloudFormation fills in at deployment, shaped for the setting it lands in."""
    field = _field(name)
    annotation = getattr(field, "annotation", str)
    if annotation is int:
        return "5432"
    if annotation is bool:
        return "true"
    return f"resolved-at-deployment-{name.lower()}"


def _field(name: str) -> Any:
    model: Any = Settings
    field = None
    for part in name.removeprefix("TEXTNLP_").lower().split("__"):
        field = model.model_fields.get(part)
        if field is None:
            return None
        model = field.annotation
    return field


def deployed_environment(container: dict[str, Any]) -> dict[str, str]:
    """The container's variables and secrets as the task gets them, placeholders for what
    CloudFormation and ECS resolve."""
    environment = {}
    for variable in container.get("Environment", []):
        value = variable["Value"]
        environment[variable["Name"]] = (
            value if isinstance(value, str) else _placeholder(variable["Name"])
        )
    for secret in container.get("Secrets", []):  # injected by ECS at task start
        environment[secret["Name"]] = _placeholder(secret["Name"])
    return environment


def test_every_container_environment_loads_and_builds_the_app(assembly: Assembly) -> None:
    containers = _containers(assembly)
    assert {name.split("/")[0] for name, _ in containers} >= {
        "textnlp-api", "textnlp-generation", "textnlp-validation", "textnlp-batch-processor",
        "textnlp-migrate", "textnlp-jobs-purge",
    }
    for name, container in containers:
        environment = deployed_environment(container)
        assert unknown_variables(environment) == [], name
        settings = load_settings(environ=environment)
        assert settings.profile == "aws" and settings.environment == "production", name
        assert settings.database_url.startswith("postgresql+psycopg://"), name
        assert settings.cache_url is not None and settings.cache_url.startswith("rediss://"), name
        assert settings.cache.cluster, name
        assert settings.queue.backend == "sqs" and settings.storage.backend == "s3", name
        assert str(settings.home).startswith("/tmp/"), name  # the writable volume
        create_app(settings)  # routes, middleware and the composition root, nothing opened
    # The deployed settings export spans to the task's collector sidecar (localhost:4318): the
    # process's provider is stopped, or the AWS calls of later tests would be exported there.
    provider = trace.get_tracer_provider()
    if hasattr(provider, "shutdown"):
        provider.shutdown()


def test_every_lambda_environment_is_the_apps(assembly: Assembly) -> None:
    functions = assembly.resources("Serverless", "AWS::Lambda::Function").values()
    assert functions
    for function in functions:
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        environment = {
            name: value if isinstance(value, str) else _placeholder(name)
            for name, value in variables.items()
        }
        assert unknown_variables(environment) == []
        load_settings(environ=environment)


def _matches(gateway_path: str, app_path: str) -> bool:
    pattern = ""
    for part in gateway_path.strip("/").split("/"):
        if part.endswith("+}"):
            pattern += "/.+"
        elif part.startswith("{"):
            pattern += "/[^/]+"
        else:
            pattern += "/" + re.escape(part)
    return re.fullmatch(pattern, app_path) is not None


@pytest.fixture(scope="module")
def app_paths() -> list[str]:
    schema = create_app(load_settings(environ={})).openapi()
    return sorted(schema["paths"])


def test_every_app_route_is_reachable_through_the_gateway(
    assembly: Assembly, app_paths: list[str]
) -> None:
    gateway = [path for path, _ in rest_methods(assembly)]
    internal = {GATEWAY_STREAM_PATH}  # reached by the WebSocket API only
    unreachable = [
        path for path in app_paths
        if path not in internal and not any(_matches(g, path) for g in gateway)
    ]
    assert unreachable == []
    assert "/openapi.json" in gateway and "/docs" in gateway


def test_every_event_stream_of_the_app_streams_through_the_gateway(assembly: Assembly) -> None:
    """The app's Server-Sent Events answers (the documented ones, and the console's live job
    events, which no schema lists) reach a method whose integration streams them."""
    app = create_app(load_settings(environ={}))
    schema = app.openapi()
    streams = [
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if any("text/event-stream" in answer.get("content", {})
               for answer in operation.get("responses", {}).values())
    ]
    assert {path for _, path in streams} >= {"/api/v1/generate/text", "/v1/chat/completions"}
    console = {CONSOLE_PATH + getattr(route, "path", "") for router in PAGE_ROUTERS
               for route in router.routes}
    assert CONSOLE_EVENTS in console
    streams.append(("GET", CONSOLE_EVENTS))
    for method, path in streams:
        route = rest_route(assembly, method, path)
        assert route["Integration"].get("ResponseTransferMode") == "STREAM", (method, path)
        assert route["OriginPath"] == path


def test_the_apps_storage_keys_are_the_designs_layout(assembly: Assembly) -> None:
    """The app's key prefixes (``textnlp.adapters.storage.Keys``) are the layout the bucket's
    lifecycle rules, upload trigger and IAM policies are written for."""
    from textnlp.adapters.storage.keys import Keys

    from textnlp_infra.constructs.storage import KEY_LAYOUT

    used = {Keys.TEMPLATES, Keys.USER_UPLOADS, Keys.GENERATED, Keys.BATCH_JOBS, Keys.VALIDATION}
    assert used <= set(KEY_LAYOUT)
    assert Keys.batch_result("j", "jsonl").startswith(Keys.BATCH_JOBS)
    assert Keys.upload("u", "f.csv").startswith(Keys.USER_UPLOADS)
    (bucket,) = [
        b for b in assembly.resources("Data", "AWS::S3::Bucket").values()
        if b["Properties"].get("LifecycleConfiguration")
    ]
    prefixes = {
        rule["Prefix"] for rule in bucket["Properties"]["LifecycleConfiguration"]["Rules"]
        if rule.get("Prefix")
    }
    # Each rule's prefix is a part of the layout, or holds some (models/, validation/).
    assert all(any(entry.startswith(prefix) for entry in KEY_LAYOUT) for prefix in prefixes)
