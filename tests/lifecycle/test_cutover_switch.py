"""Cutover switch and finish: pause the old environment, back up and restore into the new one,
unpause there, verify, record; finish refuses before the switch, then prints the stack change
that retires the old environment, then says done."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import boto3
import pytest
from airflow_fake import FakeAirflow, StubbedMwaa

from mwaa_elt.errors import ConfigError
from mwaa_elt.lifecycle.cutover import (
    GreenEnvironment,
    SwitchRecord,
    SwitchStopped,
    execute_switch,
    explain_switch,
    finish_cutover,
    green_environment,
    load_switch,
    plan_switch,
    record_key,
)
from mwaa_elt.lifecycle.metadata import BackupBucket
from mwaa_elt.stage import Stage, load_stage
from mwaa_elt.stage.cutover_config import CutoverConfig

PIPELINES = ("movielens_scifi", "sales_daily", "weekly_report")


@pytest.fixture
def stage(stages: dict[str, Stage]) -> Stage:
    return stages["staging"]


@pytest.fixture
def green(stage: Stage) -> GreenEnvironment:
    return GreenEnvironment(f"{stage.environment_name}-green", "green/dags/", "3.0.6")


@pytest.fixture
def bucket(endpoint: str, stage: Stage) -> BackupBucket:
    return BackupBucket(stage, boto3.client("s3", region_name="eu-west-1", endpoint_url=endpoint))


def _environments(stage: Stage, green: GreenEnvironment) -> dict[str, FakeAirflow]:
    old = FakeAirflow(2)
    old.dags = {"movielens_scifi": False, "sales_daily": False, "weekly_report": True, "ops": False}
    old.variables = {"env": {"key": "env", "value": "staging", "description": None}}
    old.pools["athena"] = {"name": "athena", "slots": 4, "description": "", "include_deferred": False}  # fmt: skip
    new = FakeAirflow(3)
    new.dags = {name: True for name in PIPELINES} | {"ops": True}  # promoted paused
    return {stage.environment_name: old, green.name: new}


def test_switch_pauses_old_restores_unpauses_new_and_verifies(
    stage: Stage, green: GreenEnvironment, bucket: BackupBucket
) -> None:
    envs = _environments(stage, green)
    old, new = envs[stage.environment_name], envs[green.name]
    mwaa = StubbedMwaa(envs)
    plan = plan_switch(stage, green, PIPELINES, dict(old.dags), "b1")
    assert "pause in mwaa-elt-staging: movielens_scifi, sales_daily" in "\n".join(explain_switch(plan))  # fmt: skip
    result = execute_switch(plan, mwaa, bucket, stage=stage)

    assert old.dags == {"movielens_scifi": True, "sales_daily": True, "weekly_report": True, "ops": False}  # fmt: skip
    assert new.dags == {"movielens_scifi": False, "sales_daily": False, "weekly_report": True, "ops": False}  # fmt: skip
    assert new.variables == old.variables and new.pools == old.pools
    writes = [(env, method, path) for env, method, path in mwaa.calls if method == "PATCH"]
    first_unpause = writes.index((green.name, "PATCH", "/dags/movielens_scifi"))
    assert all(env == stage.environment_name for env, _, _ in writes[:2])  # old paused first
    assert first_unpause > 1
    assert result.record is not None and load_switch(bucket) == result.record
    assert result.record.unpaused == ("movielens_scifi", "sales_daily")


def test_switch_changes_nothing_when_the_new_environment_has_not_parsed_a_pipeline(
    stage: Stage, green: GreenEnvironment, bucket: BackupBucket
) -> None:
    envs = _environments(stage, green)
    del envs[green.name].dags["weekly_report"]
    mwaa = StubbedMwaa(envs)
    plan = plan_switch(stage, green, PIPELINES, dict(envs[stage.environment_name].dags), "b1")
    with pytest.raises(SwitchStopped, match=r"has not parsed weekly_report.*nothing was changed"):
        execute_switch(plan, mwaa, bucket, stage=stage)
    assert not any(method != "GET" for _, method, _ in mwaa.calls)
    assert load_switch(bucket) is None


def test_a_failed_verification_stops_before_recording_and_says_how_to_go_back(
    stage: Stage, green: GreenEnvironment, bucket: BackupBucket
) -> None:
    envs = _environments(stage, green)
    envs[green.name].import_errors = [
        {
            "filename": "/usr/local/airflow/dags/sales_daily.py",
            "timestamp": "2026-12-01T22:00:00Z",
            "stack_trace": "Traceback...\nImportError: cannot import name 'Dataset'",
        }
    ]
    mwaa = StubbedMwaa(envs)
    plan = plan_switch(stage, green, PIPELINES, dict(envs[stage.environment_name].dags), "b1")
    with pytest.raises(SwitchStopped) as stopped:
        execute_switch(plan, mwaa, bucket, stage=stage)
    message = "\n".join(stopped.value.messages)
    assert "stopped at step 6/7" in message and "sales_daily: import error" in message
    assert "unpause them there (movielens_scifi, sales_daily) to go back" in message
    assert load_switch(bucket) is None


CUTOVER_BLOCK = """\
  # Cutover to Airflow 3.
  mwaa-elt:cutover:
    airflowVersion: 3.0.6
    environmentClass: mw1.large
    schedulers: 3
"""
# The change `finish` prints for that block: exactly these lines of the stack file, no other.
RETIRE_DIFF = [
    "-  mwaa-elt:airflowVersion: 2.11.0",
    "-  mwaa-elt:environmentClass: mw1.medium",
    "+  mwaa-elt:airflowVersion: 3.0.6",
    "+  mwaa-elt:environmentClass: mw1.large",
    "-  mwaa-elt:schedulers: 2",
    "+  mwaa-elt:schedulers: 3",
    "-  mwaa-elt:cutover:",
    "-    airflowVersion: 3.0.6",
    "-    environmentClass: mw1.large",
    "-    schedulers: 3",
    "+  # Blue retired after the cutover: mwaa-elt-staging-green is the stage's own environment.",
    "+  mwaa-elt:servingEnvironment: green",
]


def test_finish_refuses_before_the_switch_then_prints_the_change_then_says_done(
    scratch_project: Path, green: GreenEnvironment, endpoint: str
) -> None:
    """The whole retirement: refused before the switch; after it, the stack change (a diff)
    that makes green the stage's own; once applied, `pulumi up` pending while the old
    environment exists, then done — the record and the stage naming the same environment."""
    stacks = scratch_project / "stacks"
    path = stacks / "Pulumi.staging.yaml"
    path.write_text(path.read_text() + CUTOVER_BLOCK)
    stage = load_stage(stacks, "staging")
    s3 = boto3.client("s3", region_name="eu-west-1", endpoint_url=endpoint)
    bucket = BackupBucket(stage, s3)
    shown = "stacks/Pulumi.staging.yaml"
    with pytest.raises(ConfigError, match=r"the cutover switch has not happened.*cutover switch --stage staging"):  # fmt: skip
        finish_cutover(stage, load_switch(bucket), path.read_text(), shown)

    envs = _environments(stage, green)
    plan = plan_switch(stage, green, PIPELINES, dict(envs[stage.environment_name].dags), "b1")
    execute_switch(plan, StubbedMwaa(envs), bucket, stage=stage)
    record = load_switch(bucket)
    assert record is not None
    report = finish_cutover(stage, record, path.read_text(), shown)
    assert report.state == "retire" and report.change is not None
    assert (
        "the pipelines of staging run in mwaa-elt-staging-green (Airflow 3.0.6)" in report.lines[0]
    )
    changed = [
        line.rstrip("\n")
        for line in report.change.diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("---", "+++"))
    ]
    assert changed == RETIRE_DIFF
    assert report.to_dict()["diff"] == report.change.diff

    path.write_text(report.change.after)  # the user applies the change
    retired = load_stage(stacks, "staging")
    assert retired.config.cutover is None and retired.green is None
    assert retired.environment_name == record.new_environment == "mwaa-elt-staging-green"
    assert (retired.airflow.version, retired.config.environment_class) == ("3.0.6", "mw1.large")
    assert retired.config.schedulers == 3
    # Green's promotion state is the stage's now; the switch record and backups stay put.
    assert (retired.dags_prefix, retired.manifest_key) == (
        "green/dags/",
        ".mwaa-elt/green/manifest.json",
    )
    assert record_key(retired) == record_key(stage) == ".mwaa-elt/cutover.json"
    assert load_switch(BackupBucket(retired, s3)) == record

    pending = finish_cutover(retired, record, path.read_text(), shown, "AVAILABLE")
    assert pending.state == "apply" and pending.change is None
    assert (
        "retires mwaa-elt-staging, which still exists (AVAILABLE): run `pulumi up"
        in (pending.lines[1])
    )
    done = finish_cutover(retired, record, path.read_text(), shown, None)
    assert done.state == "done" and done.lines[1].startswith("done: mwaa-elt-staging is retired")

    # A stack that neither keeps the block nor serves from green would delete green.
    path.write_text(
        path.read_text().replace("servingEnvironment: green", "servingEnvironment: blue")
    )
    with pytest.raises(ConfigError, match=r"deletes mwaa-elt-staging-green, the one running"):
        finish_cutover(load_stage(stacks, "staging"), record, path.read_text(), shown)
    # Switching again once green serves the stage is refused by name.
    with pytest.raises(ConfigError, match=r"servingEnvironment: stage staging already runs in"):
        green_environment(retired)


def test_finish_on_a_production_stage_says_blue_is_protected(
    stages: dict[str, Stage], green: GreenEnvironment
) -> None:
    prod = stages["prod"]
    cutover = CutoverConfig.model_validate({"airflowVersion": "3.0.6", "environmentClass": "mw1.large"})  # fmt: skip
    with_cutover = replace(prod, config=prod.config.model_copy(update={"cutover": cutover}))
    record = SwitchRecord(
        stage="prod",
        old_environment="mwaa-elt-prod",
        new_environment="mwaa-elt-prod-green",
        new_airflow_version="3.0.6",
        backup_id="b1",
        pipelines=("movielens_scifi",),
        unpaused=("movielens_scifi",),
        switched_at="2026-12-02T01:00:00+00:00",
    )
    text = prod.source_file.read_text() + CUTOVER_BLOCK.replace("schedulers: 3\n", "")
    report = finish_cutover(with_cutover, record, text, "stacks/Pulumi.prod.yaml")
    assert report.state == "retire" and report.change is not None
    assert "+  mwaa-elt:servingEnvironment: green" in report.change.diff
    assert "pulumi state unprotect --stack prod" in report.lines[-1]


def test_a_stage_without_a_second_environment_is_told_which_setting_adds_it(
    stage: Stage,
) -> None:
    with pytest.raises(ConfigError, match=r"Pulumi.staging.yaml: mwaa-elt:cutover: .*no second"):
        green_environment(stage)

    # The stage's `cutover:` block, as the stack file's loader builds it.
    cutover = CutoverConfig.model_validate(
        {"airflowVersion": "3.0.6", "environmentClass": stage.config.environment_class}
    )
    with_cutover = replace(stage, config=stage.config.model_copy(update={"cutover": cutover}))
    built = green_environment(with_cutover)
    assert built == GreenEnvironment("mwaa-elt-staging-green", "green/dags/", "3.0.6")


def test_a_pipeline_the_old_environment_has_not_parsed_refuses_the_plan(
    stage: Stage, green: GreenEnvironment
) -> None:
    with pytest.raises(ConfigError, match=r"weekly_report: live in stage staging but not parsed"):
        plan_switch(stage, green, PIPELINES, {"movielens_scifi": False, "sales_daily": True}, "b1")
