"""Design section 9, security: keys, the secrets tree, the two task roles, detective controls."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from textnlp_infra.config import EnvConfig
from textnlp_infra.constructs.audit import AccessLogBucket, AccountSecurityServices
from textnlp_infra.constructs.keys import Keys
from textnlp_infra.constructs.secrets import SecretsTree
from textnlp_infra.constructs.task_roles import TaskRoles


class SecurityStack(Stack):
    """Deployed first: every other stack encrypts with these keys and runs as these roles."""

    def __init__(self, scope: Construct, id_: str, *, config: EnvConfig, **kwargs: Any) -> None:
        super().__init__(scope, id_, **kwargs)
        self.keys = Keys(self, "Keys", config=config)
        self.secrets = SecretsTree(self, "Secrets", config=config, key=self.keys.secrets)
        self.roles = TaskRoles(
            self, "TaskRoles", config=config, secrets_key=self.keys.secrets,
            data_key=self.keys.data, messaging_key=self.keys.messaging,
        )
        self.access_logs = AccessLogBucket(self, "AccessLogs", config=config).bucket
        if config.enable_account_services:
            AccountSecurityServices(self, "AccountServices", log_bucket=self.access_logs)
