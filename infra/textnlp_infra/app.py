"""Builds the CDK app: every stack of one environment, in deployment order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import App, Aspects, Stack
from aws_cdk import Environment as CdkEnvironment

from textnlp_infra.config import DR_REGION, EnvConfig, Environment, for_environment
from textnlp_infra.tagging import RequiredTagsAspect

INFRA_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = INFRA_DIR.parent


def cdk_json_context() -> dict[str, Any]:
    """cdk.json's context, for synthesis without the CDK CLI (`python app.py`, tests).

    The CLI passes it itself; passing it to `App` as well changes nothing there, because
    context from the CLI takes precedence.
    """
    return dict(json.loads((INFRA_DIR / "cdk.json").read_text())["context"])


def build_app(
    environment: Environment | str | None = None, *, outdir: str | None = None,
    context: dict[str, Any] | None = None,
) -> tuple[App, dict[str, Stack]]:
    app = App(outdir=outdir, context={**cdk_json_context(), **(context or {})})
    chosen = environment or app.node.try_get_context("environment") or Environment.PRODUCTION
    config = for_environment(chosen, app.node.try_get_context("textnlp") or {
        key: app.node.try_get_context(key)
        for key in ("account", "domainName", "hostedZoneId", "codestarConnectionArn",
                    "imageTag", "accountServices", "alarmEmails", "jobNotificationUrls", "owner",
                    "jobsRetentionDays")
        if app.node.try_get_context(key) is not None
    })
    stacks = add_stacks(app, config)
    Aspects.of(app).add(RequiredTagsAspect(config))
    return app, stacks


def add_stacks(app: App, config: EnvConfig) -> dict[str, Stack]:
    # Imported here so that `config` stays importable without the stack modules.
    from textnlp_infra.stacks.api import ApiStack
    from textnlp_infra.stacks.backup import BackupStack
    from textnlp_infra.stacks.compute import ComputeStack
    from textnlp_infra.stacks.data import DataStack
    from textnlp_infra.stacks.delivery import DeliveryStack
    from textnlp_infra.stacks.disaster_recovery import DisasterRecoveryStack
    from textnlp_infra.stacks.messaging import MessagingStack
    from textnlp_infra.stacks.model_serving import ModelServingStack
    from textnlp_infra.stacks.monitoring import MonitoringStack
    from textnlp_infra.stacks.network import NetworkStack
    from textnlp_infra.stacks.registry import RegistryStack
    from textnlp_infra.stacks.security import SecurityStack
    from textnlp_infra.stacks.serverless import ServerlessStack

    env = CdkEnvironment(account=config.account, region=config.region)
    prefix = f"TextNLP-{config.environment.value.capitalize()}"

    def props(section: str) -> dict[str, Any]:
        return {"env": env, "stack_name": f"{prefix}-{section}",
                "description": f"TextNLP {config.environment.value}: {section.lower()}",
                "termination_protection": config.is_production}

    stacks: dict[str, Stack] = {}
    stacks["DisasterRecovery"] = dr = DisasterRecoveryStack(
        app, f"{prefix}-DisasterRecovery", config=config,
        **{**props("DisasterRecovery"),
           "env": CdkEnvironment(account=config.account, region=DR_REGION)},
    )
    stacks["Security"] = security = SecurityStack(
        app, f"{prefix}-Security", config=config, **props("Security")
    )
    security.add_stack_dependency(dr, "secrets replicate with the DR region's key")
    stacks["Network"] = network = NetworkStack(
        app, f"{prefix}-Network", config=config, logs_key=security.keys.logs, **props("Network")
    )
    stacks["Data"] = data = DataStack(
        app, f"{prefix}-Data", config=config, network=network, security=security,
        **props("Data"),
    )
    # Replication names the replica bucket, which must exist first.
    data.add_stack_dependency(dr)
    stacks["Messaging"] = messaging = MessagingStack(
        app, f"{prefix}-Messaging", config=config, security=security, **props("Messaging")
    )
    stacks["Registry"] = registry = RegistryStack(
        app, f"{prefix}-Registry", config=config, security=security, **props("Registry")
    )
    stacks["Compute"] = compute = ComputeStack(
        app, f"{prefix}-Compute", config=config, network=network, security=security,
        data=data, messaging=messaging, **props("Compute"),
    )
    compute.add_stack_dependency(registry, "tasks pull the images by repository name")
    stacks["ModelServing"] = ModelServingStack(
        app, f"{prefix}-ModelServing", config=config, network=network, security=security,
        **props("ModelServing"),
    )
    stacks["ModelServing"].add_stack_dependency(data, "models are read from the data bucket")
    stacks["Serverless"] = serverless = ServerlessStack(
        app, f"{prefix}-Serverless", config=config, network=network, security=security,
        messaging=messaging, compute=compute, **props("Serverless"),
    )
    stacks["Api"] = ApiStack(
        app, f"{prefix}-Api", config=config, security=security, serverless=serverless,
        **props("Api"),
    )
    stacks["Api"].add_stack_dependency(compute, "API Gateway forwards to the ALB's record")
    stacks["Monitoring"] = MonitoringStack(
        app, f"{prefix}-Monitoring", config=config, security=security, **props("Monitoring")
    )
    stacks["Backup"] = BackupStack(
        app, f"{prefix}-Backup", config=config, security=security, **props("Backup")
    )
    stacks["Backup"].add_stack_dependency(data, "the plan selects the Aurora cluster by name")
    stacks["Backup"].add_stack_dependency(dr, "backups are copied to the DR region's vault")
    stacks["Delivery"] = DeliveryStack(
        app, f"{prefix}-Delivery", config=config, security=security, compute=compute,
        **props("Delivery"),
    )
    return stacks
