"""CloudFormation-like names, ids and ARNs for resources the rehearsal does not create in moto.

IAM roles, KMS keys, log groups, load balancers, API Gateway APIs...: nothing of theirs runs in
moto, but other values mention them (an ARN in an environment variable, a DNS name in a
record), so they get what CloudFormation would give them: their declared name, or a generated
one (`<stack>-<logical id>-<suffix>`), stable from run to run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rehearsal.assembly import Stack
from rehearsal.template import Physical, Resolver

_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_LOWER = "abcdefghijklmnopqrstuvwxyz0123456789"


def short_hash(*parts: str, length: int = 12, alphabet: str = "0123456789abcdef") -> str:
    """A stable pseudo-random id: the same on every run for the same resource."""
    digest = int(hashlib.sha256("/".join(parts).encode()).hexdigest(), 16)
    out = []
    for _ in range(length):
        digest, index = divmod(digest, len(alphabet))
        out.append(alphabet[index])
    return "".join(out)


def generated_name(stack: Stack, logical_id: str, max_length: int = 80, suffix: str = "") -> str:
    """`<stack>-<logical id>-<13 characters>`, shortened like CloudFormation's names."""
    tail = "-" + short_hash(stack.name, logical_id, length=13, alphabet=_UPPER) + suffix
    room = max_length - len(tail)
    head = f"{stack.stack_name}-{logical_id}"
    return head[:room] + tail


@dataclass
class NameContext:
    stack: Stack
    logical_id: str
    resource: dict[str, Any]
    resolver: Resolver

    def declared(self, prop: str) -> str | None:
        value = self.resource.get("Properties", {}).get(prop)
        return None if value is None else str(self.resolver.resolve(value))

    def name(self, prop: str | None, max_length: int = 64) -> str:
        declared = self.declared(prop) if prop else None
        return declared or generated_name(self.stack, self.logical_id, max_length)

    def arn(self, service: str, resource: str, *, region: bool = True) -> str:
        where = self.stack.region if region else ""
        return f"arn:aws:{service}:{where}:{self.stack.account}:{resource}"

    def id(self, length: int, alphabet: str = _LOWER) -> str:
        return short_hash(self.stack.name, self.logical_id, length=length, alphabet=alphabet)


Namer = Callable[[NameContext], Physical]


def _role(c: NameContext) -> Physical:
    name = c.name("RoleName")
    return Physical(name, {"Arn": c.arn("iam", f"role/{name}", region=False),
                           "RoleId": "AROA" + c.id(17, _UPPER)})


def _key(c: NameContext) -> Physical:
    key_id = "-".join(c.id(n) for n in (8, 4, 4, 4, 12))
    return Physical(key_id, {"Arn": c.arn("kms", f"key/{key_id}"), "KeyId": key_id})


def _log_group(c: NameContext) -> Physical:
    name = c.name("LogGroupName", 512)
    return Physical(name, {"Arn": c.arn("logs", f"log-group:{name}:*")})


def _load_balancer(c: NameContext) -> Physical:
    name = c.name("Name", 32)
    suffix = c.id(16, "0123456789abcdef")
    full = f"app/{name}/{suffix}"
    return Physical(c.arn("elasticloadbalancing", f"loadbalancer/{full}"), {
        "DNSName": f"{name}-{c.id(10, '0123456789')}.{c.stack.region}.elb.amazonaws.com",
        "LoadBalancerFullName": full, "LoadBalancerName": name,
        "CanonicalHostedZoneID": "Z35SXDOTRQ7X7K",
    })


def _target_group(c: NameContext) -> Physical:
    name = c.name("Name", 32)
    full = f"targetgroup/{name}/{c.id(16, '0123456789abcdef')}"
    arn = c.arn("elasticloadbalancing", full)
    return Physical(arn, {"TargetGroupName": name, "TargetGroupFullName": full,
                          "TargetGroupArn": arn})


def _listener(c: NameContext) -> Physical:
    arn = c.arn("elasticloadbalancing", f"listener/app/{c.id(16, '0123456789abcdef')}")
    return Physical(arn, {"ListenerArn": arn})


def _arn_of(service: str, kind: str) -> Namer:
    def namer(c: NameContext) -> Physical:
        arn = c.arn(service, f"{kind}/{c.id(36)}")
        return Physical(arn, {"Arn": arn})

    return namer


def _id_of(length: int) -> Namer:
    def namer(c: NameContext) -> Physical:
        return Physical(c.id(length))

    return namer


def _rest_api(c: NameContext) -> Physical:
    api_id = c.id(10)
    return Physical(api_id, {"RootResourceId": c.id(10, "0123456789abcdef"),
                             "RestApiId": api_id})


def _websocket_api(c: NameContext) -> Physical:
    api_id = c.id(10)
    protocol = c.declared("ProtocolType")
    scheme = "wss" if protocol == "WEBSOCKET" else "https"
    return Physical(api_id, {
        "ApiId": api_id,
        "ApiEndpoint": f"{scheme}://{api_id}.execute-api.{c.stack.region}.amazonaws.com",
    })


def _domain_name(c: NameContext) -> Physical:
    name = c.declared("DomainName") or c.id(12)
    return Physical(name, {
        "RegionalDomainName": f"d-{c.id(10)}.execute-api.{c.stack.region}.amazonaws.com",
        "RegionalHostedZoneId": "Z1UJRXOUMOOFQ8",
    })


def _stage(c: NameContext) -> Physical:
    return Physical(c.declared("StageName") or c.id(8))


def _named(prop: str, max_length: int = 64) -> Namer:
    def namer(c: NameContext) -> Physical:
        return Physical(c.name(prop, max_length))

    return namer


def _record(c: NameContext) -> Physical:
    return Physical(str(c.declared("Name") or c.id(12)).rstrip("."))


def _distribution(c: NameContext) -> Physical:
    distribution_id = c.id(14, _UPPER)
    return Physical(distribution_id, {"DomainName": f"d{c.id(13)}.cloudfront.net",
                                      "Id": distribution_id})


def _web_acl(c: NameContext) -> Physical:
    name = c.name("Name", 128)
    acl_id = c.id(36)
    arn = c.arn("wafv2", f"regional/webacl/{name}/{acl_id}")
    return Physical(f"{name}|{acl_id}|REGIONAL", {"Arn": arn, "Id": acl_id})


NAMERS: dict[str, Namer] = {
    "AWS::IAM::Role": _role,
    "AWS::IAM::Policy": _named("PolicyName", 128),
    "AWS::IAM::InstanceProfile": _named("InstanceProfileName", 128),
    "AWS::KMS::Key": _key,
    "AWS::KMS::Alias": _named("AliasName", 256),
    "AWS::Logs::LogGroup": _log_group,
    "AWS::ElasticLoadBalancingV2::LoadBalancer": _load_balancer,
    "AWS::ElasticLoadBalancingV2::TargetGroup": _target_group,
    "AWS::ElasticLoadBalancingV2::Listener": _listener,
    "AWS::ElasticLoadBalancingV2::ListenerRule": _listener,
    "AWS::CertificateManager::Certificate": _arn_of("acm", "certificate"),
    "AWS::ApiGateway::RestApi": _rest_api,
    "AWS::ApiGateway::Resource": _id_of(6),
    "AWS::ApiGateway::Method": _id_of(6),
    "AWS::ApiGateway::Deployment": _id_of(6),
    "AWS::ApiGateway::Authorizer": _id_of(6),
    "AWS::ApiGateway::RequestValidator": _id_of(6),
    "AWS::ApiGateway::Stage": _stage,
    "AWS::ApiGatewayV2::Api": _websocket_api,
    "AWS::ApiGatewayV2::Integration": _id_of(7),
    "AWS::ApiGatewayV2::Route": _id_of(7),
    "AWS::ApiGatewayV2::Authorizer": _id_of(6),
    "AWS::ApiGatewayV2::Stage": _stage,
    "AWS::ApiGatewayV2::DomainName": _domain_name,
    "AWS::ApiGatewayV2::ApiMapping": _id_of(6),
    "AWS::ApiGateway::DomainName": _domain_name,
    "AWS::ApiGateway::BasePathMapping": _id_of(6),
    "AWS::ECS::CapacityProvider": _named("Name", 255),
    "AWS::Route53::RecordSet": _record,
    "AWS::RDS::DBSubnetGroup": _named("DBSubnetGroupName", 255),
    "AWS::RDS::DBInstance": _named("DBInstanceIdentifier", 63),
    "AWS::ElastiCache::SubnetGroup": _named("CacheSubnetGroupName", 255),
    "AWS::ElastiCache::ParameterGroup": _named("CacheParameterGroupName", 255),
    "AWS::CloudFront::Distribution": _distribution,
    "AWS::WAFv2::WebACL": _web_acl,
    "AWS::SNS::TopicPolicy": _id_of(12),
    "AWS::SQS::QueuePolicy": _id_of(12),
    "AWS::S3::BucketPolicy": _id_of(12),
    "AWS::Lambda::Permission": _id_of(12),
}
