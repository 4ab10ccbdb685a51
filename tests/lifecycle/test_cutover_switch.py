"""Cutover switch and finish: pause the old environment, back up and restore into the new one,
unpause there, verify, record; finish refuses before the switch."""

from __future__ import annotations

from dataclasses import replace

import boto3
import pytest
from airflow_fake import FakeAirflow, StubbedMwaa

from mwaa_elt.errors import ConfigError
from mwaa_elt.lifecycle.cutover import (
    GreenEnvironment,
    SwitchStopped,
    execute_switch,
    explain_switch,
    finish_instructions,
    green_environment,
    load_switch,
    plan_switch,
)
from mwaa_elt.lifecycle.metadata import BackupBucket
from mwaa_elt.stage import Stage
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


def test_finish_refuses_before_the_switch_and_after_it_says_the_block_must_stay(
    stage: Stage, green: GreenEnvironment, bucket: BackupBucket
) -> None:
    with pytest.raises(ConfigError, match=r"the cutover switch has not happened.*cutover switch --stage staging"):  # fmt: skip
        finish_instructions(stage, load_switch(bucket))
    envs = _environments(stage, green)
    mwaa = StubbedMwaa(envs)
    plan = plan_switch(stage, green, PIPELINES, dict(envs[stage.environment_name].dags), "b1")
    execute_switch(plan, mwaa, bucket, stage=stage)
    text = "\n".join(finish_instructions(stage, load_switch(bucket)))
    assert "the pipelines of staging run in mwaa-elt-staging-green (Airflow 3.0.6)" in text
    # Removing the block would delete the environment that now runs the pipelines.
    assert "removing the `mwaa-elt:cutover` block" in text and "keep the block" in text


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
