"""Deployers for S3 buckets (with EventBridge notifications), secrets, dashboards and tables.

Secrets are generated as Secrets Manager's `GenerateSecretString` would (template + key,
length, excluded characters), so that every later value read from them (the Aurora master
password, the Redis auth token, the JWT key) is what the deployment would hold.
"""

from __future__ import annotations

import json
import secrets
import string
from typing import Any

from rehearsal.deploy import DeployContext, Deployer
from rehearsal.deployers_messaging import NOT_EMULATED_KMS
from rehearsal.template import Physical, placeholder

# Secrets Manager's punctuation set (GetRandomPassword's ExcludePunctuation).
_NOT_EMULATED_BUCKET = (
    "ReplicationConfiguration", "LifecycleConfiguration", "IntelligentTieringConfigurations",
    "LoggingConfiguration",
)
_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


def deploy_bucket(c: DeployContext) -> Physical:
    props = c.properties
    name = props.get("BucketName") or c.generated_name(63).lower()
    s3 = c.client("s3")
    if c.region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name,
                         CreateBucketConfiguration={"LocationConstraint": c.region})
    if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    notifications = props.get("NotificationConfiguration")
    if notifications:
        _notify(c, name, notifications)
    if "BucketEncryption" in props:
        c.ledger.leave_out(NOT_EMULATED_KMS)
    if any(key in props for key in _NOT_EMULATED_BUCKET):
        c.ledger.leave_out("S3: cross-region replication, lifecycle rules, Intelligent-Tiering, "
                           "access logging (the infra tests assert them on the templates)")
    return Physical(name, {
        "Arn": f"arn:aws:s3:::{name}",
        "DomainName": f"{name}.s3.amazonaws.com",
        "RegionalDomainName": f"{name}.s3.{c.region}.amazonaws.com",
    })


def _notify(c: DeployContext, bucket: str, config: dict[str, Any]) -> None:
    wanted: dict[str, Any] = {}
    # CloudFormation says {"EventBridgeEnabled": true}; CDK's custom resource says {}.
    bridge = config.get("EventBridgeConfiguration")
    if isinstance(bridge, dict) and _true(bridge.get("EventBridgeEnabled", True)):
        wanted["EventBridgeConfiguration"] = {}
    for kind, arn_key in (("QueueConfigurations", "Queue"), ("TopicConfigurations", "Topic")):
        entries = config.get(kind) or []
        if entries:
            wanted[kind] = [
                {f"{arn_key}Arn": e[arn_key], "Events": [e["Event"]] if "Event" in e
                 else e["Events"], **({"Filter": e["Filter"]} if "Filter" in e else {})}
                for e in entries
            ]
    if config.get("LambdaConfigurations"):
        c.ledger.leave_out("S3 -> Lambda notifications (direct)")
    c.client("s3").put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration=wanted
    )


def deploy_bucket_notifications(c: DeployContext) -> Physical:
    """CDK's `Custom::S3BucketNotifications`: the notification configuration of a bucket."""
    _notify(c, c.properties["BucketName"], c.properties.get("NotificationConfiguration", {}))
    return Physical(f"{c.properties['BucketName']}-notifications")


def generate_secret_string(spec: dict[str, Any]) -> str:
    length = int(spec.get("PasswordLength", 32))
    alphabet = ""
    if not _true(spec.get("ExcludeLowercase")):
        alphabet += string.ascii_lowercase
    if not _true(spec.get("ExcludeUppercase")):
        alphabet += string.ascii_uppercase
    if not _true(spec.get("ExcludeNumbers")):
        alphabet += string.digits
    if not _true(spec.get("ExcludePunctuation")):
        alphabet += _PUNCTUATION
    if _true(spec.get("IncludeSpace")):
        alphabet += " "
    excluded = set(spec.get("ExcludeCharacters", ""))
    alphabet = "".join(ch for ch in alphabet if ch not in excluded)
    password = "".join(secrets.choice(alphabet) for _ in range(length))
    template, key = spec.get("SecretStringTemplate"), spec.get("GenerateStringKey")
    if template and key:
        document = json.loads(template)
        document[key] = password
        return json.dumps(document)
    return password


def _true(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def deploy_secret(c: DeployContext) -> Physical:
    props = c.properties
    name = props.get("Name") or c.generated_name(128)
    if "GenerateSecretString" in props:
        value = generate_secret_string(props["GenerateSecretString"])
    else:
        value = str(props.get("SecretString", ""))
    if "KmsKeyId" in props:
        c.ledger.leave_out(NOT_EMULATED_KMS)
    arn = c.client("secretsmanager").create_secret(Name=name, SecretString=value)["ARN"]
    return Physical(arn, {"Id": arn})


def deploy_secret_attachment(c: DeployContext) -> Physical:
    """RDS adds the connection to the attached secret: engine, host, port, cluster id."""
    props = c.properties
    secret_id = props["SecretId"]
    target = None
    for deployed in c.deployment.deployed("AWS::RDS::DBCluster"):
        if deployed.physical.ref == props["TargetId"]:
            target = deployed
    client = c.client("secretsmanager")
    document = json.loads(client.get_secret_value(SecretId=secret_id)["SecretString"])
    if target is None:
        document["host"] = placeholder(f"attachment target {props['TargetId']}")
    else:
        attributes = target.physical.attributes
        document.update({
            "engine": "postgres", "host": attributes["Endpoint.Address"],
            "port": int(attributes["Endpoint.Port"]), "dbClusterIdentifier": target.physical.ref,
        })
    client.put_secret_value(SecretId=secret_id, SecretString=json.dumps(document))
    return Physical(secret_id)


def deploy_dashboard(c: DeployContext) -> Physical:
    name = c.properties.get("DashboardName") or c.generated_name(255)
    c.client("cloudwatch").put_dashboard(
        DashboardName=name, DashboardBody=c.properties["DashboardBody"]
    )
    return Physical(name)


def deploy_table(c: DeployContext) -> Physical:
    props = c.properties
    name = props.get("TableName") or c.generated_name(255)
    kwargs: dict[str, Any] = {
        "TableName": name, "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    if "ProvisionedThroughput" in props:
        kwargs["ProvisionedThroughput"] = props["ProvisionedThroughput"]
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "StreamSpecification"):
        if key in props:
            kwargs[key] = props[key]
    table = c.client("dynamodb").create_table(**kwargs)["TableDescription"]
    return Physical(name, {"Arn": table["TableArn"], "StreamArn": table.get("LatestStreamArn")})


DEPLOYERS: dict[str, Deployer] = {
    "AWS::S3::Bucket": deploy_bucket,
    "Custom::S3BucketNotifications": deploy_bucket_notifications,
    "AWS::SecretsManager::Secret": deploy_secret,
    "AWS::SecretsManager::SecretTargetAttachment": deploy_secret_attachment,
    "AWS::CloudWatch::Dashboard": deploy_dashboard,
    "AWS::DynamoDB::Table": deploy_table,
}
