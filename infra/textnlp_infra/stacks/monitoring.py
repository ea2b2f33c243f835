"""Design section 10, monitoring: the `TextNLP-<Env>` dashboard and the alarms.

Metrics are addressed by the names this app gives its resources (service, queue, API and
cluster names from the config), so this stack needs no references into the others. The
application's own metrics take their names and dimension from `textnlp.observability.emf`,
the module that emits them.
"""

from __future__ import annotations

import re
from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct
from textnlp.observability.emf import (
    JOBS_PURGED,
    REQUEST_LATENCY,
    SERVICE_DIMENSION,
    TOKENS_GENERATED,
)

from textnlp_infra.config import EnvConfig
from textnlp_infra.imports import imported_key
from textnlp_infra.stacks.security import SecurityStack

PERIOD = Duration.minutes(5)
#: The daily purge's heartbeat: alarm after this many hours without a successful purge (a day
#: and two hours' grace for a slow run or a retried start).
PURGE_HEARTBEAT_HOURS = 26


def _metric(namespace: str, name: str, dimensions: dict[str, str], statistic: str = "Average",
            label: str | None = None) -> cw.Metric:
    return cw.Metric(namespace=namespace, metric_name=name, dimensions_map=dimensions,
                     statistic=statistic, period=PERIOD, label=label)


class MonitoringStack(Stack):
    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig, security: SecurityStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        monitoring = config.monitoring
        api_service = config.resource_name("api")
        service_dims = {"ClusterName": config.name, "ServiceName": api_service}
        custom_dims = {SERVICE_DIMENSION: api_service}
        api_dims = {"ApiName": config.rest_api_name, "Stage": config.api.stage_name}

        def queue_depth(base: str) -> cw.Metric:
            return _metric("AWS/SQS", "ApproximateNumberOfMessagesVisible",
                           {"QueueName": config.resource_name(base)}, "Maximum", base)

        def dlq_depth(base: str) -> cw.MathExpression:
            """Every message of a DLQ, received or not: the workers' sweep receives each one
            (an hour's visibility) to redrive or report it, so the visible count alone is 0
            almost all the time while letters wait there."""
            hidden = _metric("AWS/SQS", "ApproximateNumberOfMessagesNotVisible",
                             {"QueueName": config.resource_name(base)}, "Maximum")
            key = re.sub(r"\W", "_", base)  # ids are unique within one graph
            return cw.MathExpression(
                expression=f"{key}_visible + {key}_received",
                using_metrics={f"{key}_visible": queue_depth(base), f"{key}_received": hidden},
                label=base, period=PERIOD,
            )

        self.alarm_topic = sns.Topic(
            self, "AlarmTopic",
            topic_name=f"{config.name}-alarms",
            display_name="TextNLP alarms",
            master_key=imported_key(self, "MessagingKey", security.keys.messaging),
            enforce_ssl=True,
        )
        for address in config.alarm_emails:  # each recipient confirms by e-mail
            self.alarm_topic.add_subscription(subscriptions.EmailSubscription(address))
        self.dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=config.dashboard_name)
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="API service",
                left=[
                    _metric("AWS/ECS", "CPUUtilization", service_dims),
                    _metric("AWS/ECS", "MemoryUtilization", service_dims),
                ],
                width=12,
            ),
            cw.GraphWidget(
                title="Requests and tokens",
                left=[_metric(monitoring.metrics_namespace, REQUEST_LATENCY, custom_dims)],
                # The API's answers and the generation service's job records.
                right=[
                    _metric(monitoring.metrics_namespace, TOKENS_GENERATED,
                            {SERVICE_DIMENSION: service}, "Sum", label=f"tokens {service}")
                    for service in (api_service, config.resource_name("generation"))
                ],
                width=12,
            ),
            cw.GraphWidget(
                title="Queue depth",
                left=[queue_depth("generation-queue.fifo"), queue_depth("batch-queue"),
                      queue_depth("validation-queue")],
                width=12,
            ),
            cw.GraphWidget(
                title="DLQ depth",
                left=[dlq_depth("dlq.fifo"), dlq_depth("batch-dlq"),
                      dlq_depth("validation-dlq")],
                width=12,
            ),
        )

        action = actions.SnsAction(self.alarm_topic)
        errors = _metric("AWS/ApiGateway", "5XXError", api_dims)  # Average = rate of 5xx
        alarms = [
            errors.create_alarm(
                self, "Api5xxRate", alarm_name=f"{config.name}-api-5xx-rate",
                threshold=monitoring.error_rate_percent / 100, evaluation_periods=3,
                datapoints_to_alarm=2,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
            *(
                dlq_depth(dlq).create_alarm(
                    self, alarm_id,
                    alarm_name=f"{config.name}-{dlq.removesuffix('.fifo')}-not-empty",
                    threshold=1, evaluation_periods=1,
                    comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                )
                for alarm_id, dlq in (
                    ("DlqNotEmpty", "dlq.fifo"),
                    ("BatchDlqNotEmpty", "batch-dlq"),
                    ("ValidationDlqNotEmpty", "validation-dlq"),
                    ("BatchTriggerDlqNotEmpty", "batch-trigger-dlq"),
                    # The daily purge's RunTask failed past its retries.
                    ("JobsPurgeDlqNotEmpty", "jobs-purge-dlq"),
                )
            ),
            _metric("AWS/ApiGateway", "Latency", api_dims, "p99").create_alarm(
                self, "ApiP99Latency", alarm_name=f"{config.name}-api-p99-latency",
                threshold=monitoring.p99_latency_ms, evaluation_periods=3,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
            self._purge_missed(config),
            _metric("AWS/RDS", "CPUUtilization", {"DBClusterIdentifier": config.name}).create_alarm(
                self, "AuroraCpu", alarm_name=f"{config.name}-aurora-cpu",
                threshold=monitoring.aurora_cpu_percent, evaluation_periods=3,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            ),
        ]
        for alarm in alarms:
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
        self.alarms = alarms

    def _purge_missed(self, config: EnvConfig) -> cw.Alarm:
        """No successful `textnlp jobs purge` for `PURGE_HEARTBEAT_HOURS`: its task exited
        non-zero, could not start, or the schedule did not fire (each purge that succeeds
        publishes `JobsPurged`, hourly periods, every one of them without a point breaching)."""
        heartbeat = cw.Metric(
            namespace=config.monitoring.metrics_namespace, metric_name=JOBS_PURGED,
            dimensions_map={SERVICE_DIMENSION: config.jobs_purge_family},
            statistic="SampleCount", period=Duration.hours(1),
        )
        return heartbeat.create_alarm(
            self, "JobsPurgeMissed", alarm_name=f"{config.name}-jobs-purge-missed",
            alarm_description=f"No daily jobs purge succeeded in {PURGE_HEARTBEAT_HOURS} hours: "
                              f"see the /ecs/{config.jobs_purge_family} logs",
            threshold=1, evaluation_periods=PURGE_HEARTBEAT_HOURS,
            datapoints_to_alarm=PURGE_HEARTBEAT_HOURS,
            comparison_operator=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.BREACHING,
        )
