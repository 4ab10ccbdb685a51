"""Metadata backup and restore on both Airflow lines: Airflow's REST API through a Stubber-
checked MWAA client, backups in the stage's bucket on moto's S3."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from airflow_fake import FakeAirflow, StubbedMwaa

from mwaa_elt.errors import ConfigError, ExternalError
from mwaa_elt.lifecycle.airflow_api import AirflowApi, AirflowTarget
from mwaa_elt.lifecycle.metadata import (
    BackupBucket,
    RestoreFailed,
    execute_backup,
    execute_restore,
    explain_restore,
    load_backup,
    plan_backup,
    plan_restore,
    read_snapshot,
)
from mwaa_elt.stage import Stage

NOW = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)


def _source(major: int) -> FakeAirflow:
    fake = FakeAirflow(major)
    fake.variables = {
        "env": {"key": "env", "value": "staging", "description": "where we are"},
        "threshold": {"key": "threshold", "value": "0.25", "description": None},
        "db_password": {"key": "db_password", "value": "hunter2", "description": None},
    }
    fake.connections = {
        "reporting_db": {
            "connection_id": "reporting_db",
            "conn_type": "postgres",
            "description": "reports",
            "host": "db.internal",
            "login": "etl",
            "schema": "public",
            "port": 5432,
            "extra": '{"sslmode": "require"}',
            "password": "s3cret",
        }
    }
    fake.pools["default_pool"]["slots"] = 64
    fake.pools["athena"] = {
        "name": "athena",
        "slots": 5,
        "description": "Athena concurrency",
        "include_deferred": True,
    }
    fake.dags = {"movielens_scifi": False, "sales_daily": True}
    return fake


def _target(major: int) -> FakeAirflow:
    fake = FakeAirflow(major)
    fake.dags = {"movielens_scifi": True, "sales_daily": False}  # parsed, the default pause
    return fake


def _api(mwaa: StubbedMwaa, name: str, major: int) -> AirflowApi:
    return AirflowApi(AirflowTarget(name, "eu-west-1", major), mwaa)


@pytest.fixture
def s3(endpoint: str) -> object:
    return boto3.client("s3", region_name="eu-west-1", endpoint_url=endpoint)


@pytest.mark.parametrize("major", [2, 3])
def test_a_backup_restores_variables_connections_pools_and_pause_states(
    stages: dict[str, Stage], s3: object, major: int
) -> None:
    stage = stages["staging"]
    source, target = _source(major), _target(major)
    mwaa = StubbedMwaa({"old": source, "new": target})
    bucket = BackupBucket(stage, s3)
    plan = plan_backup(stage, "20261201T220000Z", target=AirflowTarget("old", "eu-west-1", major))
    record = execute_backup(plan, _api(mwaa, "old", major), bucket, now=lambda: NOW)
    assert bucket.backup_ids() == ["20261201T220000Z"]

    manifest, snapshot = load_backup(bucket, "20261201T220000Z")
    assert manifest == record.manifest
    restore = plan_restore(stage.name, "new", manifest.backup_id, snapshot, read_snapshot(_api(mwaa, "new", major)))  # fmt: skip
    execute_restore(restore, _api(mwaa, "new", major))

    carried = {"env", "threshold"} if major >= 3 else {"env", "threshold", "db_password"}
    assert {k: v["value"] for k, v in target.variables.items()} == {
        k: v["value"] for k, v in source.variables.items() if k in carried
    }
    assert target.variables["env"]["description"] == "where we are"
    restored = target.connections["reporting_db"]
    expected = dict(source.connections["reporting_db"])
    assert expected.pop("password") == "s3cret" and "password" not in restored
    assert {k: restored.get(k) for k in expected} == expected
    assert target.pools == source.pools
    assert target.dags == source.dags
    if major >= 3:
        assert manifest.not_carried == ("variable db_password: Airflow redacts its value",)

    again = plan_restore(stage.name, "new", manifest.backup_id, snapshot, read_snapshot(_api(mwaa, "new", major)))  # fmt: skip
    assert again.steps == () and again.unchanged == (7 if major >= 3 else 8)


def test_a_backup_is_encrypted_its_manifest_written_last_and_passwords_never_stored(
    stages: dict[str, Stage], s3: object
) -> None:
    stage = stages["staging"]
    mwaa = StubbedMwaa({stage.environment_name: _source(2)})
    written: list[str] = []
    s3.meta.events.register("provide-client-params.s3.PutObject", lambda params, **_: written.append(params["Key"]))  # type: ignore[attr-defined]  # fmt: skip
    bucket = BackupBucket(stage, s3)
    plan = plan_backup(stage, "b1")
    execute_backup(plan, _api(mwaa, stage.environment_name, 2), bucket)
    prefix = ".mwaa-elt/backups/b1/"
    assert written == [f"{prefix}{p}.json" for p in ("variables", "connections", "pools", "dags")] + [f"{prefix}manifest.json"]  # fmt: skip
    for key in written:
        head = s3.head_object(Bucket=stage.source_bucket, Key=key)  # type: ignore[attr-defined]
        assert head["ServerSideEncryption"] == "AES256"
        body = s3.get_object(Bucket=stage.source_bucket, Key=key)["Body"].read()  # type: ignore[attr-defined]
        assert b"s3cret" not in body


def test_the_prod_backup_uses_the_stage_kms_key(stages: dict[str, Stage]) -> None:
    plan = plan_backup(stages["prod"], "b1")
    assert plan.encryption == f"aws:kms ({stages['prod'].kms_key_alias})"


def test_an_incomplete_or_altered_backup_is_refused_by_name(
    stages: dict[str, Stage], s3: object
) -> None:
    stage = stages["staging"]
    mwaa = StubbedMwaa({stage.environment_name: _source(2)})
    bucket = BackupBucket(stage, s3)
    execute_backup(plan_backup(stage, "b1"), _api(mwaa, stage.environment_name, 2), bucket)
    with pytest.raises(ConfigError, match=r"no backup 'b0' in stage staging.*newest first: b1"):
        load_backup(bucket, "b0")
    s3.put_object(Bucket=stage.source_bucket, Key=".mwaa-elt/backups/b1/pools.json", Body=b"{}")  # type: ignore[attr-defined]  # fmt: skip
    with pytest.raises(ConfigError, match=r"pools.json: missing or not the object backup b1"):
        load_backup(bucket, "b1")
    s3.delete_object(Bucket=stage.source_bucket, Key=".mwaa-elt/backups/b1/manifest.json")  # type: ignore[attr-defined]  # fmt: skip
    assert bucket.backup_ids() == []


@pytest.mark.parametrize("major", [2, 3])
def test_a_failing_restore_reports_exactly_what_it_applied(
    stages: dict[str, Stage], major: int
) -> None:
    source, target = _source(major), _target(major)
    target.fail_writes_after = 2
    mwaa = StubbedMwaa({"old": source, "new": target})
    snapshot = read_snapshot(_api(mwaa, "old", major))
    before = read_snapshot(_api(mwaa, "new", major))
    plan = plan_restore("staging", "new", "b1", snapshot, before)
    first_two = [step.label for step in plan.steps[:2]]
    with pytest.raises(RestoreFailed) as failed:
        execute_restore(plan, _api(mwaa, "new", major))
    message = "\n".join(failed.value.messages)
    assert f"stopped at '{plan.steps[2].label}'" in message
    assert f"applied (2): {', '.join(first_two)}" in message
    assert f"not applied ({len(plan.steps) - 2}):" in message
    assert failed.value.exit_code == 3
    assert len(target.writes) == 2
    # Only those two changed: planning again leaves exactly the rest.
    rest = plan_restore("staging", "new", "b1", snapshot, read_snapshot(_api(mwaa, "new", major)))
    assert [s.label for s in rest.steps] == [s.label for s in plan.steps[2:]]


def test_restore_never_deletes_what_the_target_has_and_says_so() -> None:
    source, target = _source(3), _target(3)
    target.variables["local_only"] = {"key": "local_only", "value": "1", "description": None}
    target.dags["new_only"] = False
    source.dags["not_parsed_yet"] = True
    mwaa = StubbedMwaa({"old": source, "new": target})
    plan = plan_restore("staging", "new", "b1", read_snapshot(_api(mwaa, "old", 3)), read_snapshot(_api(mwaa, "new", 3)))  # fmt: skip
    text = "\n".join(explain_restore(plan))
    assert "kept (not in the backup, never deleted): variable local_only" in text
    assert "not parsed in new, so their pause state is not set: not_parsed_yet" in text
    assert "written without passwords" in text
    execute_restore(plan, _api(mwaa, "new", 3))
    assert target.variables["local_only"]["value"] == "1" and target.dags["new_only"] is False
    assert not any(method == "DELETE" for _, method, _ in mwaa.calls)


def test_a_denied_write_names_the_airflow_role_it_needs() -> None:
    target = _target(2)
    mwaa = StubbedMwaa({"new": target})
    api = _api(mwaa, "new", 2)
    mwaa.environments["new"] = target
    original = target.handle
    target.handle = lambda m, p, q, b: (403, {"title": "Forbidden", "status": 403}) if m != "GET" else original(m, p, q, b)  # type: ignore[method-assign]  # fmt: skip
    with pytest.raises(ExternalError, match=r"answered 403: Forbidden.*need Op"):
        api.call("PATCH", "/dags/x", query={"update_mask": "is_paused"}, body={"is_paused": True})


def test_the_backup_json_is_stable_and_readable(stages: dict[str, Stage], s3: object) -> None:
    stage = stages["staging"]
    mwaa = StubbedMwaa({stage.environment_name: _source(2)})
    execute_backup(plan_backup(stage, "b1"), _api(mwaa, stage.environment_name, 2), BackupBucket(stage, s3), now=lambda: NOW)  # fmt: skip
    body = s3.get_object(Bucket=stage.source_bucket, Key=".mwaa-elt/backups/b1/manifest.json")["Body"].read()  # type: ignore[attr-defined]  # fmt: skip
    data = json.loads(body)
    assert data["counts"] == {"variables": 3, "connections": 1, "pools": 2, "dags": 2}
    assert data["airflow_version"] == "2.11.0" and data["created_at"] == "2026-12-01T22:00:00+00:00"
