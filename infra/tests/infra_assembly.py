"""Shared helpers for the infra tests (kept out of conftest.py so test modules can import them)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

IN_CI = os.environ.get("CI", "").lower() == "true"


@dataclass(frozen=True)
class Assembly:
    directory: Path
    manifest: dict
    templates: dict[str, dict]  # section ("Network", "Compute"...) -> template JSON

    def template(self, section: str) -> Template:
        return Template.from_json(self.templates[section])

    def resources(self, section: str, type_: str) -> dict[str, dict]:
        return {
            name: resource
            for name, resource in self.templates[section]["Resources"].items()
            if resource["Type"] == type_
        }


def rest_methods(assembly: Assembly) -> list[tuple[str, str]]:
    """(resource path, HTTP method) of every method of the REST API, as API Gateway sees them."""
    return list(rest_method_properties(assembly))


def rest_method_properties(assembly: Assembly) -> dict[tuple[str, str], dict[str, Any]]:
    """Each method's properties by (resource path, HTTP method)."""
    resources = assembly.resources("Api", "AWS::ApiGateway::Resource")

    def path(logical: str) -> str:
        properties = resources[logical]["Properties"]
        parent = properties["ParentId"]
        prefix = path(parent["Ref"]) if "Ref" in parent else ""
        return f"{prefix}/{properties['PathPart']}"

    return {
        (path(m["Properties"]["ResourceId"]["Ref"]), m["Properties"]["HttpMethod"]): m[
            "Properties"]
        for m in assembly.resources("Api", "AWS::ApiGateway::Method").values()
        if "Ref" in m["Properties"]["ResourceId"]
    }


def rest_route(assembly: Assembly, http_method: str, path: str) -> dict[str, Any]:
    """The properties of the method that serves `http_method path`, routed as API Gateway
    routes (the rehearsal's router, on the synthesised tree)."""
    from rehearsal.gateway import Node, _candidates

    root = Node("root", "")
    for (resource, method), properties in rest_method_properties(assembly).items():
        node = root
        for part in [p for p in resource.split("/") if p]:
            child = next((c for c in node.children if c.part == part), None)
            if child is None:
                child = Node(part, part, parent=node)
                node.children.append(child)
            node = child
        node.methods[method] = properties
    segments = [s for s in path.split("/") if s]
    for node, params, _ in _candidates(root, segments, {}):
        found = node.methods.get(http_method) or node.methods.get("ANY")
        if found is not None:
            uri = str(found["Integration"]["Uri"])
            for name, value in params.items():
                uri = uri.replace("{" + name + "}", value)
            return {**found, "OriginPath": "/" + uri.split("/", 3)[3]}
    raise AssertionError(f"no route for {http_method} {path}")


def require_tool(path: str | None, name: str) -> str:
    """A missing tool skips locally and fails in CI (`CI=true`)."""
    if path:
        return path
    message = f"{name} is not installed (make infra-tools)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)
