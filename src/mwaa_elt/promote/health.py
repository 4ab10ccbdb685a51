"""A stage's health, for `mwaa-elt status`: the MWAA environment, Airflow's view, CloudWatch.

Each part is read on its own: one that cannot be read is reported in a line and the others are
still shown. Without credentials or a reachable endpoint nothing live can be read; the report
says so once, and still lists what the stack file defines (environment, alarms).

Airflow is read through MWAA's `InvokeRestApi`, which serves Airflow's own REST API: `/api/v1`
on Airflow 2, `/api/v2` on Airflow 3 (MWAA adds the prefix for the environment's version).
Both lines answer `GET /importErrors` with `import_errors[]` (`filename`, `timestamp`,
`stack_trace`) and `GET /dags/{dag_id}/dagRuns` with `dag_runs[]` (`dag_run_id`, `state`,
`start_date`, `end_date`); runs are ordered by `execution_date` on v1 and `run_after` on v2,
the field each line always sets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

from botocore.exceptions import ClientError

from mwaa_elt import aws
from mwaa_elt.errors import ExternalError, MwaaEltError
from mwaa_elt.infra.documents.monitoring import HEALTH_ALARM, alarm_definitions, alarm_name
from mwaa_elt.promote.mwaa import AVAILABLE, ImportErrorEntry, MwaaEnvironment
from mwaa_elt.promote.status import StageStatus, stage_status
from mwaa_elt.promote.store import StageStore
from mwaa_elt.stage import Stage

# Failure kinds (`mwaa_elt.aws.classify`) of a service that cannot be reached at all; when
# neither MWAA nor CloudWatch can, AWS is out of reach from here.
UNREACHABLE: frozenset[aws.Kind] = frozenset({"connection", "timeout"})
# InvokeRestApi's `Path` is 1-64 characters (the MWAA API reference).
REST_PATH_LIMIT = 64
T = TypeVar("T")


@dataclass(frozen=True)
class EnvironmentState:
    """What MWAA's GetEnvironment says of the environment."""

    name: str
    status: str
    airflow_version: str
    last_update_status: str | None = None
    last_update_error: str | None = None


@dataclass(frozen=True)
class LastRun:
    """The most recent run of a live pipeline's DAG, as Airflow reports it."""

    pipeline: str
    state: str | None  # None: the DAG never ran
    run_id: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    note: str | None = None  # why the run could not be asked for


@dataclass(frozen=True)
class FiringAlarm:
    """A CloudWatch alarm of the stage that is in ALARM now."""

    name: str
    reason: str
    since: str


@dataclass(frozen=True)
class HealthReport:
    """The stage's health; a part that could not be read is None, with a line in `unavailable`."""

    stage: str
    environment_name: str
    defined_alarms: tuple[str, ...]  # from the stack file: what CloudWatch should have
    environment: EnvironmentState | None
    import_errors: tuple[ImportErrorEntry, ...] | None
    last_runs: tuple[LastRun, ...] | None
    alarms: tuple[FiringAlarm, ...] | None
    unavailable: tuple[str, ...] = ()
    offline: str | None = None  # set when no AWS call could be made at all

    @property
    def healthy(self) -> bool:
        """AVAILABLE, no import error, no alarm firing (parts not read do not count)."""
        return (
            (self.environment is None or self.environment.status == AVAILABLE)
            and not self.import_errors
            and not self.alarms
        )

    def to_dict(self) -> dict[str, Any]:
        """The health for `status --json`."""
        return {
            "environment_name": self.environment_name,
            "environment": None if self.environment is None else asdict(self.environment),
            "import_errors": None
            if self.import_errors is None
            else [
                {
                    "filename": e.filename,
                    "timestamp": e.timestamp.isoformat(),
                    "stack_trace": e.stack_trace,
                }
                for e in self.import_errors
            ],
            "last_runs": None if self.last_runs is None else [asdict(r) for r in self.last_runs],
            "alarms_in_alarm": None if self.alarms is None else [asdict(a) for a in self.alarms],
            "defined_alarms": list(self.defined_alarms),
            "unavailable": list(self.unavailable),
            "offline": self.offline,
            "healthy": self.healthy,
        }


class _Offline(Exception):
    """No AWS call can succeed from here (no credentials, no route to the endpoint)."""


def stage_health(
    stage: Stage,
    pipelines: Sequence[str],
    mwaa_client: Any,
    cloudwatch_client: Any,
) -> HealthReport:
    """Read the environment, Airflow's import errors and each pipeline's last run, and the
    stage's alarms in ALARM."""
    defined = [alarm.name for alarm in alarm_definitions(stage)]
    if defined:
        defined.append(alarm_name(stage, HEALTH_ALARM))
    report: dict[str, Any] = {
        "stage": stage.name,
        "environment_name": stage.environment_name,
        "defined_alarms": tuple(defined),
        "environment": None,
        "import_errors": None,
        "last_runs": None,
        "alarms": None,
    }
    unavailable: list[str] = []
    unreachable: list[aws.AwsCallError] = []
    try:
        report["environment"] = _part(
            unavailable,
            unreachable,
            "MWAA environment",
            lambda: _environment(stage, mwaa_client),
        )
        airflow = MwaaEnvironment(stage, mwaa_client)
        state = report["environment"]
        if state is not None and state.status != AVAILABLE:
            unavailable.append(
                f"Airflow: not asked, the environment is {state.status} (its REST API answers "
                f"when it is {AVAILABLE})"
            )
        elif state is not None:
            errors = _part(unavailable, unreachable, "Airflow import errors", airflow.import_errors)
            report["import_errors"] = None if errors is None else tuple(errors)
            report["last_runs"] = _part(
                unavailable,
                unreachable,
                "Airflow DAG runs",
                lambda: tuple(_last_runs(airflow, pipelines)),
            )
        report["alarms"] = _part(
            unavailable,
            unreachable,
            "CloudWatch alarms",
            lambda: tuple(_firing(stage, cloudwatch_client)),
        )
    except _Offline as reason:
        return HealthReport(**report, offline=str(reason))
    if report["environment"] is None and report["alarms"] is None and len(unreachable) == 2:
        # Neither MWAA nor CloudWatch answered at all: one line says it for both.
        return HealthReport(**report, offline=offline_reason(unreachable[0]))
    return HealthReport(**report, unavailable=tuple(unavailable))


def offline_reason(error: aws.AwsCallError) -> str | None:
    """The one-line reason when `error` means no AWS call can work from here, else None."""
    if error.kind == "credentials":
        why = f"no usable AWS credentials ({_cause(error)})"
    elif error.kind in UNREACHABLE:
        why = f"AWS is unreachable ({_cause(error)})"
    else:
        return None
    return f"offline: {why}; showing what the stack file defines"


def _cause(error: aws.AwsCallError) -> str:
    """What AWS or botocore said, without the call's name and the advice around it."""
    text = str(error)
    for marker in ("the credentials: ", "): ", " failed: "):
        if marker in text:
            text = text.split(marker, 1)[1]
            break
    return text.split("; ", 1)[0]


def _part(
    unavailable: list[str],
    unreachable: list[aws.AwsCallError],
    what: str,
    read: Callable[[], T],
) -> T | None:
    """`read()`, or None with a line in `unavailable`; raise _Offline without credentials."""
    try:
        return read()
    except aws.AwsCallError as error:
        if error.kind == "credentials":
            raise _Offline(offline_reason(error)) from None
        if error.kind in UNREACHABLE:
            unreachable.append(error)
            unavailable.append(f"{what}: unreachable: {_cause(error)}")
            return None
        unavailable.append(f"{what}: could not be read: {_one_line(error)}")
        return None
    except MwaaEltError as error:
        unavailable.append(f"{what}: could not be read: {_one_line(error)}")
        return None


def _one_line(error: BaseException) -> str:
    if isinstance(error, MwaaEltError):
        return "; ".join(error.messages)
    return " ".join(str(error).split())


def _environment(stage: Stage, client: Any) -> EnvironmentState:
    try:
        found = aws.call(
            f"airflow:GetEnvironment {stage.environment_name}",
            lambda: client.get_environment(Name=stage.environment_name)["Environment"],
            expected={"ResourceNotFoundException"},
        )
    except ClientError:
        raise _NotDeployed(
            f"{stage.environment_name} does not exist in {stage.region}; "
            f"run `pulumi up --stack {stage.name}`"
        ) from None
    update = found.get("LastUpdate") or {}
    update_error = (update.get("Error") or {}).get("ErrorMessage")
    return EnvironmentState(
        name=str(found.get("Name", stage.environment_name)),
        status=str(found.get("Status", "UNKNOWN")),
        airflow_version=str(found.get("AirflowVersion", "")),
        last_update_status=update.get("Status"),
        last_update_error=update_error,
    )


class _NotDeployed(MwaaEltError):
    """The stage's environment does not exist (yet)."""


def _last_runs(airflow: MwaaEnvironment, pipelines: Sequence[str]) -> list[LastRun]:
    # The field each Airflow line always sets, so the newest run sorts first.
    order = "-run_after" if airflow.stage.airflow.major >= 3 else "-execution_date"
    runs = []
    for pipeline in pipelines:
        path = f"/dags/{quote(pipeline, safe='')}/dagRuns"
        if len(path) > REST_PATH_LIMIT:
            note = f"not asked: {path} is longer than InvokeRestApi's {REST_PATH_LIMIT} characters"
            runs.append(LastRun(pipeline, None, note=note))
            continue
        found = airflow.rest(path, {"limit": 1, "order_by": order})
        items = (found or {}).get("dag_runs") or []
        if not items:
            runs.append(LastRun(pipeline, None))
            continue
        run = items[0]
        runs.append(
            LastRun(
                pipeline=pipeline,
                state=_text(run.get("state")),
                run_id=_text(run.get("dag_run_id")),
                started_at=_text(run.get("start_date"))
                or _text(run.get("run_after") or run.get("execution_date")),
                ended_at=_text(run.get("end_date")),
            )
        )
    return runs


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _firing(stage: Stage, client: Any) -> list[FiringAlarm]:
    """The stage's metric alarms (named `<prefix>-<stage>-…`) in state ALARM.

    The composite environment-health alarm fires exactly when one of these does; reading
    composite alarms would need DescribeAlarms on "*", which the CI role is not given.
    """
    firing: list[FiringAlarm] = []
    prefix = f"{stage.environment_name}-"
    pages = aws.call(
        f"cloudwatch:DescribeAlarms {prefix}*",
        lambda: list(
            client.get_paginator("describe_alarms").paginate(
                AlarmNamePrefix=prefix,
                StateValue="ALARM",
                AlarmTypes=["MetricAlarm"],
            )
        ),
    )
    for page in pages:
        for alarm in page.get("MetricAlarms", []):
            # Both filters again: an emulator (moto) applies only one of them.
            if alarm.get("StateValue") != "ALARM" or not alarm["AlarmName"].startswith(prefix):
                continue
            firing.append(
                FiringAlarm(
                    name=str(alarm["AlarmName"]),
                    reason=str(alarm.get("StateReason", "")),
                    since=_text(alarm.get("StateUpdatedTimestamp")) or "",
                )
            )
    return sorted(firing, key=lambda a: a.name)


@dataclass(frozen=True)
class StatusReport:
    """`mwaa-elt status`: what is live (from the stage's bucket) and how the stage is doing."""

    stage: str
    bucket: str
    live: StageStatus | None  # None: the bucket could not be read (see live_problem)
    live_problem: str | None
    health: HealthReport

    @property
    def offline(self) -> str | None:
        return self.health.offline

    def to_dict(self) -> dict[str, Any]:
        """The report for `status --json`: today's keys, plus `health` and `offline`."""
        live = self.live.to_dict() if self.live is not None else {
            "stage": self.stage,
            "bucket": self.bucket,
            "pipelines": None,
        }  # fmt: skip
        return {
            **live,
            "live_unavailable": self.live_problem,
            "offline": self.offline,
            "health": self.health.to_dict(),
        }


def status_report(
    stage: Stage, store: StageStore, mwaa_client: Any, cloudwatch_client: Any
) -> StatusReport:
    """Read the stage's live pipelines and its health; a part that fails is reported, not
    raised, so the others are still shown."""
    live: StageStatus | None = None
    problem: str | None = None
    try:
        live = stage_status(store)
    except ExternalError as error:
        problem = "; ".join(error.messages)
    pipelines = [p.name for p in live.pipelines] if live is not None else []
    health = stage_health(stage, pipelines, mwaa_client, cloudwatch_client)
    if health.offline is not None and live is not None:
        # S3 answered, so this machine is online; only those two services are out of reach.
        reason = health.offline.removeprefix("offline: ").split("; showing")[0]
        health = replace(health, offline=None, unavailable=(f"MWAA and CloudWatch: {reason}",))
    elif health.offline is not None:
        problem = None  # the offline line says it once for every part
    return StatusReport(stage.name, store.bucket, live, problem, health)
