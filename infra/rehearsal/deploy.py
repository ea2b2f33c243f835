"""Deploying the templates to emulated AWS: each resource's physical id and attributes.

Resources are deployed in stack order, and within a stack in the order their references need
(a resource is deployed when something first resolves a reference to it). Types with a
deployer (`deployers_*` modules) are created in moto or in a stand-in; a few more get
CloudFormation-like names and ARNs without being created anywhere (`names`), so that the
values that mention them read as in AWS. Everything else stays a visible placeholder.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rehearsal import names
from rehearsal.assembly import CloudAssembly, Stack
from rehearsal.aws import MotoAws
from rehearsal.ledger import Ledger
from rehearsal.template import Physical, Resolver, placeholder


class StandInProvider(Protocol):
    """Starts the data layer's stand-ins when the deployment reaches them."""

    def aurora(self, *, user: str, password: str, database: str, port: int) -> tuple[str, int]: ...

    def elasticache(
        self, *, auth_token: str, tls: bool, shards: int, port: int
    ) -> tuple[str, int]: ...


@dataclass
class Deployed:
    stack: Stack
    logical_id: str
    type: str
    properties: dict[str, Any]
    physical: Physical

    @property
    def label(self) -> str:
        return f"{self.stack.name}/{self.logical_id}"


@dataclass
class DeployContext:
    deployment: Deployment
    stack: Stack
    logical_id: str
    type: str
    properties: dict[str, Any]

    @property
    def region(self) -> str:
        return self.stack.region

    @property
    def account(self) -> str:
        return self.stack.account

    @property
    def ledger(self) -> Ledger:
        return self.deployment.ledger

    def client(self, service: str) -> Any:
        return self.deployment.aws.client(service, self.region)

    def generated_name(self, max_length: int = 80, suffix: str = "") -> str:
        return names.generated_name(self.stack, self.logical_id, max_length, suffix)


Deployer = Callable[[DeployContext], Physical]


class Deployment:
    def __init__(
        self, assembly: CloudAssembly, aws: MotoAws, ledger: Ledger,
        stand_ins: StandInProvider, deployers: dict[str, Deployer], work_dir: Path,
    ) -> None:
        self.assembly = assembly
        #: Files the deployment writes (inline Lambda code), never inside the assembly.
        self.work_dir = work_dir
        self.aws = aws
        self.ledger = ledger
        self.stand_ins = stand_ins
        self._deployers = deployers
        self._resolvers: dict[str, Resolver] = {}
        self._physical: dict[tuple[str, str], Physical | None] = {}
        self._deployed: dict[tuple[str, str], Deployed] = {}
        self._in_progress: set[tuple[str, str]] = set()

    # -- deploying ------------------------------------------------------------------------
    def deploy(self, types: Iterable[str] | None = None) -> None:
        wanted = set(types) if types is not None else set(self._deployers)
        for stack in self.assembly.stacks:
            for logical_id, resource in stack.resources.items():
                if resource.get("Type") in wanted:
                    self.physical(stack, logical_id)

    def resolver(self, stack: Stack) -> Resolver:
        if stack.name not in self._resolvers:
            self._resolvers[stack.name] = Resolver(stack, self)
        return self._resolvers[stack.name]

    def physical(self, stack: Stack, logical_id: str) -> Physical | None:
        key = (stack.name, logical_id)
        if key in self._physical:
            return self._physical[key]
        if key in self._in_progress:
            return None  # a reference cycle: the value stays a placeholder
        self._in_progress.add(key)
        try:
            physical = self._create(stack, logical_id)
        finally:
            self._in_progress.discard(key)
        self._physical[key] = physical
        return physical

    def _create(self, stack: Stack, logical_id: str) -> Physical | None:
        resource = stack.resources[logical_id]
        type_ = str(resource.get("Type"))
        deployer = self._deployers.get(type_)
        if deployer is not None:
            properties = self.resolver(stack).resolve(resource.get("Properties", {}))
            context = DeployContext(self, stack, logical_id, type_, properties)
            physical = deployer(context)
            self._deployed[(stack.name, logical_id)] = Deployed(
                stack, logical_id, type_, properties, physical
            )
            return physical
        namer = names.NAMERS.get(type_)
        if namer is None:
            return None
        return namer(names.NameContext(stack, logical_id, resource, self.resolver(stack)))

    # -- what was deployed ----------------------------------------------------------------
    def deployed(self, type_: str) -> list[Deployed]:
        return [d for d in self._deployed.values() if d.type == type_]

    def described(self, type_: str) -> list[Deployed]:
        """Resources of a type the rehearsal emulates itself (API Gateway, ALB...), resolved."""
        found = []
        for stack, logical_id, resource in self.assembly.resources_of_type(type_):
            deployed = self._deployed.get((stack.name, logical_id))
            if deployed is None:
                physical = self.physical(stack, logical_id) or Physical(
                    placeholder(f"Ref {logical_id}")
                )
                properties = self.resolver(stack).resolve(resource.get("Properties", {}))
                deployed = Deployed(stack, logical_id, type_, properties, physical)
                self._deployed[(stack.name, logical_id)] = deployed
            found.append(deployed)
        return found

    def find(self, type_: str, ref: Any) -> Deployed | None:
        """The resource of `type_` whose Ref or Arn is `ref`."""
        for deployed in self.described(type_):
            arn = deployed.physical.attributes.get("Arn")
            if ref in (deployed.physical.ref, arn):
                return deployed
        return None

    # -- Lookups ------------------------------------------------------------------------------
    def export(self, name: str) -> Any:
        for stack in self.assembly.stacks:
            for output in stack.template.get("Outputs", {}).values():
                if output.get("Export", {}).get("Name") == name:
                    return self.resolver(stack).resolve(output["Value"])
        return placeholder(f"Fn::ImportValue {name} (no stack exports it)")

    def secret_value(self, secret_id: str, json_key: str) -> str | None:
        region = secret_id.split(":")[3] if secret_id.startswith("arn:") else None
        client = self.aws.client("secretsmanager", region or self.assembly.stacks[-1].region)
        try:
            raw = client.get_secret_value(SecretId=secret_id)["SecretString"]
        except client.exceptions.ResourceNotFoundException:
            return None
        if not json_key:
            return str(raw)
        try:
            value = json.loads(raw).get(json_key)
        except (ValueError, AttributeError):
            return None
        return None if value is None else str(value)


def camel_keys(value: Any, keep: frozenset[str] = frozenset()) -> Any:
    """CloudFormation's PascalCase properties -> the API's camelCase, except inside `keep`."""
    if isinstance(value, list):
        return [camel_keys(item, keep) for item in value]
    if not isinstance(value, dict):
        return value
    return {
        _camel(key): item if key in keep else camel_keys(item, keep)
        for key, item in value.items()
    }


def _camel(key: str) -> str:
    head = re.match(r"[A-Z]+(?=[A-Z][a-z]|$)|[A-Z]", key)
    if head is None:
        return key
    return head.group(0).lower() + key[head.end():]
