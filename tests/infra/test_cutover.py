"""A stack with `cutover:` under Pulumi's mocks: a second (green) environment beside the stage's
own, on the same network, role, bucket and key, with its own files, logs and alarms, passing
every guardrail."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml
from guardrail_checks import every_violation

from mwaa_elt.infra.documents.environment_files import build_requirements
from mwaa_elt.infra.documents.guardrails import (
    StackResource,
    StageInfo,
    production_alarm_violations,
)
from mwaa_elt.infra.documents.iam_policies import (
    execution_role_policies,
    execution_role_trust_policy,
)
from mwaa_elt.infra.preview import PlannedResource, Preview, run_preview
from mwaa_elt.stage import MWAA_LOG_TYPES, Stage, load_stage
from mwaa_elt.stage.green import GreenStage

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENT_DIR = ROOT / "infra" / "environment"
ENVIRONMENT = "aws:mwaa/environment:Environment"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
ROLE = "aws:iam/role:Role"

# Per stack, a cutover to another version (and, for dev, another class).
CUTOVERS: dict[str, dict[str, str]] = {
    "dev": {"airflowVersion": "3.2.1", "environmentClass": "mw1.medium"},
    "staging": {"airflowVersion": "3.0.6", "environmentClass": "mw1.medium"},
    "prod": {"airflowVersion": "3.0.6", "environmentClass": "mw1.large"},
}
STAGES = tuple(CUTOVERS)


def _stage(name: str, tmp: Path) -> Stage:
    stacks = tmp / "stacks"
    if not stacks.exists():
        stacks.mkdir(parents=True)
        for path in (ROOT / "stacks").glob("Pulumi.*.yaml"):
            (stacks / path.name).write_text(path.read_text())
    path = stacks / f"Pulumi.{name}.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["config"]["mwaa-elt:cutover"] = CUTOVERS[name]
    path.write_text(yaml.safe_dump(raw))
    return load_stage(stacks, name)


@pytest.fixture(scope="module")
def previews(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Stage, Preview]]:
    tmp = tmp_path_factory.mktemp("cutover")
    out = {}
    for name in STAGES:
        stage = _stage(name, tmp)
        out[name] = (stage, run_preview(stage, ENVIRONMENT_DIR))
    return out


def _environments(preview: Preview) -> dict[str, PlannedResource]:
    return {r.name: r for r in preview.resources if r.type == ENVIRONMENT}


@pytest.mark.parametrize("name", STAGES)
def test_cutover_creates_a_green_environment_with_the_target_version_and_class(previews, name):
    stage, preview = previews[name]
    environments = _environments(preview)
    assert sorted(environments) == ["airflow-environment", "airflow-green-environment"]
    blue = environments["airflow-environment"].settings
    green = environments["airflow-green-environment"].settings
    assert blue["airflowVersion"] == stage.airflow.version  # the stage's own is untouched
    assert blue["name"] == f"mwaa-elt-{name}"
    assert green["name"] == f"mwaa-elt-{name}-green"
    assert green["airflowVersion"] == CUTOVERS[name]["airflowVersion"]
    assert green["environmentClass"] == CUTOVERS[name]["environmentClass"]
    assert green["dagS3Path"] == "green/dags"
    assert blue["dagS3Path"] == "dags"
    # Same execution role, bucket, subnets, security group, key, access mode and sizing.
    for key in (
        "executionRoleArn",
        "sourceBucketArn",
        "networkConfiguration",
        "webserverAccessMode",
        "airflowConfigurationOptions",
        "maxWorkers",
        "minWorkers",
        "schedulers",
        "weeklyMaintenanceWindowStart",
    ):
        assert green[key] == blue[key], key
    assert green.get("kmsKey") == blue.get("kmsKey")
    if stage.production:
        assert green["kmsKey"]
        protected = {r.name: r.protected for r in preview.resources if r.type == ENVIRONMENT}
        assert protected == {"airflow-environment": True, "airflow-green-environment": True}
    assert (
        preview.outputs["cutover_environment_name"] == f"mwaa-elt-{name}-green"
        and preview.outputs["environment_name"] == f"mwaa-elt-{name}"
    )


@pytest.mark.parametrize("name", STAGES)
def test_green_environment_pins_its_own_files_with_its_versions_constraints(previews, name):
    stage, preview = previews[name]
    green_stage = stage.green
    assert isinstance(green_stage, GreenStage)
    objects = {r.settings["key"]: r for r in preview.resources if r.type == OBJECT}
    assert set(objects) >= {"green/requirements.txt", "green/plugins.zip", "green/startup.sh"}
    expected = build_requirements(green_stage, ENVIRONMENT_DIR / "requirements.txt")
    uploaded = objects["green/requirements.txt"].settings
    assert uploaded["contentSha256"] == hashlib.sha256(expected).hexdigest()
    assert f"constraints-{CUTOVERS[name]['airflowVersion']}/" in expected.decode()
    blue = objects["requirements.txt"].settings
    assert (
        blue["contentSha256"]
        == hashlib.sha256(
            build_requirements(stage, ENVIRONMENT_DIR / "requirements.txt")
        ).hexdigest()
    )
    green = _environments(preview)["airflow-green-environment"].settings
    assert green["requirementsS3Path"] == "green/requirements.txt"
    assert green["pluginsS3Path"] == "green/plugins.zip"
    assert green["startupScriptS3Path"] == "green/startup.sh"
    states = preview.states
    assert (
        green["requirementsS3ObjectVersion"]
        == (states["environment-files-green-requirements"]["versionId"])
    )


@pytest.mark.parametrize("name", STAGES)
def test_green_environment_has_its_log_groups_with_retention_and_its_alarms(previews, name):
    _, preview = previews[name]
    groups = {r.settings["name"]: r.settings for r in preview.resources if r.type == LOG_GROUP}
    blue_retention = groups[f"airflow-mwaa-elt-{name}-Task"]["retentionInDays"]
    for kind in MWAA_LOG_TYPES:
        group = groups[f"airflow-mwaa-elt-{name}-green-{kind}"]
        assert group["retentionInDays"] == blue_retention
        assert group.get("kmsKeyId") == groups[f"airflow-mwaa-elt-{name}-{kind}"].get("kmsKeyId")
    alarms = [r.settings for r in preview.resources if r.type == ALARM]
    green_alarms = [a for a in alarms if a["name"].startswith(f"mwaa-elt-{name}-green-")]
    blue_alarms = [a for a in alarms if a not in green_alarms]
    assert len(green_alarms) == len(blue_alarms) > 0
    for alarm in green_alarms:
        text = json.dumps(alarm)
        assert f'"mwaa-elt-{name}-green"' in text  # the green environment's metrics
        assert f'"mwaa-elt-{name}"' not in text


@pytest.mark.parametrize("name", STAGES)
def test_one_execution_role_trusted_by_and_scoped_to_both_environments(previews, name):
    stage, preview = previews[name]
    roles = [r for r in preview.resources if r.type == ROLE and "execution" in r.name]
    assert len(roles) == 1
    trust = json.loads(roles[0].settings["assumeRolePolicy"])
    assert trust == execution_role_trust_policy(stage)
    arns = trust["Statement"][0]["Condition"]["ArnLike"]["aws:SourceArn"]
    assert arns == [stage.environment_arn, stage.green.environment_arn]
    (baseline,) = [p.document for p in execution_role_policies(stage) if p.name == "mwaa-baseline"]
    sids = {s["Sid"]: s for s in baseline["Statement"] if "Sid" in s}
    assert sids["PublishMetrics"]["Resource"] == arns
    logs = sids["EnvironmentLogs"]["Resource"]
    assert any(f"log-group:airflow-mwaa-elt-{name}-green-*" in arn for arn in logs)


@pytest.mark.parametrize("name", STAGES)
def test_every_guardrail_holds_for_both_environments(previews, name):
    stage, preview = previews[name]
    info = StageInfo(name, stage.production)
    assert len([r for r in preview.resources if r.type == ENVIRONMENT]) == 2
    assert every_violation(preview.resources, info) == []


def test_production_alarm_rule_would_catch_a_green_environment_without_alarms(previews):
    _, preview = previews["prod"]
    resources = [
        StackResource(r.name, r.type, r.settings)
        for r in preview.resources
        if not (r.type == ALARM and r.settings["name"].startswith("mwaa-elt-prod-green-"))
    ]
    found = production_alarm_violations(resources, StageInfo("prod", True))
    assert found and all("mwaa-elt-prod-green" in message for _, message in found)


def test_without_cutover_the_program_declares_one_environment():
    stage = load_stage(ROOT / "stacks", "staging")
    assert stage.config.cutover is None and stage.green is None
    preview = run_preview(stage, ENVIRONMENT_DIR)
    assert list(_environments(preview)) == ["airflow-environment"]
    assert not any("green" in r.name for r in preview.resources)
    assert not any(key.startswith("cutover_") for key in preview.outputs)
