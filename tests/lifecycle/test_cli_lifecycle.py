"""The lifecycle commands end to end: MWAA through the Stubber-checked fake, S3 and STS on
moto's server; errors are messages with exit codes, never tracebacks."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from airflow_fake import FakeAirflow, StubbedMwaa
from typer.testing import CliRunner

from mwaa_elt import cli
from mwaa_elt.cli import lifecycle as cli_lifecycle
from mwaa_elt.errors import MwaaEltError
from mwaa_elt.stage import Stage

runner = CliRunner()


@pytest.fixture
def airflow(
    scratch_project: Path, endpoint: str, stages: dict[str, Stage], monkeypatch: pytest.MonkeyPatch
) -> FakeAirflow:
    stage = stages["staging"]
    fake = FakeAirflow(2, version="2.11.0")
    fake.variables = {"env": {"key": "env", "value": "staging", "description": None}}
    fake.dags = {"movielens_scifi": False}
    mwaa = StubbedMwaa({stage.environment_name: fake})
    s3 = boto3.client("s3", region_name="eu-west-1", endpoint_url=endpoint)
    monkeypatch.setattr(cli_lifecycle, "_clients", lambda _stage: (mwaa, s3))
    monkeypatch.chdir(scratch_project)
    return fake


def _run(*words: str, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(cli.app, list(words), input=stdin)
    if isinstance(result.exception, MwaaEltError):
        return result.exception.exit_code, result.output + "\n".join(result.exception.messages)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_backup_then_restore_puts_back_what_changed(airflow: FakeAirflow) -> None:
    code, output = _run("backup", "--stage", "staging")
    assert code == 0, output
    assert "backed up" in output and "1 variables, 0 connections, 1 pools, 1 dags" in output
    code, listed = _run("backup", "--stage", "staging", "--list")
    backup_id = listed.split()[0]
    airflow.variables["env"]["value"] = "changed by hand"
    airflow.dags["movielens_scifi"] = True

    code, output = _run("restore", "--stage", "staging", "--from", backup_id, "--plan")
    assert code == 0 and "update variable env" in output and "unpause DAG movielens_scifi" in output
    assert airflow.variables["env"]["value"] == "changed by hand"  # --plan changes nothing

    code, output = _run("restore", "--stage", "staging", "--from", backup_id)
    assert code == 1 and "needs confirmation: pass --yes" in output
    code, output = _run("restore", "--stage", "staging", "--from", backup_id, "--yes")
    assert code == 0 and "restored 2 change(s)" in output, output
    assert (
        airflow.variables["env"]["value"] == "staging" and airflow.dags["movielens_scifi"] is False
    )


def test_restore_of_an_unknown_backup_and_a_busy_environment_are_clear_errors(
    airflow: FakeAirflow,
) -> None:
    code, output = _run("restore", "--stage", "staging", "--from", "nope", "--yes")
    assert code == 1 and "no backup 'nope' in stage staging" in output
    airflow.status = "UPDATING"
    code, output = _run("backup", "--stage", "staging")
    assert code == 1 and "is UPDATING, not AVAILABLE" in output and "Traceback" not in output


def test_upgrade_apply_refuses_before_the_stack_file_names_the_version(
    airflow: FakeAirflow,
) -> None:
    code, output = _run("upgrade", "apply", "--stage", "staging", "--to", "3.0.6", "--yes")
    assert code == 1
    assert "mwaa-elt:airflowVersion is 2.11.0, not 3.0.6" in output
    assert not airflow.writes


def test_cutover_finish_refuses_before_a_switch(airflow: FakeAirflow) -> None:
    code, output = _run("cutover", "finish", "--stage", "staging")
    assert code == 1 and "the cutover switch has not happened" in output
    code, output = _run("cutover", "switch", "--stage", "staging", "--yes")
    assert code == 1 and "mwaa-elt:cutover" in output and not airflow.writes


def test_cutover_finish_prints_the_stack_change_then_done_once_blue_is_gone(
    airflow: FakeAirflow, scratch_project: Path, endpoint: str, stages: dict[str, Stage]
) -> None:
    """After a recorded switch, `finish` prints the diff that retires blue; with the change
    applied it asks for `pulumi up` while blue exists, and says done once MWAA no longer has it."""
    import json

    from mwaa_elt.lifecycle.cutover import SwitchRecord

    path = scratch_project / "stacks" / "Pulumi.staging.yaml"
    path.write_text(
        path.read_text()
        + "  mwaa-elt:cutover:\n    airflowVersion: 3.0.6\n    environmentClass: mw1.medium\n"
    )
    record = SwitchRecord(
        stage="staging",
        old_environment="mwaa-elt-staging",
        new_environment="mwaa-elt-staging-green",
        new_airflow_version="3.0.6",
        backup_id="b1",
        pipelines=("movielens_scifi",),
        unpaused=("movielens_scifi",),
        switched_at="2026-12-02T01:00:00+00:00",
    )
    s3 = boto3.client("s3", region_name="eu-west-1", endpoint_url=endpoint)
    s3.put_object(
        Bucket=stages["staging"].source_bucket,
        Key=".mwaa-elt/cutover.json",
        Body=record.model_dump_json().encode(),
    )
    code, output = _run("cutover", "finish", "--stage", "staging")
    assert code == 0, output
    assert "+++ b/stacks/Pulumi.staging.yaml" in output
    assert "-  mwaa-elt:airflowVersion: 2.11.0\n+  mwaa-elt:airflowVersion: 3.0.6" in output
    assert "+  mwaa-elt:servingEnvironment: green" in output
    code, output = _run("cutover", "finish", "--stage", "staging", "--json")
    report = json.loads(output)
    assert report["state"] == "retire" and "servingEnvironment: green" in report["diff"]

    # Apply exactly the printed change (patch semantics: the file as the diff leaves it).
    from mwaa_elt.lifecycle.cutover import finish_cutover
    from mwaa_elt.stage import load_stage

    stage = load_stage(scratch_project / "stacks", "staging")
    path.write_text(finish_cutover(stage, record, path.read_text(), "x").change.after)  # type: ignore[union-attr]
    code, output = _run("cutover", "finish", "--stage", "staging")
    assert code == 0 and "which still exists (AVAILABLE): run `pulumi up --stack staging`" in output
    mwaa, _ = cli_lifecycle._clients(stage)  # the StubbedMwaa of the fixture
    mwaa.environments.clear()  # type: ignore[attr-defined]  # `pulumi up` deleted blue
    code, output = _run("cutover", "finish", "--stage", "staging")
    assert code == 0 and "done: mwaa-elt-staging is retired" in output, output
