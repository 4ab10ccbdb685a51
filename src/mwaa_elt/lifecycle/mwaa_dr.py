"""Run history on Airflow 2 stages: mwaa-dr's backup and restore DAGs, installed and triggered.

AWS's DR package (`mwaa-dr` on PyPI, aws-samples/mwaa-disaster-recovery; pinned in
infra/environment/requirements-airflow2.txt) copies metadata database tables to S3 and back
through two DAGs its factory builds per Airflow minor version. mwaa-elt renders those DAGs
(dag_templates/platform/mwaa_dr.py.j2) into the stage's DAG folder (`mwaa-elt dr install`),
triggers them through MWAA's `InvokeRestApi` (POST `/dags/<id>/dagRuns`, then GET the run until
it ends), and keeps each backup under its own id next to the REST backups, with a manifest of
each table's sha256: the same listing, the same "no manifest, no backup" rule.

mwaa-dr's DAGs write to one fixed prefix (their `path_prefix`), so the prefix is a work area,
`.mwaa-elt/backups/mwaa-dr/`: a backup run writes it and `mwaa-elt backup` copies each table under
`.mwaa-elt/backups/<id>/`; a restore copies a backup's tables back before the restore run reads
them. The bucket reaches the DAGs in the run's conf (`bucket`, which mwaa-dr reads before its
`DR_BACKUP_BUCKET` variable). Airflow 3 has no such DAGs: there, and on a 2.x stage whose DAGs
are not live, backups go through the REST API (mwaa_elt.lifecycle.metadata).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from botocore.exceptions import ClientError

from mwaa_elt import aws
from mwaa_elt.errors import ConfigError, ExternalError
from mwaa_elt.lifecycle.airflow_api import AirflowApi
from mwaa_elt.lifecycle.metadata import (
    BackupBucket,
    BackupManifest,
    BackupRecord,
    WriteBackupManifest,
    backups_prefix,
    incomplete_backup,
    put_manifest,
)
from mwaa_elt.mwaa_images import TOOL_ROOT
from mwaa_elt.render.format import format_python
from mwaa_elt.render.generate import template_environment
from mwaa_elt.spec.airflow_ids import PLATFORM_DAG_IDS
from mwaa_elt.stage import Stage

KIND = "mwaa-dr"
MWAA_DR_VERSION = "2.2.0"  # infra/environment/requirements-airflow2.txt pins the same release
TEMPLATE = "platform/mwaa_dr.py.j2"
# mwaa-dr leaves these two ids out of the DAGs it unpauses; validation reserves them.
BACKUP_DAG_ID, RESTORE_DAG_ID = PLATFORM_DAG_IDS

DAG_FILES = {dag_id: f"{dag_id}.py" for dag_id in (BACKUP_DAG_ID, RESTORE_DAG_ID)}
# The factories of mwaa-dr 2.2.0 whose tables are listed below (DRFactory_2_10 and its
# subclass DRFactory_2_11 build the same ones; checked by tests/lifecycle/test_mwaa_dr.py).
FACTORIES = {"2.10": ("v_2_10", "DRFactory_2_10"), "2.11": ("v_2_11", "DRFactory_2_11")}
# What a backup carries, one CSV object per table, in the order the factory lists them.
TABLES = (
    "variable",
    "connection",
    "slot_pool",
    "log",
    "job",
    "dag_run",
    "trigger",
    "task_instance",
    "task_fail",
    "active_dag",  # the DAGs that were unpaused: the restore unpauses them again
    "xcom",
)
# mwaa-dr's restore strategy for variables and connections: add the missing ones, never
# overwrite what the target holds (its default; passed explicitly so the plan shows it).
RESTORE_STRATEGY = "APPEND"
FINISHED = frozenset({"success", "failed"})
POLL_SECONDS = 15.0
DEFAULT_TIMEOUT_SECONDS = 3600.0


def factory_for(airflow_version: str) -> tuple[str, str] | None:
    """mwaa-dr's (module, factory class) for an Airflow version, or None when it has none."""
    minor = ".".join(airflow_version.split(".")[:2])
    return FACTORIES.get(minor)


def work_prefix(stage: Stage) -> str:
    """Where the DAGs write and read tables (their `path_prefix`), in the stage's bucket."""
    return stage.paths.mwaa_dr


def dag_key(stage: Stage, dag_id: str) -> str:
    """The S3 key of one of the two DAG files in the stage's DAG folder."""
    return f"{stage.dags_prefix}{DAG_FILES[dag_id]}"


def _require_factory(stage: Stage, version: str | None = None) -> tuple[str, str]:
    version = version or stage.airflow.version
    found = factory_for(version) if version.startswith("2.") else None
    if found is None:
        lines = ", ".join(f"{minor}.x" for minor in FACTORIES)
        raise ConfigError(
            f"stage {stage.name} (stacks/Pulumi.{stage.name}.yaml): Airflow {version} has no "
            f"mwaa-dr {MWAA_DR_VERSION} factory mwaa-elt ships (Airflow {lines}); mwaa-dr does "
            "not support Airflow 3 — `mwaa-elt backup` carries metadata through the REST API there"
        )
    return found


# -- the two DAG files -----------------------------------------------------------------------------


def render_dags(stage: Stage, templates_dir: Path) -> dict[str, bytes]:
    """The backup and restore DAG files of a 2.x stage (S3 key → bytes), formatted by ruff;
    from the project's `dag_templates/platform/`, else from the tool's own."""
    module, factory = _require_factory(stage)
    if not (templates_dir / TEMPLATE).is_file():  # a project with templates of its own
        templates_dir = TOOL_ROOT / "dag_templates"
    template = template_environment(templates_dir).get_template(TEMPLATE)
    sources = {
        DAG_FILES[dag_id]: template.render(
            stage=stage.name,
            version=MWAA_DR_VERSION,
            module=module,
            factory=factory,
            method=f"create_{kind}_dag",
            kind=kind,
            dag_id=dag_id,
            path_prefix=work_prefix(stage).rstrip("/"),
        )
        for dag_id, kind in ((BACKUP_DAG_ID, "backup"), (RESTORE_DAG_ID, "restore"))
    }
    formatted = format_python(sources)
    return {
        f"{stage.dags_prefix}{name}": formatted[name].encode("utf-8") for name in sorted(sources)
    }


@dataclass(frozen=True)
class PutDagFile:
    """Write one DAG file into the stage's DAG folder (MWAA picks it up at its next parse)."""

    key: str
    action: str  # "add" | "update" | "unchanged"


@dataclass(frozen=True)
class InstallPlan:
    """The DR DAG files of one stage, and which of them change."""

    stage: str
    bucket: str
    steps: tuple[PutDagFile, ...]

    @property
    def changes(self) -> tuple[PutDagFile, ...]:
        """The files that are written."""
        return tuple(step for step in self.steps if step.action != "unchanged")


def plan_install(
    stage: Stage, files: Mapping[str, bytes], live: Mapping[str, bytes | None]
) -> InstallPlan:
    """What writing `files` changes, given the bytes `live` in the bucket; no side effects."""
    steps = []
    for key, body in sorted(files.items()):
        now = live.get(key)
        action = "add" if now is None else "unchanged" if now == body else "update"
        steps.append(PutDagFile(key, action))
    return InstallPlan(stage.name, stage.source_bucket, tuple(steps))


def explain_install(plan: InstallPlan) -> list[str]:
    """The install plan, one line per file."""
    lines = [
        f"mwaa-dr {MWAA_DR_VERSION} backup and restore DAGs of stage {plan.stage} "
        f"in s3://{plan.bucket}/: {len(plan.changes)} to write"
    ]
    lines += [f"  {step.action:<9} {step.key}" for step in plan.steps]
    return lines


def live_dag_files(bucket: BackupBucket, keys: list[str]) -> dict[str, bytes | None]:
    """The bytes of each key in the stage's bucket, None where there is none."""
    return {key: bucket.get(key) for key in keys}


def execute_install(plan: InstallPlan, files: Mapping[str, bytes], s3: Any) -> list[str]:
    """Write the changed DAG files; the keys written."""
    written = []
    for step in plan.changes:
        body = files[step.key]
        aws.call(
            f"s3:PutObject s3://{plan.bucket}/{step.key}",
            lambda key=step.key, body=body: s3.put_object(
                Bucket=plan.bucket, Key=key, Body=body, ContentType="text/x-python"
            ),
            state=f"written before it: {', '.join(written) or 'none'}",
        )
        written.append(step.key)
    return written


# -- what the environment runs ---------------------------------------------------------------------


@dataclass(frozen=True)
class DrDags:
    """Whether the environment has parsed each DR DAG, and whether it is paused."""

    paused: Mapping[str, bool | None]  # dag_id → is_paused, None when not parsed

    def live(self, dag_id: str) -> bool:
        """The DAG is parsed: a run can be triggered."""
        return self.paused.get(dag_id) is not None


def read_dr_dags(api: AirflowApi) -> DrDags:
    """GET each DR DAG (404: not parsed)."""
    paused: dict[str, bool | None] = {}
    for dag_id in (BACKUP_DAG_ID, RESTORE_DAG_ID):
        found = api.get(f"/dags/{dag_id}")
        paused[dag_id] = None if found is None else bool(found.get("is_paused"))
    return DrDags(paused)


def not_live_note(stage: Stage, environment: str, dag_id: str) -> str:
    """Why a 2.x stage falls back to the REST API, and how to enable mwaa-dr."""
    return (
        f"mwaa-dr's {dag_id} DAG is not parsed in {environment}: run history is not carried. "
        f"Enable it with `mwaa-elt dr install --stage {stage.name}` (and `pulumi up` once, which "
        "installs mwaa-dr from infra/environment/requirements-airflow2.txt)"
    )


# -- steps shared by backup and restore ------------------------------------------------------------


@dataclass(frozen=True)
class Unpause:
    """Unpause a DR DAG: a run of a paused DAG stays queued for ever."""

    dag_id: str


@dataclass(frozen=True)
class TriggerRun:
    """POST /dags/<id>/dagRuns with the run's id and conf."""

    dag_id: str
    run_id: str
    conf: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class WaitForRun:
    """GET the run until it succeeds or fails, at most `timeout_seconds`."""

    dag_id: str
    run_id: str
    timeout_seconds: float


@dataclass(frozen=True)
class FileTable:
    """Check the table the run wrote in the work area, copy it under the backup's id."""

    table: str
    source_key: str
    key: str


@dataclass(frozen=True)
class StageTable:
    """Copy one table of the backup into the work area the restore run reads."""

    table: str
    source_key: str
    key: str


DrBackupStep = Unpause | TriggerRun | WaitForRun | FileTable | WriteBackupManifest
DrRestoreStep = StageTable | Unpause | TriggerRun | WaitForRun


def _run_steps(
    dag_id: str, run_id: str, conf: dict[str, str], paused: bool | None, timeout: float
) -> list[Unpause | TriggerRun | WaitForRun]:
    steps: list[Unpause | TriggerRun | WaitForRun] = [Unpause(dag_id)] if paused else []
    steps.append(TriggerRun(dag_id, run_id, tuple(sorted(conf.items()))))
    steps.append(WaitForRun(dag_id, run_id, timeout))
    return steps


def _explain_run(step: Unpause | TriggerRun | WaitForRun) -> str:
    if isinstance(step, Unpause):
        return f"  unpause  DAG {step.dag_id}"
    if isinstance(step, TriggerRun):
        conf = json.dumps(dict(step.conf), sort_keys=True)
        return f"  trigger  {step.dag_id} run {step.run_id} with conf {conf}"
    return (
        f"  wait     for run {step.run_id} of {step.dag_id} (at most {step.timeout_seconds:.0f} s)"
    )


# -- backup ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DrBackupPlan:
    """An mwaa-dr backup of one 2.x environment into the stage's bucket."""

    stage: str
    bucket: str
    environment: str
    airflow_version: str
    backup_id: str
    prefix: str
    encryption: str
    steps: tuple[DrBackupStep, ...]


def plan_backup(
    stage: Stage,
    backup_id: str,
    dags: DrDags,
    *,
    environment: str,
    airflow_version: str,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
) -> DrBackupPlan:
    """The mwaa-dr backup of the stage's environment; ConfigError unless its DAG is live."""
    _require_factory(stage, airflow_version)
    if not dags.live(BACKUP_DAG_ID):
        raise ConfigError(not_live_note(stage, environment, BACKUP_DAG_ID))
    prefix = f"{backups_prefix(stage)}{backup_id}/"
    conf = {"bucket": stage.source_bucket}
    steps: list[DrBackupStep] = [
        *_run_steps(BACKUP_DAG_ID, backup_id, conf, dags.paused[BACKUP_DAG_ID], timeout_seconds)
    ]
    work = work_prefix(stage)
    steps += [FileTable(t, f"{work}{t}.csv", f"{prefix}{t}.csv") for t in TABLES]
    steps.append(WriteBackupManifest(f"{prefix}manifest.json"))
    alias = stage.kms_key_alias
    return DrBackupPlan(
        stage=stage.name,
        bucket=stage.source_bucket,
        environment=environment,
        airflow_version=airflow_version,
        backup_id=backup_id,
        prefix=prefix,
        encryption=f"aws:kms ({alias})" if alias else "AES256",
        steps=tuple(steps),
    )


@dataclass(frozen=True)
class BackupRoute:
    """How a stage's metadata is backed up now: mwaa-dr's DAG run (`dr_plan`), or Airflow's
    REST API (`dr_plan` None), with why when a 2.x stage cannot use mwaa-dr (`note`)."""

    dr_plan: DrBackupPlan | None = None
    note: str | None = None


def backup_route(
    stage: Stage,
    api: AirflowApi,
    backup_id: str,
    *,
    airflow_version: str,
    rest: bool = False,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
) -> BackupRoute:
    """mwaa-dr on a 2.x environment whose backup DAG is live (run history carried), the REST
    API otherwise: on 3.x, when asked (`rest`), or, with a note saying why, on a 2.x version
    mwaa-elt ships no factory for or without the DR DAGs."""
    environment = api.target.environment
    if api.target.major != 2 or rest:
        return BackupRoute()
    if factory_for(airflow_version) is None:
        shipped = ", ".join(f"{minor}.x" for minor in FACTORIES)
        return BackupRoute(
            note=f"mwaa-elt ships mwaa-dr's DAGs for Airflow {shipped}, not {airflow_version}: "
            "run history is not carried"
        )
    dags = read_dr_dags(api)
    if not dags.live(BACKUP_DAG_ID):
        return BackupRoute(note=not_live_note(stage, environment, BACKUP_DAG_ID))
    plan = plan_backup(
        stage,
        backup_id,
        dags,
        environment=environment,
        airflow_version=airflow_version,
        timeout_seconds=timeout_seconds,
    )
    return BackupRoute(dr_plan=plan)


def explain_backup(plan: DrBackupPlan) -> list[str]:
    """The mwaa-dr backup plan, one line per step."""
    lines = [
        f"back up the metadata database of {plan.environment} (Airflow {plan.airflow_version}) "
        f"with mwaa-dr {MWAA_DR_VERSION} as s3://{plan.bucket}/{plan.prefix} "
        f"(encrypted: {plan.encryption})",
        f"carried (tables): {', '.join(TABLES)}",
        "not carried: task instances still running or queued (mwaa-dr exports finished ones); "
        "Secrets Manager variables and connections (not in the database; they stay)",
    ]
    for step in plan.steps:
        if isinstance(step, FileTable):
            lines.append(f"  file     s3://{plan.bucket}/{step.source_key} as {step.key}")
        elif isinstance(step, WriteBackupManifest):
            lines.append(f"  write    s3://{plan.bucket}/{step.key}")
        else:
            lines.append(_explain_run(step))
    return lines


class RunFailed(ExternalError):
    """A DR DAG run failed or did not end in time."""


@dataclass
class RunWatcher:
    """Waits for DAG runs through the REST API; clock and sleep are injectable for tests."""

    api: AirflowApi
    progress: Callable[[str], None] | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    poll_seconds: float = POLL_SECONDS
    started: dict[str, str] = field(default_factory=dict)  # run_id → start_date Airflow gave

    def trigger(self, step: TriggerRun) -> None:
        """POST the run (Airflow 2: `dag_run_id` and `conf`)."""
        self.api.call(
            "POST",
            f"/dags/{step.dag_id}/dagRuns",
            body={"dag_run_id": step.run_id, "conf": dict(step.conf)},
        )

    def wait(self, step: WaitForRun) -> dict[str, Any]:
        """The run once it ended in success; RunFailed naming its failed tasks otherwise."""
        path = f"/dags/{step.dag_id}/dagRuns/{quote(step.run_id, safe='')}"
        deadline = self.clock() + step.timeout_seconds
        state = "unknown"
        while True:
            run = self.api.call("GET", path)
            state = str(run.get("state"))
            if run.get("start_date"):
                self.started[step.run_id] = str(run["start_date"])
            if self.progress is not None:
                self.progress(f"run {step.run_id} of {step.dag_id}: {state}")
            if state == "success":
                return run
            if state in FINISHED:
                raise RunFailed(
                    f"run {step.run_id} of {step.dag_id} in {self.api.target.environment} "
                    f"failed; failed tasks: {', '.join(self._failed(path)) or 'none reported'} "
                    "(their logs are in CloudWatch, the environment's task log group)"
                )
            if self.clock() >= deadline:
                raise RunFailed(
                    f"run {step.run_id} of {step.dag_id} in {self.api.target.environment} is "
                    f"still {state} after {step.timeout_seconds:.0f} s; it goes on in Airflow — "
                    "look at it there, or raise --timeout"
                )
            self.sleep(self.poll_seconds)

    def _failed(self, run_path: str) -> list[str]:
        found = self.api.get(f"{run_path}/taskInstances") or {}
        return sorted(
            str(task.get("task_id"))
            for task in found.get("task_instances") or []
            if task.get("state") in ("failed", "upstream_failed")
        )

    def unpause(self, step: Unpause) -> None:
        """PATCH the DAG's is_paused to false."""
        self.api.call(
            "PATCH",
            f"/dags/{step.dag_id}",
            query={"update_mask": "is_paused"},
            body={"is_paused": False},
        )


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _sha256_of(bucket: BackupBucket, key: str) -> tuple[str, int]:
    """sha256 and size of an object, streamed."""

    def digest() -> tuple[str, int]:
        body = bucket.s3.get_object(Bucket=bucket.bucket, Key=key)["Body"]
        sha, size = hashlib.sha256(), 0
        for chunk in body.iter_chunks(1 << 20):
            sha.update(chunk)
            size += len(chunk)
        return sha.hexdigest(), size

    return aws.call(f"s3:GetObject {bucket.uri(key)}", digest)


def _copy(bucket: BackupBucket, source: str, key: str, state: str) -> None:
    alias = bucket.stage.kms_key_alias
    encryption: dict[str, str] = (
        {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": alias}
        if alias
        else {"ServerSideEncryption": "AES256"}
    )
    aws.call(
        f"s3:CopyObject {bucket.uri(source)} to {bucket.uri(key)}",
        lambda: bucket.s3.copy_object(
            Bucket=bucket.bucket,
            Key=key,
            CopySource={"Bucket": bucket.bucket, "Key": source},
            **encryption,
        ),
        state=state,
    )


def _written_since(bucket: BackupBucket, key: str, since: datetime | None) -> None:
    """The run wrote `key`: it exists and is not older than the run."""
    try:
        head = aws.call(
            f"s3:HeadObject {bucket.uri(key)}",
            lambda: bucket.s3.head_object(Bucket=bucket.bucket, Key=key),
            expected=aws.MISSING | {"404"},
        )
    except ClientError:
        head = None
    if head is None:
        raise RunFailed(
            f"{bucket.uri(key)}: the backup run succeeded but did not write this table; "
            "nothing was recorded — look at the run's export tasks in Airflow"
        )
    if since is not None and head["LastModified"] < since:
        raise RunFailed(
            f"{bucket.uri(key)}: last written {head['LastModified'].isoformat()}, before the "
            f"run started ({since.isoformat()}): it is an older backup's table; nothing was "
            "recorded"
        )


def execute_backup(
    plan: DrBackupPlan,
    watcher: RunWatcher,
    bucket: BackupBucket,
    *,
    created_by: str | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> BackupRecord:
    """Trigger the backup run, wait for it, file each table it wrote, then the manifest."""
    digests: dict[str, str] = {}
    sizes: dict[str, int] = {}
    incomplete = incomplete_backup(plan.backup_id)
    since: datetime | None = None
    for step in plan.steps:
        if isinstance(step, Unpause):
            watcher.unpause(step)
        elif isinstance(step, TriggerRun):
            watcher.trigger(step)
        elif isinstance(step, WaitForRun):
            watcher.wait(step)
            started = watcher.started.get(step.run_id)
            # S3 keeps whole seconds: a table written in the run's first second still counts.
            since = _parse_time(started).replace(microsecond=0) if started else None
        elif isinstance(step, FileTable):
            _written_since(bucket, step.source_key, since)
            _copy(bucket, step.source_key, step.key, incomplete)
            digests[step.table], sizes[step.table] = _sha256_of(bucket, step.key)
        else:
            manifest = BackupManifest(
                kind=KIND,
                backup_id=plan.backup_id,
                stage=plan.stage,
                environment=plan.environment,
                airflow_version=plan.airflow_version,
                created_at=now().isoformat(timespec="seconds"),
                created_by=created_by,
                parts=digests,
                counts={},
                sizes=sizes,
            )
            put_manifest(bucket, step.key, manifest)
            return BackupRecord(plan.backup_id, bucket.uri(plan.prefix), manifest)
    raise RuntimeError("a backup plan ends with its manifest")


# -- restore ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DrRestorePlan:
    """Restoring an mwaa-dr backup into one 2.x environment."""

    stage: str
    bucket: str
    environment: str
    backup_id: str
    steps: tuple[DrRestoreStep, ...]


def check_backup(bucket: BackupBucket, manifest: BackupManifest) -> None:
    """Each table of an mwaa-dr backup is the object its manifest recorded (sha256)."""
    prefix = f"{backups_prefix(bucket.stage)}{manifest.backup_id}/"
    for table in TABLES:
        key = f"{prefix}{table}.csv"
        try:
            found, _ = _sha256_of(bucket, key)
        except aws.AwsCallError:
            found = None
        if found is None or found != manifest.parts.get(table):
            raise ConfigError(
                f"{bucket.uri(key)}: missing or not the object backup {manifest.backup_id} "
                "recorded (its sha256 differs); the backup was changed outside mwaa-elt — "
                "restore another one"
            )


def plan_restore(
    stage: Stage,
    manifest: BackupManifest,
    dags: DrDags,
    *,
    environment: str,
    airflow_version: str,
    run_id: str,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
) -> DrRestorePlan:
    """Restoring the mwaa-dr backup `manifest` into the stage's environment; no side effects."""
    _require_factory(stage, airflow_version)
    backed_up, running = _minor(manifest.airflow_version), _minor(airflow_version)
    if running < backed_up:
        raise ConfigError(
            f"backup {manifest.backup_id} holds Airflow {manifest.airflow_version} tables; "
            f"{environment} runs {airflow_version}, whose tables are older: restore it into an "
            f"environment on {backed_up[0]}.{backed_up[1]} or later"
        )
    if not dags.live(RESTORE_DAG_ID):
        raise ConfigError(not_live_note(stage, environment, RESTORE_DAG_ID))
    prefix = f"{backups_prefix(stage)}{manifest.backup_id}/"
    work = work_prefix(stage)
    steps: list[DrRestoreStep] = [
        StageTable(t, f"{prefix}{t}.csv", f"{work}{t}.csv") for t in TABLES
    ]
    conf = {
        "bucket": stage.source_bucket,
        "connection_restore_strategy": RESTORE_STRATEGY,
        "variable_restore_strategy": RESTORE_STRATEGY,
    }
    steps += _run_steps(RESTORE_DAG_ID, run_id, conf, dags.paused[RESTORE_DAG_ID], timeout_seconds)
    return DrRestorePlan(
        stage.name, stage.source_bucket, environment, manifest.backup_id, tuple(steps)
    )


def _minor(version: str) -> tuple[int, int]:
    major, minor = (int(part) for part in version.split(".")[:2])
    return major, minor


def explain_restore(plan: DrRestorePlan) -> list[str]:
    """The mwaa-dr restore plan, one line per step, and what it does to existing rows."""
    lines = [
        f"restore mwaa-dr backup {plan.backup_id} into {plan.environment} (stage {plan.stage}): "
        f"tables {', '.join(TABLES)}",
        "rows the target already holds are kept (mwaa-dr skips a batch whose keys exist); "
        f"variables and connections: {RESTORE_STRATEGY} (only the missing ones are added); "
        "the DAGs that were unpaused are unpaused again",
    ]
    for step in plan.steps:
        if isinstance(step, StageTable):
            lines.append(f"  stage    s3://{plan.bucket}/{step.source_key} as {step.key}")
        else:
            lines.append(_explain_run(step))
    return lines


@dataclass
class DrRestoreResult:
    """What an mwaa-dr restore did."""

    plan: DrRestorePlan
    applied: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The result for `--json`."""
        return {
            "kind": KIND,
            "backup_id": self.plan.backup_id,
            "environment": self.plan.environment,
            "tables": list(TABLES),
            "applied": self.applied,
        }


def execute_restore(
    plan: DrRestorePlan, watcher: RunWatcher, bucket: BackupBucket
) -> DrRestoreResult:
    """Stage the tables, trigger the restore run and wait for it."""
    result = DrRestoreResult(plan)
    for step in plan.steps:
        if isinstance(step, StageTable):
            state = "the restore run was not triggered: nothing in Airflow changed"
            _copy(bucket, step.source_key, step.key, state)
            result.applied.append(f"staged {step.table}")
        elif isinstance(step, Unpause):
            watcher.unpause(step)
            result.applied.append(f"unpaused {step.dag_id}")
        elif isinstance(step, TriggerRun):
            watcher.trigger(step)
            result.applied.append(f"triggered {step.dag_id} run {step.run_id}")
        else:
            watcher.wait(step)
            result.applied.append(f"run {step.run_id} succeeded")
    return result
