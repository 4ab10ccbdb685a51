"""MWAA gates through botocore's Stubber (moto does not implement MWAA): environment state,
Airflow's REST API per major line, parse verification and the source-run gate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from mwaa_elt.errors import ConfigError, ExternalError
from mwaa_elt.promote.mwaa import (
    ImportErrorEntry,
    MwaaEnvironment,
    require_source_runs_succeeded,
    verify_parsed,
)
from mwaa_elt.stage import Stage

WRITTEN_AT = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def client() -> Any:
    return boto3.client(
        "mwaa", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def _rest(stubber: Stubber, env: str, path: str, body: dict, query: dict | None = None) -> None:
    expected: dict[str, Any] = {"Name": env, "Path": path, "Method": "GET"}
    if query:
        expected["QueryParameters"] = query
    stubber.add_response(
        "invoke_rest_api", {"RestApiStatusCode": 200, "RestApiResponse": body}, expected
    )


def _not_found(stubber: Stubber, env: str, path: str) -> None:
    stubber.add_client_error(
        "invoke_rest_api",
        service_error_code="RestApiClientException",
        http_status_code=404,
        modeled_fields={"RestApiStatusCode": 404, "RestApiResponse": {"title": "not found"}},
        expected_params={"Name": env, "Path": path, "Method": "GET"},
    )


@pytest.mark.parametrize("status", ["UPDATING", "CREATING", "UPDATE_FAILED", "UNAVAILABLE"])
def test_promotion_is_refused_unless_the_environment_is_available(
    stages: dict[str, Stage], client: Any, status: str
) -> None:
    stage = stages["staging"]
    with Stubber(client) as stubber:
        stubber.add_response(
            "get_environment",
            {"Environment": {"Name": stage.environment_name, "Status": status}},
            {"Name": stage.environment_name},
        )
        with pytest.raises(ConfigError, match=f"mwaa-elt-staging is {status}, not AVAILABLE"):
            MwaaEnvironment(stage, client).require_available()


def test_a_missing_environment_and_denied_access_are_told_apart(
    stages: dict[str, Stage], client: Any
) -> None:
    environment = MwaaEnvironment(stages["dev"], client)
    with Stubber(client) as stubber:
        stubber.add_client_error("get_environment", "ResourceNotFoundException")
        stubber.add_client_error("get_environment", "AccessDeniedException", http_status_code=403)
        with pytest.raises(ConfigError, match=r"does not exist.*pulumi up --stack dev"):
            environment.status()
        with pytest.raises(ExternalError, match="airflow:GetEnvironment"):
            environment.status()


def test_import_errors_are_read_page_by_page(stages: dict[str, Stage], client: Any) -> None:
    name = stages["dev"].environment_name
    first = [
        {"filename": f"/usr/local/airflow/dags/d{i}.py", "timestamp": "2026-01-01T00:00:00Z"}
        for i in range(100)
    ]
    last = [{"filename": "dags/d100.py", "timestamp": "2026-01-01T00:00:00+00:00"}]
    with Stubber(client) as stubber:
        _rest(stubber, name, "/importErrors", {"import_errors": first, "total_entries": 101}, {"limit": 100, "offset": 0})  # fmt: skip
        _rest(stubber, name, "/importErrors", {"import_errors": last, "total_entries": 101}, {"limit": 100, "offset": 100})  # fmt: skip
        errors = MwaaEnvironment(stages["dev"], client).import_errors()
    assert len(errors) == 101 and errors[-1].filename == "dags/d100.py"
    assert errors[0].timestamp == datetime(2026, 1, 1, tzinfo=UTC)


def test_dag_source_on_airflow_3_is_one_call(stages: dict[str, Stage], client: Any) -> None:
    stage = stages["dev"]
    assert stage.airflow.major == 3
    with Stubber(client) as stubber:
        _rest(stubber, stage.environment_name, "/dagSources/sales", {"content": "# v2\n"})
        _not_found(stubber, stage.environment_name, "/dagSources/absent")
        environment = MwaaEnvironment(stage, client)
        assert environment.dag_source("sales") == "# v2\n"
        assert environment.dag_source("absent") is None


def test_dag_source_on_airflow_2_goes_through_the_file_token(
    stages: dict[str, Stage], client: Any
) -> None:
    stage = stages["staging"]
    assert stage.airflow.major == 2
    with Stubber(client) as stubber:
        _rest(stubber, stage.environment_name, "/dags/sales", {"file_token": "Ii9k"})
        _rest(stubber, stage.environment_name, "/dagSources/Ii9k", {"content": "# v2\n"})
        assert MwaaEnvironment(stage, client).dag_source("sales") == "# v2\n"


class FakeAirflow:
    """Airflow's answers over time: import errors and served sources, one list per poll."""

    def __init__(self, polls: list[tuple[list[ImportErrorEntry], dict[str, str]]]) -> None:
        self.polls = polls
        self.poll = -1

    def import_errors(self) -> list[ImportErrorEntry]:
        self.poll = min(self.poll + 1, len(self.polls) - 1)
        return self.polls[self.poll][0]

    def dag_source(self, dag_id: str) -> str | None:
        return self.polls[self.poll][1].get(dag_id)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _error(name: str, minutes: int) -> ImportErrorEntry:
    return ImportErrorEntry(f"/usr/local/airflow/dags/{name}.py", WRITTEN_AT + timedelta(minutes=minutes), f"boom in {name}")  # fmt: skip


def test_verification_waits_for_the_new_source_and_reports_new_import_errors() -> None:
    written = {"a": b"# a v2\n", "b": b"# b v2\n", "c": b"# c v2\n"}
    airflow = FakeAirflow(
        [
            ([_error("b", -10)], {"a": "# a v1\n"}),  # b's error is older than the write
            ([_error("b", 1)], {"a": "# a v2\n"}),
            ([_error("b", 1)], {"a": "# a v2\n", "c": "# c v2\n"}),
        ]
    )
    clock = Clock()
    result = verify_parsed(
        airflow, written, WRITTEN_AT, timeout_seconds=300, poll_seconds=15,
        sleep=clock.sleep, clock=clock,
    )  # fmt: skip
    assert sorted(result.parsed) == ["a", "c"]
    assert result.import_errors == {"b": "boom in b"}
    assert result.pending == [] and not result.ok
    assert clock.sleeps == [15, 15]


def test_verification_gives_up_at_the_timeout_and_names_what_is_pending() -> None:
    airflow = FakeAirflow([([], {"a": "# old\n"})])
    clock = Clock()
    result = verify_parsed(
        airflow, {"a": b"# new\n"}, WRITTEN_AT, timeout_seconds=40, poll_seconds=15,
        sleep=clock.sleep, clock=clock,
    )  # fmt: skip
    assert result.pending == ["a"] and result.ok and result.waited_seconds == 40
    assert clock.sleeps == [15, 15, 10]


def test_source_run_gate_names_each_pipeline_whose_latest_run_did_not_succeed(
    stages: dict[str, Stage], client: Any
) -> None:
    stage = stages["dev"]
    query = {"order_by": "-start_date", "limit": 1}
    with Stubber(client) as stubber:
        for dag_id, runs in [
            ("good", [{"state": "success"}]),
            ("bad", [{"state": "failed"}]),
            ("new", []),
        ]:
            _rest(stubber, stage.environment_name, f"/dags/{dag_id}/dagRuns", {"dag_runs": runs}, query)  # fmt: skip
        with pytest.raises(ConfigError) as raised:
            require_source_runs_succeeded(MwaaEnvironment(stage, client), ["good", "bad", "new"])
    assert raised.value.messages[:2] == [
        "bad: latest run is failed in stage dev",
        "new: has never run in stage dev",
    ]
