"""Operations as code (#13): each stage's alarms, dashboard and log groups, as data and as the
Pulumi program declares them under mocks, with the thresholds its stack file asks for."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from mwaa_elt.errors import ConfigError
from mwaa_elt.infra.documents import guardrails
from mwaa_elt.infra.documents.guardrails import UNKNOWN, StackResource, StageInfo
from mwaa_elt.infra.documents.monitoring import (
    PRODUCTION_DEFAULTS,
    QUIET_DEFAULTS,
    alarm_definitions,
    alarm_name,
    dashboard_body,
    monitoring_settings,
)
from mwaa_elt.infra.preview import PlannedResource, Preview, run_preview
from mwaa_elt.stage import MWAA_LOG_TYPES, Stage, load_stage

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("dev", "staging", "prod")
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
COMPOSITE = "aws:cloudwatch/compositeAlarm:CompositeAlarm"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
ENVIRONMENT = "aws:mwaa/environment:Environment"

# Per stage and alarm: (threshold, period seconds, evaluation periods); None: no such alarm.
# Spelled out, so a changed default or stack file fails here and is a decision, not an accident.
EXPECTED_ALARMS: dict[str, dict[str, tuple[int, int, int] | None]] = {
    "dev": {
        "schedulerHeartbeat": (1, 300, 3),
        "importErrors": (1, 900, 2),
        "taskFailures": None,
        "workerSaturation": (5, 900, 4),
    },
    "staging": {
        "schedulerHeartbeat": (1, 300, 3),
        "importErrors": (1, 900, 2),
        "taskFailures": (3, 3600, 1),  # staging's stack file turns it on, at 3 an hour
        "workerSaturation": (5, 900, 4),
    },
    "prod": {
        "schedulerHeartbeat": (1, 60, 5),
        "importErrors": (1, 300, 1),
        "taskFailures": (1, 300, 1),
        "workerSaturation": (1, 300, 3),
    },
}
EXPECTED_RETENTION = {"dev": 30, "staging": 90, "prod": 365}


@cache
def _stage(name: str) -> Stage:
    return load_stage(ROOT / "stacks", name)


@cache
def _preview(name: str) -> Preview:
    return run_preview(_stage(name))


def _of_type(preview: Preview, type_: str) -> list[PlannedResource]:
    return [r for r in preview.resources if r.type == type_]


def _topic_arn(preview: Preview) -> str:
    return preview.states["runtime-topic-data-alerts"]["arn"]


# -- the stage's settings --------------------------------------------------------------------


@pytest.mark.parametrize("name", STAGES)
def test_each_stage_gets_its_thresholds_and_retention(name: str) -> None:
    settings = monitoring_settings(_stage(name))
    assert settings.log_retention_days == EXPECTED_RETENTION[name]
    assert settings.alert_topic == "data-alerts"
    got = {
        key: (t.threshold, t.period_seconds, t.evaluation_periods) if t.enabled else None
        for key, t in settings.thresholds.items()
    }
    assert got == EXPECTED_ALARMS[name]


def test_production_is_stricter_than_the_quiet_defaults() -> None:
    for key, strict in PRODUCTION_DEFAULTS.items():
        quiet = QUIET_DEFAULTS[key]
        assert strict.enabled
        assert strict.window_minutes <= quiet.window_minutes, key
        assert strict.threshold <= quiet.threshold, key


def _edit(project: Path, stage: str, monitoring: Any) -> None:
    path = project / "stacks" / f"Pulumi.{stage}.yaml"
    data = yaml.safe_load(path.read_text())
    data["config"]["mwaa-elt:monitoring"] = monitoring
    path.write_text(yaml.safe_dump(data))


def test_a_stack_file_overrides_one_key_and_keeps_the_other_defaults(scratch_project) -> None:
    _edit(scratch_project, "dev", {"schedulerHeartbeat": {"evaluationPeriods": 12}})
    settings = monitoring_settings(load_stage(scratch_project / "stacks", "dev"))
    heartbeat = settings.thresholds["schedulerHeartbeat"]
    assert (heartbeat.period_seconds, heartbeat.evaluation_periods) == (300, 12)
    assert heartbeat.window_minutes == 60
    assert settings.thresholds["importErrors"] == QUIET_DEFAULTS["importErrors"]


BAD_MONITORING = [
    ("dev", {"logRetentionDays": 45}, "mwaa-elt:monitoring.logRetentionDays: 45 is not a CloudWatch Logs retention period; allowed: 1, 3"),
    ("dev", {"importErrors": {"periodSeconds": 120}}, "mwaa-elt:monitoring.importErrors.periodSeconds: 120 is not an alarm period; allowed: 60, 300, 900, 3600"),
    ("dev", {"schedulerHeartbeet": {}}, "mwaa-elt:monitoring.schedulerHeartbeet: unknown key; did you mean 'schedulerHeartbeat'?"),
    ("dev", {"taskFailures": {"treshold": 2}}, "mwaa-elt:monitoring.taskFailures.treshold: unknown key; did you mean 'threshold'?"),
    ("dev", {"workerSaturation": {"threshold": 0}}, "mwaa-elt:monitoring.workerSaturation.threshold: 0 is too small; the minimum is 1"),
    ("dev", {"alertTopic": "pager"}, "mwaa-elt:monitoring.alertTopic: 'pager' is not one of the stage's alertTopics (data-alerts)"),
    ("prod", {"taskFailures": {"enabled": False}}, "mwaa-elt:monitoring.taskFailures.enabled: a production stage keeps every alarm"),
]  # fmt: skip


@pytest.mark.parametrize(("stage", "monitoring", "expected"), BAD_MONITORING)
def test_bad_monitoring_config_names_the_file_and_key(scratch_project, stage, monitoring, expected):
    _edit(scratch_project, stage, monitoring)
    with pytest.raises(ConfigError) as caught:
        load_stage(scratch_project / "stacks", stage)
    messages = caught.value.messages
    assert any(expected in m for m in messages), messages
    assert all(f"Pulumi.{stage}.yaml: " in m for m in messages)


# -- alarms as data --------------------------------------------------------------------------


@pytest.mark.parametrize("name", STAGES)
def test_every_alarm_watches_this_stage_environment_only(name: str) -> None:
    stage = _stage(name)
    for alarm in alarm_definitions(stage):
        metrics = [alarm.dimensions] if alarm.queries == () else [
            q.dimensions for q in alarm.queries if q.expression is None
        ]  # fmt: skip
        assert metrics and all(d["Environment"] == stage.environment_name for d in metrics)
        assert (
            alarm.name
            == f"mwaa-elt-{name}-"
            + {
                "schedulerHeartbeat": "scheduler-heartbeat",
                "importErrors": "import-errors",
                "taskFailures": "task-failures",
                "workerSaturation": "worker-saturation",
            }[alarm.key]
        )


def test_a_silent_scheduler_is_a_breach_and_quiet_metrics_are_not() -> None:
    alarms = {a.key: a for a in alarm_definitions(_stage("prod"))}
    heartbeat = alarms["schedulerHeartbeat"]
    assert (heartbeat.namespace, heartbeat.metric_name) == ("AmazonMWAA", "SchedulerHeartbeat")
    assert heartbeat.dimensions == {"Function": "Scheduler", "Environment": "mwaa-elt-prod"}
    assert heartbeat.comparison == "LessThanThreshold"
    assert heartbeat.missing_data == "breaching"
    for key in ("importErrors", "taskFailures", "workerSaturation"):
        assert alarms[key].missing_data == "notBreaching", key


def test_worker_saturation_needs_queued_tasks_and_no_open_slot() -> None:
    (alarm,) = [a for a in alarm_definitions(_stage("prod")) if a.key == "workerSaturation"]
    queries = {q.id: q for q in alarm.queries}
    assert queries["queued"].metric_name == "QueuedTasks" and queries["queued"].stat == "Minimum"
    assert queries["open"].metric_name == "OpenSlots" and queries["open"].stat == "Maximum"
    assert queries["saturated"].expression == "IF(queued >= 1 AND open < 1, 1, 0)"
    assert [q.return_data for q in alarm.queries] == [False, False, True]


# -- the program under mocks -----------------------------------------------------------------


@pytest.mark.parametrize("name", STAGES)
def test_preview_declares_the_alarms_with_the_stage_thresholds_and_topic(name: str) -> None:
    stage, preview = _stage(name), _preview(name)
    topic = _topic_arn(preview)
    alarms = {r.settings["name"]: r.settings for r in _of_type(preview, ALARM)}
    expected = {k: v for k, v in EXPECTED_ALARMS[name].items() if v is not None}
    assert set(alarms) == {alarm_name(stage, key) for key in expected}
    for key, (threshold, period, periods) in expected.items():
        alarm = alarms[alarm_name(stage, key)]
        assert alarm["alarmActions"] == [topic] and alarm["okActions"] == [topic]
        assert alarm["evaluationPeriods"] == periods
        assert alarm["tags"]["stage"] == name
        if key == "workerSaturation":
            assert alarm["threshold"] == 1
            metrics = [q["metric"] for q in alarm["metricQueries"] if "metric" in q]
            assert {m["period"] for m in metrics} == {period}
            assert {m["dimensions"]["Environment"] for m in metrics} == {stage.environment_name}
            assert f">= {threshold} " in alarm["metricQueries"][2]["expression"]
        else:
            assert (alarm["threshold"], alarm["period"]) == (threshold, period)
            assert alarm["namespace"] == "AmazonMWAA"
            assert alarm["dimensions"]["Environment"] == stage.environment_name
    # CloudWatch can publish to the topic: the stage's own key, never the AWS-managed one.
    (sns,) = [r for r in preview.resources if r.name == "runtime-topic-data-alerts"]
    assert sns.settings.get("kmsMasterKeyId") == preview.outputs.get("kms_key_arn")
    (health,) = _of_type(preview, COMPOSITE)
    assert health.settings["alarmName"] == f"mwaa-elt-{name}-environment-health"
    assert health.settings["alarmActions"] == [topic]
    assert sorted(health.settings["alarmRule"].split(" OR ")) == sorted(
        f'ALARM("{alarm}")' for alarm in alarms
    )


@pytest.mark.parametrize("name", STAGES)
def test_preview_owns_the_environment_log_groups_with_retention_and_key(name: str) -> None:
    stage, preview = _stage(name), _preview(name)
    groups = {r.settings["name"]: r for r in _of_type(preview, LOG_GROUP)}
    assert set(groups) == {f"airflow-mwaa-elt-{name}-{kind}" for kind in MWAA_LOG_TYPES}
    key_arn = preview.outputs.get("kms_key_arn")
    for group in groups.values():
        assert group.settings["retentionInDays"] == EXPECTED_RETENTION[name]
        assert group.settings.get("kmsKeyId") == key_arn
        assert group.protected == (name == "prod")
    assert (key_arn is not None) == (name == "prod")
    # Each group name is one MWAA writes to, under the prefix the key policy lets Logs use.
    assert all(group.startswith(stage.log_group_prefix) for group in groups)
    assert preview.outputs["log_groups"] == stage.log_groups


def test_the_environment_waits_for_its_log_groups() -> None:
    from mwaa_elt.infra import preview as preview_module

    seen: dict[str, list[str]] = {}
    original = preview_module._RecordingMonitor.RegisterResource

    def spy(self, request):  # records which resources the environment depends on
        response = original(self, request)
        if request.type == ENVIRONMENT:
            seen["deps"] = list(request.dependencies)
        return response

    preview_module._RecordingMonitor.RegisterResource = spy
    try:
        run_preview(_stage("dev"))
    finally:
        preview_module._RecordingMonitor.RegisterResource = original
    groups = [urn for urn in seen["deps"] if "logGroup:LogGroup" in urn]
    assert len(groups) == len(MWAA_LOG_TYPES)


@pytest.mark.parametrize("name", STAGES)
def test_preview_declares_the_stage_dashboard(name: str) -> None:
    stage, preview = _stage(name), _preview(name)
    (dashboard,) = _of_type(preview, DASHBOARD)
    assert dashboard.settings["dashboardName"] == f"mwaa-elt-{name}"
    body = json.loads(dashboard.settings["dashboardBody"])
    assert body == dashboard_body(stage)
    text = json.dumps(body)
    titles = [w["properties"]["title"] for w in body["widgets"]]
    assert titles[0] == f"mwaa-elt-{name} health"
    for needed in ("tasks", "Workers", "heartbeat", "parse time", "Athena", "EMR"):
        assert any(needed in title for title in titles), needed
    assert f'WorkGroup=\\"{stage.athena_workgroup}\\"' in text
    assert f'Environment=\\"{stage.environment_name}\\"' in text
    names = [a.settings["name"] for a in _of_type(preview, ALARM)]
    names += [a.settings["alarmName"] for a in _of_type(preview, COMPOSITE)]
    assert body["widgets"][0]["properties"]["alarms"] == sorted(
        f"arn:aws:cloudwatch:{stage.region}:{stage.account_id}:alarm:{n}" for n in names
    )
    other = {"dev": "prod", "staging": "dev", "prod": "staging"}[name]
    assert f"mwaa-elt-{other}" not in text


# -- the guardrail ---------------------------------------------------------------------------


def _stack(preview: Preview) -> list[StackResource]:
    return [
        StackResource(f"urn:{r.type}::{r.name}", r.type, r.settings)
        for r in preview.resources
        if r.custom
    ]


@pytest.mark.parametrize("name", STAGES)
def test_every_stage_as_previewed_passes_the_production_alarm_rule(name: str) -> None:
    info = StageInfo(name, name == "prod")
    assert guardrails.production_alarm_violations(_stack(_preview(name)), info) == []


def test_production_without_an_alarm_or_its_topic_is_refused() -> None:
    prod = StageInfo("prod", True)
    resources = _stack(_preview("prod"))
    without_heartbeat = [r for r in resources if r.props.get("metricName") != "SchedulerHeartbeat"]
    ((urn, message),) = guardrails.production_alarm_violations(without_heartbeat, prod)
    assert urn.endswith("airflow-environment")
    assert "no alarm notifying an SNS topic on the scheduler heartbeat;" in message
    silent = [
        StackResource(r.urn, r.resource_type, {**r.props, "alarmActions": []})
        if r.resource_type == ALARM
        else r
        for r in resources
    ]
    ((_, message),) = guardrails.production_alarm_violations(silent, prod)
    assert "the scheduler heartbeat, DAG import errors, task failures, tasks queued" in message
    other_environment = [
        StackResource(r.urn, r.resource_type, {**r.props, "name": "someone-else"})
        if r.resource_type == ENVIRONMENT
        else r
        for r in resources
    ]
    assert guardrails.production_alarm_violations(other_environment, prod) != []
    # Dev has no rule; and a value the engine does not know yet is not a violation.
    assert guardrails.production_alarm_violations(without_heartbeat, StageInfo("dev", False)) == []
    unknown = [
        StackResource(r.urn, r.resource_type, {**r.props, "alarmActions": UNKNOWN})
        if r.resource_type == ALARM
        else r
        for r in resources
    ]
    assert guardrails.production_alarm_violations(unknown, prod) == []
