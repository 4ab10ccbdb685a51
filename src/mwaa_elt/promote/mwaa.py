"""The MWAA side of promotion: environment state, and Airflow's view through `invoke_rest_api`.

Before apply the environment must be AVAILABLE; after apply the new DAG files must be parsed
by Airflow (its served DAG source equals what was written) without an import error; optionally
each pipeline's latest run in the source stage must have succeeded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, TypeVar
from urllib.parse import quote

from botocore.exceptions import ClientError

from mwaa_elt import aws
from mwaa_elt.errors import ConfigError
from mwaa_elt.stage import Stage

T = TypeVar("T")
AVAILABLE = "AVAILABLE"
PAGE = 100


@dataclass(frozen=True)
class ImportErrorEntry:
    """One import error Airflow recorded for a DAG file."""

    filename: str
    timestamp: datetime
    stack_trace: str


@dataclass
class Verification:
    """What Airflow made of the DAG files one apply wrote."""

    parsed: list[str] = field(default_factory=list)  # served source equals what was written
    import_errors: dict[str, str] = field(default_factory=dict)  # pipeline → stack trace
    pending: list[str] = field(default_factory=list)  # neither, when the timeout passed
    waited_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """No promoted DAG failed to import (pending ones are reported, not failed)."""
        return not self.import_errors

    def to_dict(self) -> dict[str, Any]:
        """The verification for `--json` output."""
        return {
            "parsed": sorted(self.parsed),
            "import_errors": dict(sorted(self.import_errors.items())),
            "pending": sorted(self.pending),
            "waited_seconds": round(self.waited_seconds, 1),
        }


class MwaaEnvironment:
    """One stage's MWAA environment; every AWS call goes through `aws.call`."""

    def __init__(self, stage: Stage, client: Any) -> None:
        self.stage = stage
        self.name = stage.environment_name
        self.client = client

    def status(self) -> str:
        """The environment's status: AVAILABLE, UPDATING, CREATING, ..."""
        try:
            environment = self._call(
                "airflow:GetEnvironment",
                lambda: self.client.get_environment(Name=self.name)["Environment"],
                expected={"ResourceNotFoundException"},
            )
        except ClientError:
            raise ConfigError(
                f"MWAA environment {self.name} of stage {self.stage.name} does not exist in "
                f"{self.stage.region}; run `pulumi up --stack {self.stage.name}`, or pass "
                "--skip-mwaa-checks for a stage without MWAA (such as the sandbox)"
            ) from None
        return str(environment["Status"])

    def require_available(self) -> None:
        """Refuse to promote into an environment that is not AVAILABLE, naming its state."""
        status = self.status()
        if status != AVAILABLE:
            raise ConfigError(
                f"MWAA environment {self.name} is {status}, not {AVAILABLE}; nothing was "
                "changed — promote once the environment is available again"
            )

    def rest(self, path: str, query: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """GET an Airflow REST API path; None for 404."""
        request: dict[str, Any] = {"Name": self.name, "Path": path, "Method": "GET"}
        if query:
            request["QueryParameters"] = dict(query)
        what = f"airflow:InvokeRestApi GET {path}"
        try:
            response = self._call(
                what,
                lambda: self.client.invoke_rest_api(**request),
                expected={"RestApiClientException"},
            )
        except ClientError as error:
            if error.response.get("RestApiStatusCode") == 404:
                return None
            where = f"{what} on MWAA environment {self.name} ({self.stage.region})"
            raise aws.AwsCallError(
                f"{where} failed: {error}; {aws.NOTHING_CHANGED}", what=where
            ) from None
        body = response.get("RestApiResponse")
        return body if isinstance(body, dict) else {}

    def import_errors(self) -> list[ImportErrorEntry]:
        """Every import error Airflow currently records."""
        entries: list[ImportErrorEntry] = []
        offset = 0
        while True:
            page = self.rest("/importErrors", {"limit": PAGE, "offset": offset}) or {}
            items = page.get("import_errors") or []
            for item in items:
                entries.append(
                    ImportErrorEntry(
                        filename=str(item.get("filename", "")),
                        timestamp=_parse_time(item.get("timestamp")),
                        stack_trace=str(item.get("stack_trace", "")),
                    )
                )
            offset += len(items)
            if not items or offset >= int(page.get("total_entries", 0)):
                return entries

    def dag_source(self, dag_id: str) -> str | None:
        """The DAG file source Airflow serves for `dag_id`, or None if it has no such DAG."""
        if self.stage.airflow.major >= 3:
            found = self.rest(f"/dagSources/{quote(dag_id, safe='')}")
            return None if found is None else str(found.get("content", ""))
        dag = self.rest(f"/dags/{quote(dag_id, safe='')}")
        if dag is None or not dag.get("file_token"):
            return None
        found = self.rest(f"/dagSources/{dag['file_token']}")
        return None if found is None else str(found.get("content", ""))

    def latest_run_state(self, dag_id: str) -> str | None:
        """The state of the DAG's most recently started run, or None if it never ran."""
        found = self.rest(
            f"/dags/{quote(dag_id, safe='')}/dagRuns", {"order_by": "-start_date", "limit": 1}
        )
        runs = (found or {}).get("dag_runs") or []
        return str(runs[0].get("state")) if runs else None

    def _call(self, what: str, run: Callable[[], T], *, expected: set[str]) -> T:
        where = f"{what} on MWAA environment {self.name} ({self.stage.region})"
        return aws.call(where, run, expected=expected)


def verify_parsed(
    environment: MwaaEnvironment,
    written: Mapping[str, bytes],
    written_at: datetime,
    *,
    timeout_seconds: float,
    poll_seconds: float = 15.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Verification:
    """Poll Airflow until every DAG in `written` (pipeline → file bytes) is parsed in its new
    version or has a new import error, or until `timeout_seconds` pass."""
    start = clock()
    waiting = dict(written)
    result = Verification()
    while True:
        errors = [e for e in environment.import_errors() if e.timestamp >= written_at]
        for name in sorted(waiting):
            failed = [e for e in errors if PurePosixPath(e.filename).name == f"{name}.py"]
            if failed:
                result.import_errors[name] = failed[0].stack_trace
                del waiting[name]
                continue
            source = environment.dag_source(name)
            if source is not None and source.encode("utf-8") == waiting[name]:
                result.parsed.append(name)
                del waiting[name]
        result.waited_seconds = clock() - start
        if not waiting or result.waited_seconds >= timeout_seconds:
            result.pending = sorted(waiting)
            return result
        sleep(min(poll_seconds, max(0.0, timeout_seconds - result.waited_seconds)))


def require_source_runs_succeeded(environment: MwaaEnvironment, pipelines: list[str]) -> None:
    """Refuse when a pipeline's latest run in the source stage did not succeed."""
    problems = []
    for name in pipelines:
        state = environment.latest_run_state(name)
        if state != "success":
            seen = "has never run" if state is None else f"latest run is {state}"
            problems.append(f"{name}: {seen} in stage {environment.stage.name}")
    if problems:
        raise ConfigError(
            [
                *problems,
                "gate requireSourceRunSuccess: promote only versions whose latest run "
                f"succeeded in {environment.stage.name}; nothing was changed",
            ]
        )


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return datetime.max.replace(tzinfo=UTC)  # unreadable: treat as new, never ignore it
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
