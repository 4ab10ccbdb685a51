"""The stage's operations: MWAA's log groups with retention, alarms to its topic, a dashboard.

Definitions come from `mwaa_elt.infra.documents.monitoring` (pure functions of the stage); this
module wires them.

The log groups MWAA writes to have fixed names, `airflow-<environment>-<Type>`. MWAA creates
them when the environment is created, unless they exist: then it writes to them as they are.
The program therefore creates them first (the environment depends on them), so their retention
and, in production, their KMS key are the program's, and a `pulumi up` corrects any drift. An
environment created before this component already has its groups: `pulumi import
aws:cloudwatch/logGroup:LogGroup <resource-name> airflow-<environment>-<Type>` adopts each one
(docs/operations.md), instead of a create that fails with ResourceAlreadyExistsException.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from mwaa_elt.infra.documents.monitoring import (
    HEALTH_ALARM,
    alarm_definitions,
    alarm_name,
    dashboard_json,
    dashboard_name,
    health_alarm_rule,
    monitoring_settings,
)
from mwaa_elt.lifecycle.adopt import LOG_GROUP_IGNORED
from mwaa_elt.stage import Stage


@dataclass(frozen=True)
class MonitoringArgs:
    """The stage, its key (prod: the log groups are encrypted with it) and its alert topics."""

    stage: Stage
    key_arn: pulumi.Input[str] | None
    topic_arns: dict[str, pulumi.Output[str]]
    protect: bool = False


class Monitoring(pulumi.ComponentResource):
    """Log groups with the stage's retention, CloudWatch alarms and a dashboard."""

    log_groups: dict[str, aws.cloudwatch.LogGroup]
    alarms: dict[str, aws.cloudwatch.MetricAlarm]
    health: aws.cloudwatch.CompositeAlarm | None
    dashboard: aws.cloudwatch.Dashboard | None

    def __init__(
        self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mwaa-elt:monitoring:Monitoring", name, None, opts)
        stage = args.stage
        settings = monitoring_settings(stage)
        child = pulumi.ResourceOptions(parent=self)
        adopted_groups = set(stage.config.adopt.log_groups) if stage.config.adopt else set()
        self.log_groups = {
            kind: aws.cloudwatch.LogGroup(
                f"{name}-logs-{kind.lower()}",
                name=group,
                retention_in_days=settings.log_retention_days,
                kms_key_id=args.key_arn,
                tags=stage.tags,
                # Logs of production are evidence: losing them takes an explicit unprotect.
                # A group MWAA already made is adopted by name (mwaa_elt.lifecycle.adopt).
                opts=pulumi.ResourceOptions(
                    parent=self,
                    protect=args.protect,
                    import_=group if kind in adopted_groups else None,
                    ignore_changes=list(LOG_GROUP_IGNORED) if kind in adopted_groups else None,
                    retain_on_delete=True if kind in adopted_groups else None,
                ),
            )
            for kind, group in stage.log_groups.items()
        }
        topic = args.topic_arns.get(settings.alert_topic) if settings.alert_topic else None
        actions = [topic] if topic is not None else []
        self.alarms = {}
        for alarm in alarm_definitions(stage):
            single = (
                {
                    "namespace": alarm.namespace,
                    "metric_name": alarm.metric_name,
                    "dimensions": alarm.dimensions,
                    "statistic": alarm.statistic,
                    "period": alarm.period,
                }
                if not alarm.queries
                else {"metric_queries": [query.to_args() for query in alarm.queries]}
            )
            self.alarms[alarm.key] = aws.cloudwatch.MetricAlarm(
                f"{name}-alarm-{alarm.name.removeprefix(f'{stage.resource_prefix}-')}",
                name=alarm.name,
                alarm_description=alarm.description,
                comparison_operator=alarm.comparison,
                threshold=alarm.threshold,
                evaluation_periods=alarm.evaluation_periods,
                treat_missing_data=alarm.missing_data,
                alarm_actions=actions,
                ok_actions=actions,
                tags=stage.tags,
                opts=child,
                **single,
            )
        rule = health_alarm_rule(stage)
        self.health = (
            aws.cloudwatch.CompositeAlarm(
                f"{name}-alarm-health",
                alarm_name=alarm_name(stage, HEALTH_ALARM),
                alarm_description=(
                    f"MWAA environment {stage.environment_name} is unhealthy: one of its alarms "
                    "fires. `mwaa-elt status` shows which, and Airflow's view of it."
                ),
                alarm_rule=rule,
                alarm_actions=actions,
                ok_actions=actions,
                tags=stage.tags,
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(self.alarms.values())),
            )
            if rule is not None
            else None
        )
        self.dashboard = (
            aws.cloudwatch.Dashboard(
                f"{name}-dashboard",
                dashboard_name=dashboard_name(stage),
                dashboard_body=dashboard_json(stage),
                opts=child,
            )
            if settings.dashboard
            else None
        )
        self.register_outputs(
            {
                "log_groups": {kind: group.name for kind, group in self.log_groups.items()},
                "alarms": {key: alarm.arn for key, alarm in self.alarms.items()},
            }
        )
