"""Synthesis is offline and deterministic: no lookups, no dummy availability zones."""

from __future__ import annotations

import json

from infra_assembly import Assembly

SECTIONS = {
    "DisasterRecovery", "Security", "Network", "Data", "Messaging", "Registry", "Compute",
    "ModelServing", "Serverless", "Api", "Monitoring", "Backup", "Delivery",
}


def test_every_stack_is_synthesised(assembly: Assembly) -> None:
    assert set(assembly.templates) == SECTIONS


def test_synthesis_needs_no_lookup(assembly: Assembly) -> None:
    # A context value CDK would have fetched from AWS shows up as "missing" in the manifest.
    assert not assembly.manifest.get("missing")


def test_no_dummy_availability_zone(assembly: Assembly) -> None:
    for template in assembly.templates.values():
        assert "dummy" not in json.dumps(template)


def test_subnets_use_the_pinned_zones(assembly: Assembly) -> None:
    subnets = assembly.resources("Network", "AWS::EC2::Subnet").values()
    zones = {subnet["Properties"]["AvailabilityZone"] for subnet in subnets}
    assert zones == {"us-east-1a", "us-east-1b", "us-east-1c"}


def test_stacks_are_pinned_to_account_and_regions(assembly: Assembly) -> None:
    environments = {
        artifact["environment"]
        for artifact in assembly.manifest["artifacts"].values()
        if artifact["type"] == "aws:cloudformation:stack"
    }
    assert environments == {
        "aws://123456789012/us-east-1", "aws://123456789012/us-west-2",
    }
