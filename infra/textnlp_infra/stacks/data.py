"""Design sections 4 and 5, data: the S3 bucket, Aurora PostgreSQL, Redis and the DynamoDB
session store."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_s3 as s3
from constructs import Construct

from textnlp_infra.config import EnvConfig
from textnlp_infra.constructs.cache import RedisCluster
from textnlp_infra.constructs.database import AuroraDatabase
from textnlp_infra.constructs.session_table import SessionTable
from textnlp_infra.constructs.storage import DataBucket
from textnlp_infra.imports import immutable_security_group, imported_key, imported_secret
from textnlp_infra.stacks.network import NetworkStack
from textnlp_infra.stacks.security import SecurityStack


class DataStack(Stack):
    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig, network: NetworkStack,
        security: SecurityStack, **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        keys = security.keys
        data_key = imported_key(self, "DataKey", keys.data)
        groups = network.security_groups
        access_logs = s3.Bucket.from_bucket_name(
            self, "AccessLogs", security.access_logs.bucket_name
        )
        self.bucket = DataBucket(
            self, "Storage", config=config, key=data_key, access_logs=access_logs
        ).bucket
        self.database = AuroraDatabase(
            self, "Database", config=config, vpc=network.vpc,
            security_group=immutable_security_group(self, "DbSg", groups.db),
            key=data_key,
            logs_key=imported_key(self, "LogsKey", keys.logs),
            master_secret=imported_secret(self, "MasterSecret", security.secrets.database_master),
            secrets_key=imported_key(self, "SecretsKey", keys.secrets),
        )
        self.cache = RedisCluster(
            self, "Cache", config=config, vpc=network.vpc,
            security_group=immutable_security_group(self, "CacheSg", groups.cache),
            key=data_key,
            auth_token=imported_secret(self, "CacheAuthToken", security.secrets.cache_auth_token),
        )
        self.sessions = SessionTable(self, "Sessions", config=config, key=data_key).table


