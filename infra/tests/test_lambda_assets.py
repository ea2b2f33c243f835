"""The synthesised Lambda asset runs on its own: each handler is imported from the asset in a
bare interpreter that sees only the asset and a stand-in for the Lambda runtime's boto3.

The stand-in holds boto3, botocore and their pure-Python dependencies linked from this
environment, as the python3.12 runtime bundles them; nothing else (no pydantic, no
site-packages, no PYTHONPATH, a fresh working directory).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from pydantic import SecretStr
from textnlp.auth.tokens import TokenService
from textnlp.config import AuthSettings

from infra_assembly import Assembly
from textnlp_infra.lambda_asset import (
    RUNTIME_PROVIDED,
    LambdaAssetError,
    build_lambda_asset,
    copy_distribution,
    tree_digest,
)

SECRET = "asset-test-signing-key-" * 3
RUNTIME_DISTRIBUTIONS = sorted(RUNTIME_PROVIDED)
REST_ARN = "arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod/POST/api/v1/generate/text"

# Runs in the bare interpreter: argv = asset dir, runtime dir, then a JSON job description.
PROBE = r"""
import importlib, importlib.util, json, sys
asset, runtime, job = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sys.path[:0] = [asset, runtime]
module_name, _, function_name = job["handler"].rpartition(".")
module = importlib.import_module(module_name)
result = {"handler_callable": callable(getattr(module, function_name)),
          "module_file": module.__file__}
if job["kind"] == "authorizer":
    result["answer"] = module.handler(job["event"])
    result["jwt_file"] = sys.modules["jwt"].__file__
    result["boto3_file"] = getattr(sys.modules.get("boto3"), "__file__", None)
elif job["kind"] == "migration":
    config = module.MigrationConfig.from_environ(job["environ"])
    result["arguments"] = module.run_task_arguments(config)
    result["boto3_file"] = importlib.import_module("boto3").__file__
    result["ecs_client"] = type(module._client("ecs")).__name__
else:
    uploads = module.uploads_in(job["event"])
    config = module.TriggerConfig.from_environ(job["environ"])
    result["arguments"] = [module.start_execution_arguments(config, u) for u in uploads]
    result["boto3_file"] = importlib.import_module("boto3").__file__
    result["s3_client"] = type(module._client("s3")).__name__
result["pydantic_visible"] = importlib.util.find_spec("pydantic") is not None
result["sys_path"] = sys.path
print(json.dumps(result))
"""


def asset_directories(assembly: Assembly) -> dict[str, Path]:
    """Handler -> its asset directory, from the functions' S3 keys and the asset manifests."""
    sources: dict[str, str] = {}
    for manifest in assembly.directory.glob("*.assets.json"):
        for asset_hash, entry in json.loads(manifest.read_text())["files"].items():
            sources[asset_hash] = entry["source"]["path"]
    found = {}
    functions = [*assembly.resources("Serverless", "AWS::Lambda::Function").values(),
                 *assembly.resources("Compute", "AWS::Lambda::Function").values()]
    for resource in functions:
        properties = resource["Properties"]
        if not properties["Handler"].startswith("textnlp."):
            continue  # CDK's own custom resource providers (the trigger's)
        asset_hash = properties["Code"]["S3Key"].removesuffix(".zip")
        directory = assembly.directory / sources[asset_hash]
        assert directory.name == f"asset.{asset_hash}" and directory.is_dir()
        found[properties["Handler"]] = directory
    return found


@pytest.fixture(scope="module")
def runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """boto3 and its dependencies, linked from this environment (the runtime's own copy)."""
    runtime = tmp_path_factory.mktemp("lambda-runtime")
    for name in RUNTIME_DISTRIBUTIONS:
        dist = metadata.distribution(name)
        tops = {Path(f.as_posix()).parts[0] for f in dist.files or [] if f.parts[0] != ".."}
        for top in tops - {"__pycache__"}:
            origin = Path(str(dist.locate_file(top)))
            if origin.exists() and not (runtime / top).exists():
                (runtime / top).symlink_to(origin)
    return runtime


def run_bare(asset: Path, runtime: Path, job: dict, cwd: Path, env: dict[str, str]) -> dict:
    """Run PROBE with `python -I -S` (no site-packages, no user site, no PYTHON* variables)."""
    clean_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
    finished = subprocess.run(
        [sys.executable, "-I", "-S", "-c", PROBE, str(asset), str(runtime), json.dumps(job)],
        cwd=cwd, env=clean_env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert finished.returncode == 0, finished.stderr
    return dict(json.loads(finished.stdout.strip().splitlines()[-1]))


def assert_bare(result: dict, asset: Path, runtime: Path) -> None:
    assert result["pydantic_visible"] is False
    assert all(
        p in (str(asset), str(runtime)) or "site-packages" not in p for p in result["sys_path"]
    )
    assert result["handler_callable"] and result["module_file"].startswith(str(asset))


def test_every_handler_shares_one_pure_python_asset(assembly: Assembly) -> None:
    directories = asset_directories(assembly)
    assert set(directories) == {
        "textnlp.lambdas.authorizer.handler", "textnlp.lambdas.batch_trigger.handler",
        "textnlp.lambdas.migration_trigger.handler",
    }
    (asset,) = set(directories.values())
    files = [p.relative_to(asset) for p in asset.rglob("*") if p.is_file()]
    tops = {f.parts[0] for f in files}
    assert {"textnlp", "jwt"} <= tops
    assert not {"boto3", "botocore", "pydantic", "pydantic_core"} & tops
    assert not [f for f in files if f.suffix in {".so", ".pyd", ".pyc", ".gguf"}]
    assert not [f for f in files if "__pycache__" in f.parts or ".textnlp" in f.parts]
    assert any(f.name == "RECORD" and f.parts[0].startswith("pyjwt-") for f in files)


def test_authorizer_allows_a_real_token_from_the_asset(
    assembly: Assembly, runtime_dir: Path, tmp_path: Path
) -> None:
    asset = asset_directories(assembly)["textnlp.lambdas.authorizer.handler"]
    token = TokenService(AuthSettings(jwt_secret=SecretStr(SECRET))).issue_pair("user-9", "user")
    event = {"type": "TOKEN", "authorizationToken": f"Bearer {token.access_token}",
             "methodArn": REST_ARN}
    job = {"kind": "authorizer", "handler": "textnlp.lambdas.authorizer.handler", "event": event}
    result = run_bare(asset, runtime_dir, job, tmp_path, {"TEXTNLP_AUTH__JWT_SECRET": SECRET})
    assert_bare(result, asset, runtime_dir)
    assert result["jwt_file"].startswith(str(asset))
    assert result["boto3_file"] is None  # without a session table: no AWS call, no boto3
    answer = result["answer"]
    assert answer["principalId"] == "user-9" and answer["context"]["userId"] == "user-9"
    assert answer["policyDocument"]["Statement"] == [{
        "Action": "execute-api:Invoke", "Effect": "Allow",
        "Resource": "arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod/*",
    }]


def test_authorizer_reads_the_session_table_from_the_asset(
    assembly: Assembly, runtime_dir: Path, tmp_path: Path
) -> None:
    """With the DynamoDB session store the handler builds its client from the runtime's boto3;
    a table it cannot reach (nothing listens on the endpoint) denies: fail closed."""
    asset = asset_directories(assembly)["textnlp.lambdas.authorizer.handler"]
    token = TokenService(AuthSettings(jwt_secret=SecretStr(SECRET))).issue_pair("user-9", "user")
    event = {"type": "TOKEN", "authorizationToken": f"Bearer {token.access_token}",
             "methodArn": REST_ARN}
    job = {"kind": "authorizer", "handler": "textnlp.lambdas.authorizer.handler", "event": event}
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{closed.getsockname()[1]}"
    environ = {
        "TEXTNLP_AUTH__JWT_SECRET": SECRET, "TEXTNLP_AUTH__SESSION_STORE": "dynamodb",
        "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "asset-test", "AWS_SECRET_ACCESS_KEY": "asset-test",
    }
    result = run_bare(asset, runtime_dir, job, tmp_path, environ)
    assert_bare(result, asset, runtime_dir)
    assert result["boto3_file"].startswith(str(runtime_dir))  # the client was built
    assert result["answer"]["principalId"] == "anonymous"
    (statement,) = result["answer"]["policyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"


def test_batch_trigger_helpers_run_from_the_asset(
    assembly: Assembly, runtime_dir: Path, tmp_path: Path
) -> None:
    asset = asset_directories(assembly)["textnlp.lambdas.batch_trigger.handler"]
    key = "prompts/user-uploads/u1/reviews+2026.jsonl"
    event = {"Records": [
        {"s3": {"bucket": {"name": "textnlp-production"}, "object": {"key": key, "eTag": "e1"}}},
        {"s3": {"bucket": {"name": "textnlp-production"}, "object": {"key": "generated/x"}}},
    ]}
    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:textnlp-batch"
    environ = {"STATE_MACHINE_ARN": machine}
    job = {"kind": "batch", "handler": "textnlp.lambdas.batch_trigger.handler",
           "event": event, "environ": environ}
    result = run_bare(asset, runtime_dir, job, tmp_path, {"AWS_DEFAULT_REGION": "us-east-1"})
    assert_bare(result, asset, runtime_dir)
    assert result["boto3_file"].startswith(str(runtime_dir)) and result["s3_client"] == "S3"
    (arguments,) = result["arguments"]
    assert arguments["stateMachineArn"] == machine
    assert json.loads(arguments["input"]) == {
        "bucket": "textnlp-production", "key": "prompts/user-uploads/u1/reviews 2026.jsonl",
        "etag": "e1"}
    assert 0 < len(arguments["name"]) <= 80


def test_migration_trigger_helpers_run_from_the_asset(
    assembly: Assembly, runtime_dir: Path, tmp_path: Path
) -> None:
    asset = asset_directories(assembly)["textnlp.lambdas.migration_trigger.handler"]
    environ = {
        "CLUSTER": "textnlp-production", "CONTAINER_NAME": "migrate",
        "TASK_DEFINITION_ARN": "arn:aws:ecs:us-east-1:123456789012:task-definition/"
                               "textnlp-migrate:7",
        "SUBNETS": "subnet-a, subnet-b", "SECURITY_GROUPS": "sg-app",
    }
    job = {"kind": "migration", "handler": "textnlp.lambdas.migration_trigger.handler",
           "environ": environ}
    result = run_bare(asset, runtime_dir, job, tmp_path, {"AWS_DEFAULT_REGION": "us-east-1"})
    assert_bare(result, asset, runtime_dir)
    assert result["boto3_file"].startswith(str(runtime_dir)) and result["ecs_client"] == "ECS"
    arguments = result["arguments"]
    assert arguments["taskDefinition"] == environ["TASK_DEFINITION_ARN"]
    assert arguments["networkConfiguration"]["awsvpcConfiguration"] == {
        "subnets": ["subnet-a", "subnet-b"], "securityGroups": ["sg-app"],
        "assignPublicIp": "DISABLED"}


def test_the_asset_directory_depends_only_on_its_contents(tmp_path: Path) -> None:
    first = build_lambda_asset(tmp_path / "a")
    again = build_lambda_asset(tmp_path / "a")
    elsewhere = build_lambda_asset(tmp_path / "b")
    assert first == again and first.name == elsewhere.name
    assert tree_digest(first) == tree_digest(elsewhere)
    assert [p.name for p in (tmp_path / "a").iterdir()] == [first.name]  # no leftovers


def test_compiled_or_runtime_distributions_are_refused(tmp_path: Path) -> None:
    compiled = next(
        dist.metadata["Name"] for dist in metadata.distributions()
        if "Root-Is-Purelib: false" in (dist.read_text("WHEEL") or "")
    )
    with pytest.raises(LambdaAssetError, match="not pure Python"):
        copy_distribution(compiled, tmp_path)
    with pytest.raises(LambdaAssetError, match="part of the Lambda runtime"):
        copy_distribution("boto3", tmp_path)
    with pytest.raises(LambdaAssetError, match="not installed"):
        copy_distribution("no-such-distribution-textnlp", tmp_path)
