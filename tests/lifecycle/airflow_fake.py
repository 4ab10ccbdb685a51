"""An in-memory Airflow per line behind botocore's Stubber: each InvokeRestApi call is answered
from the fake's state, and the Stubber checks the request and the answer against MWAA's
service model (moto has no MWAA).

Payloads follow Airflow's REST API references: `/api/v1` (2.x) lists connections without
`extra` and never returns a password; `/api/v2` (3.x) lists `extra` and a redacted `password`,
redacts the values of sensitive variables, and answers 409 to a POST of an existing key.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import boto3
from botocore.stub import Stubber

SENSITIVE = ("password", "secret", "api_key", "token")


@dataclass
class FakeAirflow:
    """One environment's metadata, and the REST API answers Airflow gives on its line."""

    major: int
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    connections: dict[str, dict[str, Any]] = field(default_factory=dict)
    pools: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            "default_pool": {
                "name": "default_pool",
                "slots": 128,
                "description": "Default pool",
                "include_deferred": False,
            }
        }
    )
    dags: dict[str, bool] = field(default_factory=dict)  # dag_id → is_paused
    status: str = "AVAILABLE"
    version: str = ""
    import_errors: list[dict[str, Any]] = field(default_factory=list)
    # Answer 400 to writes once this many succeeded (a 5xx would be retried by `aws.call`).
    fail_writes_after: int | None = None
    writes: list[tuple[str, str]] = field(default_factory=list)
    # The DAG file Airflow serves for a dag_id (what the scheduler parsed), or None.
    source_of: Callable[[str], str | None] = lambda _dag_id: None
    # What a triggered DAG run does (mwaa-dr's DAGs): called with (dag_id, conf) when the run
    # starts, it returns the state the run ends in and the task instances that failed.
    on_run: Callable[[str, dict[str, Any]], tuple[str, list[str]]] | None = None
    runs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    run_start: Callable[[], datetime] = lambda: datetime.now(UTC)
    run_polls: dict[tuple[str, str], int] = field(default_factory=dict)

    def handle(self, method: str, path: str, query: dict[str, Any], body: Any) -> tuple[int, Any]:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if method != "GET":
            if self.fail_writes_after is not None and len(self.writes) >= self.fail_writes_after:
                return 400, {"title": "Bad Request", "status": 400, "detail": "refused by the test"}
            self.writes.append((method, path))
        collection, name = parts[0], parts[1] if len(parts) > 1 else None
        if collection == "dagSources" and name is not None:
            content = self.source_of(name)
            if content is None:
                return 404, {"title": "DAG source not found", "status": 404}
            return 200, {"content": content, "dag_id": name, "version_number": 1}
        if collection == "importErrors":
            return 200, {
                "import_errors": self.import_errors,
                "total_entries": len(self.import_errors),
            }
        store = {
            "variables": (self.variables, "key"),
            "connections": (self.connections, "connection_id"),
            "pools": (self.pools, "name"),
        }
        if collection == "dags" and len(parts) > 2:
            return self._dag_runs(method, parts[1], parts[2:], body)
        if collection == "dags":
            return self._dags(method, name, body)
        items, key = store[collection]
        if method == "GET" and name is None:
            listed = [self._shown(collection, item, listing=True) for item in items.values()]
            offset, limit = int(query.get("offset", 0)), int(query.get("limit", 100))
            page = sorted(listed, key=lambda i: i[key])[offset : offset + limit]
            return 200, {collection: page, "total_entries": len(listed)}
        if method == "GET":
            if name not in items:
                return 404, {"title": f"{name} not found", "status": 404}
            return 200, self._shown(collection, items[name], listing=False)
        if method == "POST":
            if body[key] in items:
                return 409, {"title": "Conflict", "status": 409, "detail": f"{body[key]} exists"}
            items[body[key]] = copy.deepcopy(body)
            return 200, self._shown(collection, items[body[key]], listing=False)
        if method == "PATCH":
            if name not in items:
                return 404, {"title": f"{name} not found", "status": 404}
            mask = query.get("update_mask")
            fields = mask.split(",") if mask else list(body)
            items[name].update({f: body[f] for f in fields if f in body})
            return 200, self._shown(collection, items[name], listing=False)
        raise AssertionError(f"unexpected {method} {path}")

    def _dags(self, method: str, name: str | None, body: Any) -> tuple[int, Any]:
        if method == "GET" and name is None:
            dags = [{"dag_id": d, "is_paused": p, "fileloc": f"/usr/local/airflow/dags/{d}.py"} for d, p in sorted(self.dags.items())]  # fmt: skip
            return 200, {"dags": dags, "total_entries": len(dags)}
        if name not in self.dags:
            return 404, {"title": "DAG not found", "status": 404}
        if method == "PATCH":
            self.dags[name] = bool(body["is_paused"])
        return 200, {"dag_id": name, "is_paused": self.dags[name]}

    def _dag_runs(self, method: str, dag_id: str, rest: list[str], body: Any) -> tuple[int, Any]:
        """`/api/v1` DAG runs: POST /dags/{id}/dagRuns answers a queued DAGRun; each GET of
        /dags/{id}/dagRuns/{run_id} moves it on (running, then how `on_run` says it ends)."""
        if dag_id not in self.dags:
            return 404, {"title": "DAG not found", "status": 404, "detail": f"DAG {dag_id}"}
        if method == "POST" and rest == ["dagRuns"]:
            run_id = body["dag_run_id"]
            if (dag_id, run_id) in self.runs:
                return 409, {"title": "Conflict", "status": 409, "detail": f"{run_id} exists"}
            self.runs[(dag_id, run_id)] = {
                "dag_run_id": run_id,
                "dag_id": dag_id,
                "logical_date": "2026-12-01T22:00:00+00:00",
                "execution_date": "2026-12-01T22:00:00+00:00",
                "start_date": None,
                "end_date": None,
                "data_interval_start": "2026-12-01T22:00:00+00:00",
                "data_interval_end": "2026-12-01T22:00:00+00:00",
                "last_scheduling_decision": None,
                "run_type": "manual",
                "state": "queued",
                "external_trigger": True,
                "conf": body.get("conf") or {},
                "note": None,
            }
            return 200, self.runs[(dag_id, run_id)]
        run = self.runs.get((dag_id, rest[1])) if len(rest) > 1 else None
        if method != "GET" or run is None:
            return 404, {"title": "DAGRun not found", "status": 404}
        if rest[2:] == ["taskInstances"]:
            tasks = [{"task_id": t, "dag_id": dag_id, "dag_run_id": rest[1], "state": "failed"} for t in run.get("_failed", [])]  # fmt: skip
            return 200, {"task_instances": tasks, "total_entries": len(tasks)}
        key = (dag_id, rest[1])
        self.run_polls[key] = self.run_polls.get(key, 0) + 1
        if run["state"] == "queued":
            run["state"], run["start_date"] = "running", self.run_start().isoformat()
        elif run["state"] == "running":
            assert self.on_run is not None, "a run was triggered but the test says nothing of it"
            run["state"], run["_failed"] = self.on_run(dag_id, run["conf"])
            run["end_date"] = "2026-12-01T22:05:00+00:00"
        return 200, {k: v for k, v in run.items() if not k.startswith("_")}

    def _shown(self, collection: str, item: dict[str, Any], *, listing: bool) -> dict[str, Any]:
        shown = dict(item)
        if collection == "connections":
            password = shown.pop("password", None)
            if self.major >= 3:
                shown["password"] = "***" if password else None
            elif listing:
                shown.pop("extra", None)
        if collection == "variables" and self.major >= 3:
            shown["is_encrypted"] = True
            if any(word in shown["key"].lower() for word in SENSITIVE):
                shown["value"] = "***"
        if collection == "pools":
            shown.update(occupied_slots=0, running_slots=0, queued_slots=0, open_slots=shown["slots"])  # fmt: skip
        return shown


class StubbedMwaa:
    """A boto3 MWAA client whose calls are answered by fake environments through the Stubber."""

    def __init__(self, environments: dict[str, FakeAirflow]) -> None:
        self.environments = environments
        self.client = boto3.client(
            "mwaa", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
        )
        self.stubber = Stubber(self.client)
        self.stubber.activate()
        self.calls: list[tuple[str, str, str]] = []  # (environment, method, path)

    def invoke_rest_api(self, **params: Any) -> Any:
        fake = self.environments[params["Name"]]
        self.calls.append((params["Name"], params["Method"], params["Path"]))
        status, answer = fake.handle(
            params["Method"],
            params["Path"],
            params.get("QueryParameters") or {},
            params.get("Body"),
        )
        if status < 400:
            self.stubber.add_response(
                "invoke_rest_api", {"RestApiStatusCode": status, "RestApiResponse": answer}, params
            )
        else:
            self.stubber.add_client_error(
                "invoke_rest_api",
                service_error_code="RestApiClientException"
                if status < 500
                else "RestApiServerException",
                http_status_code=status,
                modeled_fields={"RestApiStatusCode": status, "RestApiResponse": answer},
                expected_params=params,
            )
        return self.client.invoke_rest_api(**params)

    def get_environment(self, **params: Any) -> Any:
        self.calls.append((params["Name"], "GetEnvironment", ""))
        if params["Name"] not in self.environments:  # deleted, or never created
            self.stubber.add_client_error(
                "get_environment",
                service_error_code="ResourceNotFoundException",
                service_message=f"Environment {params['Name']} not found",
                http_status_code=404,
                expected_params=params,
            )
            return self.client.get_environment(**params)
        fake = self.environments[params["Name"]]
        environment = {
            "Name": params["Name"],
            "Status": fake.status,
            "AirflowVersion": fake.version,
        }
        self.stubber.add_response("get_environment", {"Environment": environment}, params)
        return self.client.get_environment(**params)
