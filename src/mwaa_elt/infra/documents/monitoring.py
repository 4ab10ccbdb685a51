"""A stage's alarms, dashboard and log groups as data: pure functions of the stage model.

The Pulumi component `mwaa_elt.infra.monitoring` only wires what these return, so the
definitions are tested without Pulumi, and `status` reads the same alarm names.

Metric namespaces and dimensions are the ones the MWAA user guide documents:
- Airflow's metrics, namespace `AmazonMWAA`, dimensions `Function` (or `DAG`/`Task`) and
  `Environment`: https://docs.aws.amazon.com/mwaa/latest/userguide/access-metrics-cw.html
  (`SchedulerHeartbeat` Function=Scheduler; `ImportErrors`, `TotalParseTime`
  Function=DAG Processing; `QueuedTasks`, `RunningTasks`, `OpenSlots` Function=Executor;
  `TaskInstanceFailures` DAG=All, Task=All), as the guide's own dashboard template uses them:
  https://docs.aws.amazon.com/mwaa/latest/userguide/monitoring-dashboard.html
- the environment's containers and queue, namespace `AWS/MWAA`, dimensions `Cluster` / `Queue`
  and `Environment` (`NumWorkers`, `NumAdditionalWorkers`):
  https://docs.aws.amazon.com/mwaa/latest/userguide/accessing-metrics-cw-container-queue-db.html
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from mwaa_elt.stage import ALARM_NAMES, AlarmSettings, Stage

AIRFLOW_NAMESPACE = "AmazonMWAA"
CONTAINER_NAMESPACE = "AWS/MWAA"
ATHENA_NAMESPACE = "AWS/Athena"
EMR_NAMESPACE = "AWS/ElasticMapReduce"
HEALTH_ALARM = "environment-health"

Comparison = Literal["GreaterThanOrEqualToThreshold", "LessThanThreshold", "GreaterThanThreshold"]
MissingData = Literal["breaching", "notBreaching", "ignore", "missing"]


@dataclass(frozen=True)
class Threshold:
    """One alarm's effective settings: the stack file's overrides over the stage's defaults."""

    enabled: bool
    threshold: int
    period_seconds: int
    evaluation_periods: int

    @property
    def window_minutes(self) -> int:
        """How long the condition must hold before the alarm fires."""
        return self.period_seconds * self.evaluation_periods // 60


# Production pages fast: 5 minutes without a scheduler heartbeat, any import error, any task
# failure, tasks waiting 15 minutes with no free worker slot. Other stages are for iterating:
# they tell about outages that last, and not about every failed experiment.
PRODUCTION_DEFAULTS: dict[str, Threshold] = {
    "schedulerHeartbeat": Threshold(True, 1, 60, 5),
    "importErrors": Threshold(True, 1, 300, 1),
    "taskFailures": Threshold(True, 1, 300, 1),
    "workerSaturation": Threshold(True, 1, 300, 3),
}
QUIET_DEFAULTS: dict[str, Threshold] = {
    "schedulerHeartbeat": Threshold(True, 1, 300, 3),
    "importErrors": Threshold(True, 1, 900, 2),
    "taskFailures": Threshold(False, 10, 3600, 1),
    "workerSaturation": Threshold(True, 5, 900, 4),
}
PRODUCTION_LOG_RETENTION_DAYS = 365
QUIET_LOG_RETENTION_DAYS = 30


@dataclass(frozen=True)
class Monitoring:
    """What a stage is monitored with, every default resolved."""

    alert_topic: str | None
    log_retention_days: int
    dashboard: bool
    thresholds: dict[str, Threshold] = field(hash=False)


def monitoring_settings(stage: Stage) -> Monitoring:
    """The stage's monitoring: its `monitoring:` keys over the production or quiet defaults."""
    config = stage.config.monitoring
    defaults = PRODUCTION_DEFAULTS if stage.production else QUIET_DEFAULTS
    thresholds = {
        name: _merged(defaults[name], getattr(config, _snake(name))) for name in ALARM_NAMES
    }
    retention = config.log_retention_days or (
        PRODUCTION_LOG_RETENTION_DAYS if stage.production else QUIET_LOG_RETENTION_DAYS
    )
    topics = stage.config.alert_topics
    return Monitoring(
        alert_topic=config.alert_topic or (topics[0] if topics else None),
        log_retention_days=retention,
        dashboard=config.dashboard,
        thresholds=thresholds,
    )


def _merged(default: Threshold, override: AlarmSettings) -> Threshold:
    changes = {k: v for k, v in override.model_dump().items() if v is not None}
    return replace(default, **changes)


def _snake(camel: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)


# -- alarms ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricQuery:
    """One entry of an alarm's metric math: a metric (stat over a period) or an expression."""

    id: str
    return_data: bool
    expression: str | None = None
    label: str | None = None
    namespace: str | None = None
    metric_name: str | None = None
    dimensions: dict[str, str] | None = None
    stat: str | None = None
    period: int | None = None

    def to_args(self) -> dict[str, Any]:
        """As pulumi-aws's `MetricAlarmMetricQueryArgs` takes it."""
        args: dict[str, Any] = {"id": self.id, "return_data": self.return_data}
        if self.expression is not None:
            args["expression"] = self.expression
            args["label"] = self.label
            return args
        args["metric"] = {
            "namespace": self.namespace,
            "metric_name": self.metric_name,
            "dimensions": self.dimensions,
            "stat": self.stat,
            "period": self.period,
        }
        return args


@dataclass(frozen=True)
class AlarmDefinition:
    """A CloudWatch metric alarm on the stage's environment, notifying the stage's topic."""

    key: str  # the stack-config name: schedulerHeartbeat, importErrors, ...
    name: str
    description: str
    comparison: Comparison
    threshold: float
    evaluation_periods: int
    missing_data: MissingData
    # A single metric (namespace … period) or metric math (queries); never both.
    namespace: str | None = None
    metric_name: str | None = None
    dimensions: dict[str, str] | None = None
    statistic: str | None = None
    period: int | None = None
    queries: tuple[MetricQuery, ...] = ()


def alarm_name(stage: Stage, key: str) -> str:
    """`<environment>-<alarm>` (`<prefix>-<stage>-<alarm>`): the alarm names `status` looks for.

    Named after the environment, so a cutover's green environment has alarms of its own."""
    return f"{stage.environment_name}-{_kebab(key)}"


def _kebab(camel: str) -> str:
    return _snake(camel).replace("_", "-")


def alarm_definitions(stage: Stage) -> list[AlarmDefinition]:
    """The enabled alarms of the stage, in a fixed order."""
    settings = monitoring_settings(stage).thresholds
    env = stage.environment_name
    alarms: list[AlarmDefinition] = []
    heartbeat = settings["schedulerHeartbeat"]
    if heartbeat.enabled:
        alarms.append(
            AlarmDefinition(
                key="schedulerHeartbeat",
                name=alarm_name(stage, "schedulerHeartbeat"),
                description=(
                    f"No scheduler heartbeat from {env} for {heartbeat.window_minutes} minutes: "
                    "the scheduler is down or stuck, and no task is being scheduled."
                ),
                namespace=AIRFLOW_NAMESPACE,
                metric_name="SchedulerHeartbeat",
                dimensions={"Function": "Scheduler", "Environment": env},
                statistic="SampleCount",
                period=heartbeat.period_seconds,
                evaluation_periods=heartbeat.evaluation_periods,
                comparison="LessThanThreshold",
                threshold=heartbeat.threshold,
                # A scheduler that stopped sends nothing at all: no data is the failure itself.
                missing_data="breaching",
            )
        )
    errors = settings["importErrors"]
    if errors.enabled:
        alarms.append(
            AlarmDefinition(
                key="importErrors",
                name=alarm_name(stage, "importErrors"),
                description=(
                    f"{env} reports DAG import errors: a DAG file fails to parse and its "
                    "pipeline does not run. `mwaa-elt status` shows the errors."
                ),
                namespace=AIRFLOW_NAMESPACE,
                metric_name="ImportErrors",
                dimensions={"Function": "DAG Processing", "Environment": env},
                statistic="Maximum",
                period=errors.period_seconds,
                evaluation_periods=errors.evaluation_periods,
                comparison="GreaterThanOrEqualToThreshold",
                threshold=errors.threshold,
                missing_data="notBreaching",
            )
        )
    failures = settings["taskFailures"]
    if failures.enabled:
        alarms.append(
            AlarmDefinition(
                key="taskFailures",
                name=alarm_name(stage, "taskFailures"),
                description=(
                    f"{failures.threshold} or more task failures in {env} within "
                    f"{failures.period_seconds // 60} minutes."
                ),
                namespace=AIRFLOW_NAMESPACE,
                metric_name="TaskInstanceFailures",
                dimensions={"DAG": "All", "Task": "All", "Environment": env},
                statistic="Sum",
                period=failures.period_seconds,
                evaluation_periods=failures.evaluation_periods,
                comparison="GreaterThanOrEqualToThreshold",
                threshold=failures.threshold,
                missing_data="notBreaching",
            )
        )
    saturation = settings["workerSaturation"]
    if saturation.enabled:
        executor = {"Function": "Executor", "Environment": env}
        period = saturation.period_seconds
        alarms.append(
            AlarmDefinition(
                key="workerSaturation",
                name=alarm_name(stage, "workerSaturation"),
                description=(
                    f"{saturation.threshold} or more tasks queued in {env} with no free worker "
                    f"slot for {saturation.window_minutes} minutes: maxWorkers is reached or "
                    "workers do not start."
                ),
                queries=(
                    MetricQuery(
                        "queued",
                        False,
                        namespace=AIRFLOW_NAMESPACE,
                        metric_name="QueuedTasks",
                        dimensions=executor,
                        stat="Minimum",
                        period=period,
                    ),
                    MetricQuery(
                        "open",
                        False,
                        namespace=AIRFLOW_NAMESPACE,
                        metric_name="OpenSlots",
                        dimensions=executor,
                        stat="Maximum",
                        period=period,
                    ),
                    # Queued all period long while not one slot was open: waiting on workers.
                    MetricQuery(
                        "saturated",
                        True,
                        expression=f"IF(queued >= {saturation.threshold} AND open < 1, 1, 0)",
                        label="tasks queued with no free worker slot",
                    ),
                ),
                evaluation_periods=saturation.evaluation_periods,
                comparison="GreaterThanOrEqualToThreshold",
                threshold=1,
                missing_data="notBreaching",
            )
        )
    return alarms


def health_alarm_rule(stage: Stage) -> str | None:
    """The composite alarm's rule: the environment is unhealthy while any of its alarms fires."""
    names = [alarm.name for alarm in alarm_definitions(stage)]
    return " OR ".join(f'ALARM("{name}")' for name in names) or None


# -- dashboard -------------------------------------------------------------------------------


def dashboard_name(stage: Stage) -> str:
    return stage.environment_name


def alarm_arn(stage: Stage, name: str) -> str:
    return f"arn:{stage.partition}:cloudwatch:{stage.region}:{stage.account_id}:alarm:{name}"


def dashboard_body(stage: Stage) -> dict[str, Any]:
    """The stage's CloudWatch dashboard: health, tasks, workers, scheduler, parsing, Athena, EMR."""
    env, region = stage.environment_name, stage.region
    airflow = [AIRFLOW_NAMESPACE]
    names = [alarm.name for alarm in alarm_definitions(stage)]
    if names:
        names.append(alarm_name(stage, HEALTH_ALARM))

    def metric(
        title: str, metrics: list[list[Any]], *, stat: str, x: int, y: int, width: int = 12
    ) -> dict[str, Any]:
        return {
            "type": "metric",
            "x": x,
            "y": y,
            "width": width,
            "height": 6,
            "properties": {
                "title": title,
                "region": region,
                "view": "timeSeries",
                "stat": stat,
                "period": 300,
                "metrics": metrics,
            },
        }

    def search(expression: str, label: str, id_: str) -> list[Any]:
        # One line per matching metric, however many; matched by namespace, name and the
        # documented dimension, whatever other dimensions the metric has.
        return [{"expression": expression, "label": label, "id": id_}]

    widgets = [
        {
            "type": "alarm",
            "x": 0,
            "y": 0,
            "width": 24,
            "height": 3,
            "properties": {
                "title": f"{env} health",
                "alarms": sorted(alarm_arn(stage, name) for name in names),
            },
        },
        metric(
            "Queued and running tasks",
            [
                [*airflow, "QueuedTasks", "Function", "Executor", "Environment", env],
                [*airflow, "RunningTasks", "Function", "Executor", "Environment", env],
            ],
            stat="Maximum",
            x=0,
            y=3,
        ),
        metric(
            "Workers",
            [
                search(
                    f'SEARCH(\'Namespace="{CONTAINER_NAMESPACE}" Environment="{env}" '
                    f'(MetricName="NumWorkers" OR MetricName="NumAdditionalWorkers")\', '
                    "'Maximum', 300)",
                    "workers",
                    "workers",
                )
            ],
            stat="Maximum",
            x=12,
            y=3,
        ),
        metric(
            "Scheduler heartbeat",
            [[*airflow, "SchedulerHeartbeat", "Function", "Scheduler", "Environment", env]],
            stat="SampleCount",
            x=0,
            y=9,
        ),
        metric(
            "DAG processing: total parse time (s), import errors",
            [
                [*airflow, "TotalParseTime", "Function", "DAG Processing", "Environment", env],
                [
                    *airflow,
                    "ImportErrors",
                    "Function",
                    "DAG Processing",
                    "Environment",
                    env,
                    {"yAxis": "right"},
                ],
            ],
            stat="Maximum",
            x=12,
            y=9,
        ),
        metric(
            f"Athena bytes scanned, workgroup {stage.athena_workgroup}",
            [
                search(
                    f'SEARCH(\'Namespace="{ATHENA_NAMESPACE}" MetricName="ProcessedBytes" '
                    f"WorkGroup=\"{stage.athena_workgroup}\"', 'Sum', 300)",
                    "bytes scanned",
                    "athena",
                )
            ],
            stat="Sum",
            x=0,
            y=15,
        ),
        metric(
            # Each stage has its own account and region, so every cluster there is the stage's.
            f"EMR clusters in {stage.account_id} {region} (running apps per cluster)",
            [
                search(
                    f'SEARCH(\'Namespace="{EMR_NAMESPACE}" MetricName="AppsRunning"\', '
                    "'Maximum', 300)",
                    "clusters",
                    "emr",
                )
            ],
            stat="Maximum",
            x=12,
            y=15,
        ),
    ]
    return {"widgets": widgets}


def dashboard_json(stage: Stage) -> str:
    """The dashboard body as CloudWatch takes it: one JSON string, keys sorted."""
    return json.dumps(dashboard_body(stage), sort_keys=True)
