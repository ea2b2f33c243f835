"""Design section 1: VPC, subnet tiers, security groups, endpoints."""

from __future__ import annotations

from aws_cdk.assertions import Match

from infra_assembly import Assembly


def test_vpc_cidr(assembly: Assembly) -> None:
    assembly.template("Network").has_resource_properties(
        "AWS::EC2::VPC", {"CidrBlock": "10.0.0.0/16"}
    )


def test_subnet_cidrs_per_tier(assembly: Assembly) -> None:
    subnets = assembly.resources("Network", "AWS::EC2::Subnet").values()
    by_az = {(s["Properties"]["CidrBlock"], s["Properties"]["AvailabilityZone"]) for s in subnets}
    expected = set()
    for offset in (0, 10, 20, 30):
        for index, az in enumerate("abc", start=1):
            expected.add((f"10.0.{offset + index}.0/24", f"us-east-1{az}"))
    assert by_az == expected


def test_a_nat_gateway_per_az(assembly: Assembly) -> None:
    assembly.template("Network").resource_count_is("AWS::EC2::NatGateway", 3)


def _ingress(assembly: Assembly, group_name: str) -> list[dict]:
    groups = assembly.resources("Network", "AWS::EC2::SecurityGroup")
    logical = next(k for k, v in groups.items() if v["Properties"].get("GroupName") == group_name)
    inline = groups[logical]["Properties"].get("SecurityGroupIngress", [])
    separate = [
        r["Properties"]
        for r in assembly.resources("Network", "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [logical, "GroupId"]}
    ]
    return inline + separate


def _source(rule: dict) -> str:
    return rule.get("CidrIp") or rule["SourceSecurityGroupId"]["Fn::GetAtt"][0]


def test_security_group_rules(assembly: Assembly) -> None:
    alb = _ingress(assembly, "textnlp-production-alb-sg")
    assert {(r["FromPort"], r["CidrIp"]) for r in alb} == {(80, "0.0.0.0/0"), (443, "0.0.0.0/0")}
    for name, port, source in (
        ("api-sg", 8000, "AlbSg"), ("db-sg", 5432, "ApiSg"),
        ("cache-sg", 6379, "ApiSg"), ("model-sg", 443, "ApiSg"),
    ):
        rules = _ingress(assembly, f"textnlp-production-{name}")
        assert len(rules) == 1
        assert rules[0]["FromPort"] == rules[0]["ToPort"] == port
        assert _source(rules[0]).startswith(source)


def test_endpoints_for_isolated_subnets(assembly: Assembly) -> None:
    endpoints = assembly.resources("Network", "AWS::EC2::VPCEndpoint").values()
    names = {str(e["Properties"]["ServiceName"]) for e in endpoints}
    for service in ("sagemaker.runtime", "bedrock-runtime", "secretsmanager", "logs", "s3"):
        assert any(service in name for name in names), service
    assembly.template("Network").has_resource_properties(
        "AWS::EC2::VPCEndpoint",
        {"VpcEndpointType": "Interface", "PrivateDnsEnabled": True,
         "SubnetIds": Match.any_value()},
    )
