"""Design section 13 (first half): the ECR repositories of the three images.

A stack of its own because the compute stack pulls from the repositories and the delivery
stack (which deploys to the compute stack) pushes to them. Every pushed image is replicated to
the DR region (design section 11), so services can start there from the same release.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_ecr as ecr
from constructs import Construct

from textnlp_infra.config import EnvConfig
from textnlp_infra.imports import imported_key
from textnlp_infra.stacks.security import SecurityStack


class RegistryStack(Stack):
    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig, security: SecurityStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        key = imported_key(self, "DataKey", security.keys.data)
        self.repositories = {
            name: ecr.Repository(
                self, name,
                repository_name=name,
                # Tags are release versions (or commit ids from the pipeline), never moved.
                image_tag_mutability=ecr.TagMutability.IMMUTABLE,
                image_scan_on_push=True,
                encryption=ecr.RepositoryEncryption.KMS,
                encryption_key=key,
                lifecycle_rules=[ecr.LifecycleRule(max_image_count=100)],
                removal_policy=RemovalPolicy.RETAIN,
            )
            for name in config.delivery.image_repositories
        }
        # One per registry (account and region), so only production declares it; it copies
        # every textnlp-* repository, whichever environment pushed the image.
        if config.is_production:
            self._replicate(config)

    def _replicate(self, config: EnvConfig) -> None:
        ecr.CfnReplicationConfiguration(
            self, "Replication",
            replication_configuration=ecr.CfnReplicationConfiguration.ReplicationConfigurationProperty(
                rules=[ecr.CfnReplicationConfiguration.ReplicationRuleProperty(
                    destinations=[
                        ecr.CfnReplicationConfiguration.ReplicationDestinationProperty(
                            region=config.storage.replica_region, registry_id=config.account,
                        )
                    ],
                    repository_filters=[
                        ecr.CfnReplicationConfiguration.RepositoryFilterProperty(
                            filter="textnlp-", filter_type="PREFIX_MATCH",
                        )
                    ],
                )],
            ),
        )
