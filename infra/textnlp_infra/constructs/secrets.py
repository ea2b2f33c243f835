"""Design section 9, the Secrets Manager tree `/textnlp/<env>/...`.

Generated secrets get random values at deployment; third-party credentials (OpenAI, Anthropic,
Hugging Face, SMTP, monitoring) start as random placeholders that an operator replaces with
`aws secretsmanager put-secret-value`, so no credential ever sits in a template.
`database/connection-string` is written by the data stack, which knows the cluster endpoint.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as sm
from constructs import Construct
from textnlp.deployment import JWT_SECRET, ORIGIN_VERIFY_SECRET, VIEWER_VERIFY_SECRET

from textnlp_infra.config import EnvConfig

# Characters Aurora and Redis refuse in passwords / auth tokens, or that break URLs.
_UNSAFE_PASSWORD_CHARACTERS = " %+~`#$&*()|[]{}:;<>?!'/@\"\\,="

OPERATOR_SUPPLIED = (
    "api/oauth-credentials",
    "models/openai-api-key",
    "models/anthropic-api-key",
    "models/huggingface-token",
    "external/smtp-credentials",
    "external/monitoring-api-keys",
)


class SecretsTree(Construct):
    def __init__(self, scope: Construct, id_: str, *, config: EnvConfig, key: kms.IKey) -> None:
        super().__init__(scope, id_)
        self._prefix = config.secrets_prefix
        self._key = key
        self._dr_region = config.storage.replica_region
        self._dr_key = kms.Key.from_key_arn(self, "DrKey", config.dr_key_alias_arn())
        self._removal = RemovalPolicy.RETAIN if config.is_production else RemovalPolicy.DESTROY
        user = config.aurora.master_username

        self.database_master = self._secret(
            "DatabaseMaster", "database/master-password",
            sm.SecretStringGenerator(
                secret_string_template=f'{{"username": "{user}"}}',
                generate_string_key="password",
                exclude_characters=_UNSAFE_PASSWORD_CHARACTERS,
                password_length=32,
            ),
        )
        self.database_reader = self._secret(
            "DatabaseReader", "database/read-replica-password",
            sm.SecretStringGenerator(
                secret_string_template='{"username": "textnlp_reader"}',
                generate_string_key="password",
                exclude_characters=_UNSAFE_PASSWORD_CHARACTERS,
                password_length=32,
            ),
        )
        self.jwt = self._secret(
            "JwtSecret", JWT_SECRET,
            sm.SecretStringGenerator(password_length=64, exclude_punctuation=True),
        )
        self.api_keys = self._secret(
            "ApiKeys", "api/api-keys",
            sm.SecretStringGenerator(password_length=48, exclude_punctuation=True),
        )
        # Not in the design's tree, which predates in-transit encryption for Redis: the
        # ElastiCache AUTH token, read by the replication group and by the application.
        self.cache_auth_token = self._secret(
            "CacheAuthToken", "cache/auth-token",
            sm.SecretStringGenerator(password_length=64, exclude_punctuation=True),
        )
        # Not in the design's tree: the header API Gateway adds to what it forwards, so the
        # app behind the public ALB answers only requests that passed the gateway.
        self.origin_verify = self._secret(
            "OriginVerify", ORIGIN_VERIFY_SECRET,
            sm.SecretStringGenerator(password_length=48, exclude_punctuation=True),
        )
        # Not in the design's tree: the header CloudFront adds to what it sends to API Gateway,
        # so the app believes the viewer's address only on requests that passed the edge.
        self.viewer_verify = self._secret(
            "ViewerVerify", VIEWER_VERIFY_SECRET,
            sm.SecretStringGenerator(password_length=48, exclude_punctuation=True),
        )
        self.operator_supplied = {
            name: self._secret(
                "".join(part.title() for part in name.replace("/", "-").split("-")), name,
                sm.SecretStringGenerator(password_length=32, exclude_punctuation=True),
            )
            for name in OPERATOR_SUPPLIED
        }

    def _secret(self, id_: str, name: str, generator: sm.SecretStringGenerator) -> sm.Secret:
        return sm.Secret(
            self, id_,
            secret_name=f"{self._prefix}/{name}",
            encryption_key=self._key,
            generate_secret_string=generator,
            removal_policy=self._removal,
            # Read-only copies in the DR region (design section 11): a failover finds the same
            # credentials, rotated with the primary.
            replica_regions=[sm.ReplicaRegion(region=self._dr_region, encryption_key=self._dr_key)],
        )
