"""The synthesised cloud assembly: stacks in deployment order, their templates and assets.

Synthesis runs in a child process with no `AWS_*` variable (as the infra tests do), so that no
credentials or region of the caller's shell reach it and the CDK's node process ends with it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INFRA_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = INFRA_DIR.parent
STAGE = "production"

_SYNTH = (
    "import sys\n"
    "from textnlp_infra.app import build_app\n"
    "app, _ = build_app(sys.argv[1], outdir=sys.argv[2])\n"
    "app.synth()\n"
)


class SynthesisError(RuntimeError):
    pass


@dataclass(frozen=True)
class Stack:
    name: str  # the artifact id, which dependencies name
    stack_name: str
    template: dict[str, Any]
    account: str
    region: str
    dependencies: tuple[str, ...]
    #: S3 object key of each file asset -> its directory or file in the assembly.
    assets: dict[str, Path] = field(default_factory=dict)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.template.get("Resources", {}))

    def of_type(self, type_: str) -> dict[str, dict[str, Any]]:
        return {name: r for name, r in self.resources.items() if r.get("Type") == type_}


@dataclass(frozen=True)
class CloudAssembly:
    directory: Path
    stacks: tuple[Stack, ...]  # in deployment order

    def stack(self, name: str) -> Stack:
        for stack in self.stacks:
            if stack.name == name:
                return stack
        raise KeyError(name)

    def resources_of_type(self, type_: str) -> list[tuple[Stack, str, dict[str, Any]]]:
        return [
            (stack, name, resource)
            for stack in self.stacks
            for name, resource in stack.of_type(type_).items()
        ]


def synthesise(outdir: Path, stage: str = STAGE) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    done = subprocess.run(
        [sys.executable, "-c", _SYNTH, stage, str(outdir)],
        cwd=INFRA_DIR, env=env, capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise SynthesisError(f"synthesis failed (exit {done.returncode}):\n{tail}")


def load(directory: Path) -> CloudAssembly:
    manifest = json.loads((directory / "manifest.json").read_text())
    artifacts: dict[str, dict[str, Any]] = manifest["artifacts"]
    stacks: dict[str, Stack] = {}
    for name, artifact in artifacts.items():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        _, _, where = artifact["environment"].partition("aws://")
        account, _, region = where.partition("/")
        properties = artifact.get("properties", {})
        template = json.loads((directory / properties["templateFile"]).read_text())
        stacks[name] = Stack(
            name=name,
            stack_name=properties.get("stackName", name),
            template=template,
            account=account,
            region=region,
            dependencies=tuple(
                d for d in artifact.get("dependencies", [])
                if artifacts.get(d, {}).get("type") == "aws:cloudformation:stack"
            ),
            assets=_file_assets(directory, artifacts, artifact),
        )
    return CloudAssembly(directory, tuple(stacks[name] for name in _deployment_order(stacks)))


def _file_assets(
    directory: Path, artifacts: dict[str, dict[str, Any]], artifact: dict[str, Any]
) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for dependency in artifact.get("dependencies", []):
        entry = artifacts.get(dependency, {})
        if entry.get("type") != "cdk:asset-manifest":
            continue
        assets = json.loads((directory / entry["properties"]["file"]).read_text())
        for asset in assets.get("files", {}).values():
            for destination in asset.get("destinations", {}).values():
                found[destination["objectKey"]] = directory / asset["source"]["path"]
    return found


def _deployment_order(stacks: dict[str, Stack]) -> list[str]:
    """Dependencies first; otherwise the manifest's own order."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            raise SynthesisError(f"stack dependency cycle through {name}")
        visiting.add(name)
        for dependency in stacks[name].dependencies:
            if dependency in stacks:
                visit(dependency)
        visiting.discard(name)
        order.append(name)

    for name in stacks:
        visit(name)
    return order
