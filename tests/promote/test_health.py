"""`mwaa-elt status` health (#13): the environment and Airflow's view through botocore's Stubber
(moto has no MWAA), per Airflow line with each line's REST payloads, and CloudWatch alarms and
the stage bucket on moto's server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber
from typer.testing import CliRunner

from mwaa_elt import cli
from mwaa_elt.promote import store as store_module
from mwaa_elt.promote.health import stage_health, status_report
from mwaa_elt.promote.manifest import Manifest, PipelineRecord
from mwaa_elt.promote.store import StageStore, make_client
from mwaa_elt.stage import Stage

runner = CliRunner()


def _mwaa() -> Any:
    return boto3.client(
        "mwaa", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def _environment(stage: Stage, status: str = "AVAILABLE", **extra: Any) -> dict[str, Any]:
    # Members of GetEnvironment's output shape; Stubber checks them against botocore's model.
    return {
        "Environment": {
            "Name": stage.environment_name,
            "Arn": stage.environment_arn,
            "Status": status,
            "AirflowVersion": stage.airflow.version,
            "EnvironmentClass": stage.config.environment_class,
            **extra,
        }
    }


def _rest(stubber: Stubber, stage: Stage, path: str, body: dict, query: dict) -> None:
    stubber.add_response(
        "invoke_rest_api",
        {"RestApiStatusCode": 200, "RestApiResponse": body},
        {"Name": stage.environment_name, "Path": path, "Method": "GET", "QueryParameters": query},
    )


def _alarm(cloudwatch: Any, name: str, state: str, reason: str = "threshold crossed") -> None:
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="AmazonMWAA",
        MetricName="SchedulerHeartbeat",
        Dimensions=[{"Name": "Function", "Value": "Scheduler"}],
        Statistic="SampleCount",
        Period=60,
        EvaluationPeriods=5,
        Threshold=1,
        ComparisonOperator="LessThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason=reason)


PAGE = {"limit": 100, "offset": 0}


def test_airflow_3_health_uses_the_v2_payloads(stages, endpoint) -> None:
    stage = stages["dev"]
    assert stage.airflow.major == 3
    cloudwatch = make_client("cloudwatch", stage.region)
    _alarm(cloudwatch, "mwaa-elt-dev-scheduler-heartbeat", "ALARM", "no heartbeat for 15 min")
    _alarm(cloudwatch, "mwaa-elt-dev-import-errors", "OK")
    _alarm(cloudwatch, "another-team-heartbeat", "ALARM")
    mwaa = _mwaa()
    with Stubber(mwaa) as stubber:
        stubber.add_response("get_environment", _environment(stage), {"Name": "mwaa-elt-dev"})
        _rest(stubber, stage, "/importErrors", {
            "import_errors": [{
                "import_error_id": 7, "timestamp": "2026-11-30T10:00:00Z",
                "filename": "/usr/local/airflow/dags/sales.py", "bundle_name": "dags-folder",
                "stack_trace": "Traceback...\nNameError: name 'x' is not defined",
            }],
            "total_entries": 1,
        }, PAGE)  # fmt: skip
        _rest(stubber, stage, "/dags/sales/dagRuns", {
            "dag_runs": [{
                "dag_run_id": "scheduled__2026-11-30T00:00:00+00:00", "dag_id": "sales",
                "logical_date": "2026-11-30T00:00:00Z", "run_after": "2026-11-30T00:00:00Z",
                "start_date": "2026-11-30T00:00:05Z", "end_date": "2026-11-30T00:09:00Z",
                "state": "failed", "run_type": "scheduled",
            }],
            "total_entries": 31,
        }, {"limit": 1, "order_by": "-run_after"})  # fmt: skip
        _rest(stubber, stage, "/dags/new_one/dagRuns", {"dag_runs": [], "total_entries": 0},
              {"limit": 1, "order_by": "-run_after"})  # fmt: skip
        health = stage_health(stage, ["sales", "new_one"], mwaa, cloudwatch)
        stubber.assert_no_pending_responses()
    assert health.offline is None and health.unavailable == ()
    assert (health.environment.status, health.environment.airflow_version) == (
        "AVAILABLE",
        "3.0.6",
    )
    (error,) = health.import_errors
    assert error.filename.endswith("/sales.py") and "NameError" in error.stack_trace
    sales, new_one = health.last_runs
    assert (sales.state, sales.started_at, sales.ended_at) == (
        "failed",
        "2026-11-30T00:00:05Z",
        "2026-11-30T00:09:00Z",
    )
    assert (new_one.pipeline, new_one.state) == ("new_one", None)
    assert [(a.name, a.reason) for a in health.alarms] == [
        ("mwaa-elt-dev-scheduler-heartbeat", "no heartbeat for 15 min")
    ]
    assert not health.healthy


def test_airflow_2_health_uses_the_v1_payloads(stages, endpoint) -> None:
    stage = stages["staging"]
    assert stage.airflow.major == 2
    mwaa = _mwaa()
    with Stubber(mwaa) as stubber:
        stubber.add_response(
            "get_environment", _environment(stage), {"Name": stage.environment_name}
        )
        _rest(stubber, stage, "/importErrors", {"import_errors": [], "total_entries": 0}, PAGE)
        _rest(stubber, stage, "/dags/sales/dagRuns", {
            "dag_runs": [{
                "dag_run_id": "manual__2026-11-30", "dag_id": "sales",
                "execution_date": "2026-11-30T06:00:00+00:00",
                "logical_date": "2026-11-30T06:00:00+00:00",
                "start_date": None, "end_date": None, "state": "queued",
                "external_trigger": True,
            }],
            "total_entries": 1,
        }, {"limit": 1, "order_by": "-execution_date"})  # fmt: skip
        long_name = "a" * 60  # a valid pipeline name, but too long for InvokeRestApi's Path
        health = stage_health(
            stage, ["sales", long_name], mwaa, make_client("cloudwatch", stage.region)
        )
        stubber.assert_no_pending_responses()  # nothing was asked for the long name
    assert health.last_runs[1].state is None
    assert health.last_runs[1].note == (
        f"not asked: /dags/{long_name}/dagRuns is longer than InvokeRestApi's 64 characters"
    )
    assert health.import_errors == ()
    # A queued run has not started: its logical time says when it is for.
    run = health.last_runs[0]
    assert (run.state, run.started_at, run.ended_at) == (
        "queued",
        "2026-11-30T06:00:00+00:00",
        None,
    )
    assert health.alarms == () and health.healthy


def test_an_environment_that_is_not_available_is_not_asked_for_airflow(stages, endpoint) -> None:
    stage = stages["dev"]
    mwaa = _mwaa()
    failed = {
        "Status": "FAILED",
        "Error": {"ErrorCode": "INCORRECT_CONFIGURATION", "ErrorMessage": "requirements failed"},
    }
    with Stubber(mwaa) as stubber:
        stubber.add_response(
            "get_environment",
            _environment(stage, "UPDATE_FAILED", LastUpdate=failed),
            {"Name": stage.environment_name},
        )
        health = stage_health(stage, ["sales"], mwaa, make_client("cloudwatch", stage.region))
        stubber.assert_no_pending_responses()  # and no REST call was made
    assert health.environment.status == "UPDATE_FAILED"
    assert health.environment.last_update_error == "requirements failed"
    assert health.import_errors is None and health.last_runs is None
    assert health.unavailable == (
        "Airflow: not asked, the environment is UPDATE_FAILED (its REST API answers when it is "
        "AVAILABLE)",
    )
    assert health.alarms == ()


def test_a_missing_environment_and_a_failing_call_are_lines_not_failures(stages, endpoint) -> None:
    stage = stages["dev"]
    mwaa = _mwaa()
    with Stubber(mwaa) as stubber:
        stubber.add_client_error("get_environment", "ResourceNotFoundException")
        health = stage_health(stage, [], mwaa, make_client("cloudwatch", stage.region))
    assert health.environment is None
    assert health.unavailable[0] == (
        "MWAA environment: could not be read: mwaa-elt-dev does not exist in eu-west-1; "
        "run `pulumi up --stack dev`"
    )
    with Stubber(mwaa) as stubber:
        stubber.add_response("get_environment", _environment(stage), {"Name": "mwaa-elt-dev"})
        stubber.add_client_error("invoke_rest_api", "AccessDeniedException", http_status_code=403)
        stubber.add_response("invoke_rest_api", {"RestApiStatusCode": 200,
                             "RestApiResponse": {"dag_runs": []}})  # fmt: skip
        health = stage_health(stage, ["sales"], mwaa, make_client("cloudwatch", stage.region))
    assert health.import_errors is None
    assert health.unavailable[0].startswith("Airflow import errors: could not be read: ")
    assert "airflow:InvokeRestApi GET /importErrors" in health.unavailable[0]
    assert [r.state for r in health.last_runs] == [None]


@pytest.fixture
def no_credentials(monkeypatch, tmp_path: Path) -> None:
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                     "AWS_PROFILE", "AWS_ENDPOINT_URL"):  # fmt: skip
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # Nothing may leave the machine: an endpoint nobody listens on.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")


def test_without_credentials_health_says_offline_once_and_lists_the_defined_alarms(
    stages, no_credentials
) -> None:
    stage = stages["prod"]
    health = stage_health(
        stage,
        ["sales"],
        make_client("mwaa", stage.region),
        make_client("cloudwatch", stage.region),
    )
    assert health.offline == (
        "offline: no usable AWS credentials (Unable to locate credentials); showing what the "
        "stack file defines"
    )
    assert health.unavailable == ()
    assert health.environment is None and health.alarms is None
    assert health.defined_alarms == (
        "mwaa-elt-prod-scheduler-heartbeat",
        "mwaa-elt-prod-import-errors",
        "mwaa-elt-prod-task-failures",
        "mwaa-elt-prod-worker-saturation",
        "mwaa-elt-prod-environment-health",
    )


# -- the command -----------------------------------------------------------------------------


def _live(store: StageStore, names: list[str]) -> None:
    """Record `names` as live in the stage's manifest (their DAG objects are not needed)."""
    record = {
        "source_hash": "a" * 64, "rendered_hash": "b" * 64, "bundle_key": "k",
        "templates_hash": "c", "templates_key": "t", "promoted_from": "working-tree",
        "promoted_at": "2026-11-30T00:00:00+00:00", "promoted_by": "arn:aws:iam::1:user/me",
        "tool_version": "0",
    }  # fmt: skip
    manifest = Manifest(
        stage=store.stage.name,
        pipelines={n: PipelineRecord(**record, dag_key=f"dags/{n}.py") for n in names},
    )
    store.write_manifest(manifest, None)


def _with_mwaa(monkeypatch, mwaa: Any) -> None:
    real = store_module.make_client
    monkeypatch.setattr(
        store_module,
        "make_client",
        lambda service, region, **kw: mwaa if service == "mwaa" else real(service, region, **kw),
    )


def test_status_json_adds_health_to_what_is_live(stages, endpoint, monkeypatch, tmp_path) -> None:
    stage = stages["dev"]
    _live(StageStore(stage, make_client("s3", stage.region)), ["sales"])
    _alarm(make_client("cloudwatch", stage.region), "mwaa-elt-dev-import-errors", "ALARM")
    mwaa = _mwaa()
    stubber = Stubber(mwaa)
    stubber.add_response("get_environment", _environment(stage), {"Name": "mwaa-elt-dev"})
    _rest(stubber, stage, "/importErrors", {"import_errors": [], "total_entries": 0}, PAGE)
    _rest(stubber, stage, "/dags/sales/dagRuns", {"dag_runs": [{
        "dag_run_id": "r1", "state": "success", "run_after": "2026-11-30T00:00:00Z",
        "start_date": "2026-11-30T00:00:01Z", "end_date": "2026-11-30T00:05:00Z",
    }], "total_entries": 1}, {"limit": 1, "order_by": "-run_after"})  # fmt: skip
    stubber.activate()
    _with_mwaa(monkeypatch, mwaa)
    root = Path(__file__).resolve().parents[2]
    result = runner.invoke(cli.app, ["status", "--stage", "dev", "--json", "-C", str(root)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [p["pipeline"] for p in data["pipelines"]] == ["sales"]
    assert data["drifted"] == ["sales"]  # no DAG object: today's drift report is unchanged
    health = data["health"]
    assert health["environment"]["status"] == "AVAILABLE"
    assert health["environment"]["airflow_version"] == "3.0.6"
    assert health["import_errors"] == []
    assert health["last_runs"][0]["state"] == "success"
    assert [a["name"] for a in health["alarms_in_alarm"]] == ["mwaa-elt-dev-import-errors"]
    assert data["offline"] is None and health["healthy"] is False


def test_status_text_shows_environment_runs_and_alarms(stages, endpoint, monkeypatch) -> None:
    stage = stages["staging"]
    _live(StageStore(stage, make_client("s3", stage.region)), ["sales"])
    mwaa = _mwaa()
    stubber = Stubber(mwaa)
    stubber.add_response("get_environment", _environment(stage), {"Name": stage.environment_name})
    _rest(stubber, stage, "/importErrors", {"import_errors": [{
        "import_error_id": 1, "filename": "dags/broken.py", "timestamp": "2026-11-30T00:00:00Z",
        "stack_trace": "Traceback\nSyntaxError: invalid syntax"}], "total_entries": 1}, PAGE)  # fmt: skip
    _rest(stubber, stage, "/dags/sales/dagRuns", {"dag_runs": [], "total_entries": 0},
          {"limit": 1, "order_by": "-execution_date"})  # fmt: skip
    stubber.activate()
    _with_mwaa(monkeypatch, mwaa)
    root = Path(__file__).resolve().parents[2]
    result = runner.invoke(cli.app, ["status", "--stage", "staging", "-C", str(root)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "environment mwaa-elt-staging: AVAILABLE, Airflow 2.11.0" in text
    assert "1 import error(s) in Airflow: dags/broken.py: SyntaxError: invalid syntax" in text
    assert "│ sales │ never ran │" in text
    assert "no alarm in ALARM (of 5 defined)" in text


def test_status_offline_says_so_in_one_line_and_exits_3(stages, no_credentials) -> None:
    root = Path(__file__).resolve().parents[2]
    result = runner.invoke(cli.app, ["status", "--stage", "prod", "-C", str(root)])
    assert result.exit_code == 3
    lines = result.stdout.splitlines()
    assert lines[0].startswith("offline: no usable AWS credentials")
    assert sum("credentials" in line for line in lines) == 1
    assert "alarms defined for the stage: mwaa-elt-prod-scheduler-heartbeat" in result.stdout
    data = json.loads(
        runner.invoke(cli.app, ["status", "--stage", "prod", "--json", "-C", str(root)]).stdout
    )
    assert data["pipelines"] is None and data["live_unavailable"] is None
    assert data["offline"].startswith("offline: no usable AWS credentials")
    assert len(data["health"]["defined_alarms"]) == 5


def test_status_report_keeps_the_live_part_when_mwaa_fails(stages, endpoint) -> None:
    stage = stages["dev"]
    mwaa = _mwaa()
    with Stubber(mwaa) as stubber:
        stubber.add_client_error("get_environment", "ThrottlingException", http_status_code=400)
        report = status_report(
            stage,
            StageStore(stage, make_client("s3", stage.region)),
            mwaa,
            make_client("cloudwatch", stage.region),
        )
    assert report.live is not None and report.live.pipelines == ()
    assert report.health.unavailable[0].startswith("MWAA environment: could not be read: ")
    assert report.to_dict()["health"]["alarms_in_alarm"] == []


class _Unreachable:
    """A client whose endpoint cannot be reached (as MWAA's from a machine without a route)."""

    def __getattr__(self, operation: str) -> Any:
        def call(*_: Any, **__: Any) -> Any:
            raise EndpointConnectionError(endpoint_url=f"https://{operation}.invalid")

        return call


def test_one_unreachable_service_is_a_line_and_two_are_offline(stages, endpoint) -> None:
    stage = stages["dev"]
    cloudwatch = make_client("cloudwatch", stage.region)
    _alarm(cloudwatch, "mwaa-elt-dev-task-failures", "ALARM")
    health = stage_health(stage, ["sales"], _Unreachable(), cloudwatch)
    assert health.offline is None
    assert health.unavailable == (
        "MWAA environment: unreachable: Could not connect to the endpoint URL: "
        '"https://get_environment.invalid"',
    )
    assert [a.name for a in health.alarms] == ["mwaa-elt-dev-task-failures"]
    both = stage_health(stage, ["sales"], _Unreachable(), _Unreachable())
    assert both.offline.startswith("offline: AWS is unreachable (Could not connect")
    assert both.unavailable == ()
    # With the bucket read, the machine is online: the two services are one line, not offline.
    report = status_report(
        stage, StageStore(stage, make_client("s3", stage.region)), _Unreachable(), _Unreachable()
    )
    assert report.offline is None and report.live is not None
    assert report.health.unavailable[0].startswith("MWAA and CloudWatch: AWS is unreachable")


def test_once_blue_is_retired_health_reads_green_and_its_alarms_alone(stages, endpoint) -> None:
    """With `servingEnvironment: green` the stage's environment is green: GetEnvironment names
    it (the Stubber refuses any other name) and only green's alarms count."""
    from dataclasses import replace

    from mwaa_elt.stage.names import serving_paths

    staging = stages["staging"]
    config = staging.config.model_copy(
        update={"serving_environment": "green", "airflow_version": "3.0.6"}
    )
    retired = replace(staging, config=config, paths=serving_paths(config))
    assert retired.environment_name == "mwaa-elt-staging-green"
    cloudwatch = make_client("cloudwatch", retired.region)
    _alarm(cloudwatch, "mwaa-elt-staging-green-scheduler-heartbeat", "ALARM")
    _alarm(cloudwatch, "mwaa-elt-staging-scheduler-heartbeat", "ALARM")  # blue's, left over
    mwaa = _mwaa()
    with Stubber(mwaa) as stubber:
        stubber.add_response(
            "get_environment", _environment(retired), {"Name": "mwaa-elt-staging-green"}
        )
        _rest(stubber, retired, "/importErrors", {"import_errors": [], "total_entries": 0}, PAGE)
        health = stage_health(retired, [], mwaa, cloudwatch)
        stubber.assert_no_pending_responses()
    assert health.environment is not None
    assert health.environment.name == "mwaa-elt-staging-green"
    assert [alarm.name for alarm in health.alarms] == ["mwaa-elt-staging-green-scheduler-heartbeat"]
