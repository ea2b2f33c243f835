"""Deployers for the data layer: Aurora -> the PostgreSQL stand-in, ElastiCache -> Redis Cluster,
DynamoDB tables -> moto.

The stand-ins start when the deployment reaches them, with what the templates give: the master
user, password and database (resolved from the Aurora secret), the Redis auth token, TLS, the
number of shards. Their endpoints are the rehearsal's substitutions. A DynamoDB table is created
in moto with its key schema, billing mode, TTL attribute and point-in-time recovery.
"""

from __future__ import annotations

from rehearsal.deploy import DeployContext, Deployer
from rehearsal.template import Physical, placeholder

AURORA_PORT = 5432
REDIS_PORT = 6379


def deploy_aurora(c: DeployContext) -> Physical:
    props = c.properties
    identifier = (props.get("DBClusterIdentifier") or c.generated_name(63)).lower()
    engine = str(props.get("Engine", ""))
    if "postgres" not in engine:
        c.ledger.leave_out(f"RDS engine {engine} (only PostgreSQL has a stand-in)")
        return Physical(identifier)
    port = int(props.get("Port") or AURORA_PORT)
    host, port = c.deployment.stand_ins.aurora(
        user=str(props.get("MasterUsername") or placeholder("MasterUsername")),
        password=str(props.get("MasterUserPassword") or placeholder("MasterUserPassword")),
        database=str(props.get("DatabaseName") or "postgres"),
        port=port,
    )
    deployed = (
        f"{identifier}.cluster-{c.generated_name(12)[-12:].lower()}.{c.region}.rds.amazonaws.com"
    )
    c.ledger.substitute(
        f"Aurora cluster {identifier}: Endpoint.Address/Port",
        f"{deployed}:{props.get('Port') or AURORA_PORT}",
        f"{host}:{port} (PostgreSQL {engine_version(props)} stand-in, TLS, scram-sha-256)",
    )
    c.ledger.leave_out("Aurora: reader instances, failover, IAM database authentication, "
                       "backups, Performance Insights (one PostgreSQL server stands in)")
    return Physical(identifier, {
        "Endpoint.Address": host, "Endpoint.Port": str(port),
        "ReadEndpoint.Address": host,
        "DBClusterArn": f"arn:aws:rds:{c.region}:{c.account}:cluster:{identifier}",
        "DBClusterResourceId": "cluster-" + c.generated_name(26)[-26:].upper(),
    })


def engine_version(props: dict[str, object]) -> str:
    return str(props.get("EngineVersion", "?"))


def deploy_redis(c: DeployContext) -> Physical:
    props = c.properties
    group_id = (props.get("ReplicationGroupId") or c.generated_name(40)).lower()
    tls = str(props.get("TransitEncryptionEnabled", "false")).lower() == "true"
    shards = int(props.get("NumNodeGroups") or 1)
    host, port = c.deployment.stand_ins.elasticache(
        auth_token=str(props.get("AuthToken", "")), tls=tls, shards=shards,
        port=int(props.get("Port") or REDIS_PORT),
    )
    deployed = f"clustercfg.{group_id}.{c.generated_name(6)[-6:].lower()}.use1.cache.amazonaws.com"
    c.ledger.substitute(
        f"ElastiCache {group_id}: ConfigurationEndPoint.Address/Port",
        f"{deployed}:{props.get('Port') or REDIS_PORT}",
        f"{host}:{port} (Redis Cluster stand-in: {shards} masters, "
        f"{'TLS, ' if tls else ''}AUTH token)",
    )
    c.ledger.leave_out("ElastiCache: replicas, failover, at-rest encryption, snapshots "
                       "(masters only)")
    attributes = {
        "ConfigurationEndPoint.Address": host, "ConfigurationEndPoint.Port": str(port),
        "PrimaryEndPoint.Address": host, "PrimaryEndPoint.Port": str(port),
        "ReaderEndPoint.Address": host, "ReaderEndPoint.Port": str(port),
    }
    return Physical(group_id, attributes)


def _enabled(value: object) -> bool:
    return str(value).lower() == "true"


def deploy_table(c: DeployContext) -> Physical:
    props = c.properties
    name = str(props.get("TableName") or c.generated_name(255))
    billing = str(props.get("BillingMode") or "PROVISIONED")
    capacity: dict[str, dict[str, int]] = {}
    if billing == "PROVISIONED":
        capacity = {"ProvisionedThroughput": {
            key: int(value) for key, value in props["ProvisionedThroughput"].items()}}
    dynamodb = c.client("dynamodb")
    dynamodb.create_table(
        TableName=name, KeySchema=props["KeySchema"],
        AttributeDefinitions=props["AttributeDefinitions"], BillingMode=billing, **capacity,
    )
    ttl = props.get("TimeToLiveSpecification") or {}
    if _enabled(ttl.get("Enabled")):
        dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification={
            "AttributeName": ttl["AttributeName"], "Enabled": True})
    recovery = props.get("PointInTimeRecoverySpecification") or {}
    if _enabled(recovery.get("PointInTimeRecoveryEnabled")):
        dynamodb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={
            "PointInTimeRecoveryEnabled": True})
    c.ledger.leave_out("DynamoDB: the tables' KMS encryption, deletion protection, and the "
                       "TTL's deletion of expired items (the app compares expiry itself)")
    arn = dynamodb.describe_table(TableName=name)["Table"]["TableArn"]
    return Physical(name, {"Arn": arn})


DEPLOYERS: dict[str, Deployer] = {
    "AWS::RDS::DBCluster": deploy_aurora,
    "AWS::ElastiCache::ReplicationGroup": deploy_redis,
    "AWS::DynamoDB::Table": deploy_table,
}
