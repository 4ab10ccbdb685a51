"""Back up and restore the Airflow metadata a stage's environment holds, on both Airflow lines.

What is carried, through Airflow's REST API (`InvokeRestApi`), on 2.x and 3.x alike:
variables, connections (without passwords: the API never returns them), pools and each DAG's
paused state. Variables and connections under the stage's Secrets Manager prefix are not in the
metadata database, so they are neither listed nor needed: they outlive every environment. Run
history is not carried: Airflow's API cannot write it back (mwaa-dr's DAGs can, on 2.x only;
docs/upgrades.md). A variable Airflow 3 redacts (`***`, a sensitive name) is not carried.

A backup lands in the stage's bucket under `.mwaa-elt/backups/<id>/`: one JSON object per part,
each encrypted at rest (the stage's KMS key, else S3-managed keys), then `manifest.json` last,
naming every part with its sha256 — a backup without its manifest does not exist.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, ValidationError

from mwaa_elt import aws
from mwaa_elt.errors import ConfigError, ExternalError, MwaaEltError
from mwaa_elt.lifecycle.airflow_api import AirflowApi, AirflowTarget
from mwaa_elt.stage import Stage

BACKUP_FORMAT = 1
REDACTED = "***"
PARTS = ("variables", "connections", "pools", "dags")
CARRIED = "variables, connections (no passwords), pools, DAG pause states"
NOT_CARRIED = (
    "run history (Airflow's REST API cannot write it back)",
    "connection passwords (the REST API never returns them)",
    "variables Airflow redacts as ***",
    "Secrets Manager variables and connections (not in the metadata database; they stay)",
)
CONNECTION_FIELDS = ("conn_type", "description", "host", "login", "schema", "port", "extra")


def backups_prefix(stage: Stage) -> str:
    """Where the stage's metadata backups live in its bucket."""
    return stage.backups_prefix


def target_of(stage: Stage) -> AirflowTarget:
    """The stage's own environment as a REST API target."""
    return AirflowTarget(stage.environment_name, stage.region, stage.airflow.major)


# -- what a backup holds ------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Variable(_Model):
    """An Airflow variable in the metadata database."""

    key: str
    value: str
    description: str | None = None


class Connection(_Model):
    """An Airflow connection in the metadata database, without its password."""

    connection_id: str
    conn_type: str
    description: str | None = None
    host: str | None = None
    login: str | None = None
    schema_: str | None = None
    port: int | None = None
    extra: str | None = None

    def fields(self) -> dict[str, Any]:
        """The connection as Airflow's REST API writes it (no password: it is never carried)."""
        data = self.model_dump(exclude={"schema_"})
        data["schema"] = self.schema_
        return data


class Pool(_Model):
    """An Airflow pool."""

    name: str
    slots: int
    description: str | None = None
    include_deferred: bool = False


class DagPause(_Model):
    """Whether a DAG is paused."""

    dag_id: str
    is_paused: bool


class Snapshot(_Model):
    """The metadata one environment holds that a backup carries."""

    variables: tuple[Variable, ...] = ()
    connections: tuple[Connection, ...] = ()
    pools: tuple[Pool, ...] = ()
    dags: tuple[DagPause, ...] = ()
    not_carried: tuple[str, ...] = ()  # what was seen but left out, by name and why

    def counts(self) -> dict[str, int]:
        """How many of each part."""
        return {part: len(getattr(self, part)) for part in PARTS}


class BackupManifest(_Model):
    """The object written last: it makes a backup exist, and names each part's digest."""

    format: int = BACKUP_FORMAT
    # "rest": parts read through Airflow's REST API (this module); "mwaa-dr": tables copied by
    # mwaa-dr's backup DAG on Airflow 2 (mwaa_elt.lifecycle.mwaa_dr).
    kind: Literal["rest", "mwaa-dr"] = "rest"
    backup_id: str
    stage: str
    environment: str
    airflow_version: str
    created_at: str
    created_by: str | None = None
    parts: dict[str, str]  # part → sha256 of its object
    counts: dict[str, int]
    sizes: dict[str, int] = {}  # part → bytes (mwaa-dr tables)
    not_carried: tuple[str, ...] = ()


def read_snapshot(api: AirflowApi) -> Snapshot:
    """Read what a backup carries from a running environment (GETs only)."""
    skipped: list[str] = []
    variables = []
    for item in api.collection("/variables", "variables"):
        value = item.get("value")
        if value is None or value == REDACTED:
            skipped.append(f"variable {item.get('key')}: Airflow redacts its value")
            continue
        variables.append(
            Variable(key=str(item["key"]), value=str(value), description=item.get("description"))
        )
    connections = []
    for item in api.collection("/connections", "connections"):
        name = str(item["connection_id"])
        if api.target.major < 3:  # v1's collection leaves `extra` out; the item has it
            item = api.get(f"/connections/{quote(name, safe='')}") or item
        connections.append(
            Connection(
                connection_id=name,
                conn_type=str(item.get("conn_type") or ""),
                description=item.get("description"),
                host=item.get("host"),
                login=item.get("login"),
                schema_=item.get("schema"),
                port=item.get("port"),
                extra=item.get("extra"),
            )
        )
    pools = [
        Pool(
            name=str(item["name"]),
            slots=int(item.get("slots") or 0),
            description=item.get("description"),
            include_deferred=bool(item.get("include_deferred", False)),
        )
        for item in api.collection("/pools", "pools")
    ]
    dags = [
        DagPause(dag_id=str(item["dag_id"]), is_paused=bool(item.get("is_paused")))
        for item in api.collection("/dags", "dags")
    ]
    return Snapshot(
        variables=tuple(sorted(variables, key=lambda v: v.key)),
        connections=tuple(sorted(connections, key=lambda c: c.connection_id)),
        pools=tuple(sorted(pools, key=lambda p: p.name)),
        dags=tuple(sorted(dags, key=lambda d: d.dag_id)),
        not_carried=tuple(skipped),
    )


# -- backup: plan, explainer, executor -----------------------------------------------------------


@dataclass(frozen=True)
class ReadMetadata:
    """Read variables, connections, pools and pause states through Airflow's REST API."""

    environment: str


@dataclass(frozen=True)
class WritePart:
    """Write one part of the backup as JSON, encrypted at rest."""

    part: str
    key: str


@dataclass(frozen=True)
class WriteBackupManifest:
    """Write the backup's manifest last: until it exists, the backup does not."""

    key: str


BackupStep = ReadMetadata | WritePart | WriteBackupManifest


@dataclass(frozen=True)
class BackupPlan:
    """A metadata backup of one environment into the stage's bucket."""

    stage: str
    bucket: str
    environment: str
    airflow_version: str
    backup_id: str
    prefix: str
    encryption: str  # "aws:kms (alias/…)" or "AES256"
    steps: tuple[BackupStep, ...]


def new_backup_id(now: datetime | None = None, environment: str | None = None) -> str:
    """A sortable backup id: the UTC time, and the environment when it is not the stage's."""
    moment = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return moment if environment is None else f"{moment}-{environment}"


def plan_backup(
    stage: Stage,
    backup_id: str,
    *,
    target: AirflowTarget | None = None,
    airflow_version: str | None = None,
) -> BackupPlan:
    """The backup of `target` (default: the stage's environment); this has no side effects."""
    target = target or target_of(stage)
    prefix = f"{backups_prefix(stage)}{backup_id}/"
    steps: list[BackupStep] = [ReadMetadata(target.environment)]
    steps.extend(WritePart(part, f"{prefix}{part}.json") for part in PARTS)
    steps.append(WriteBackupManifest(f"{prefix}manifest.json"))
    alias = stage.kms_key_alias
    return BackupPlan(
        stage=stage.name,
        bucket=stage.source_bucket,
        environment=target.environment,
        airflow_version=airflow_version or stage.airflow.version,
        backup_id=backup_id,
        prefix=prefix,
        encryption=f"aws:kms ({alias})" if alias else "AES256",
        steps=tuple(steps),
    )


def explain_backup(plan: BackupPlan) -> list[str]:
    """The backup plan, one line per step."""
    lines = [
        f"back up Airflow metadata of {plan.environment} (Airflow {plan.airflow_version}) "
        f"as s3://{plan.bucket}/{plan.prefix} (encrypted: {plan.encryption})",
        f"carried: {CARRIED}",
        f"not carried: {'; '.join(NOT_CARRIED)}",
    ]
    for step in plan.steps:
        if isinstance(step, ReadMetadata):
            lines.append(f"  read   {CARRIED} from {step.environment}")
        else:
            lines.append(f"  write  s3://{plan.bucket}/{step.key}")
    return lines


@dataclass(frozen=True)
class BackupRecord:
    """A backup that exists: its id, where it is, what it holds."""

    backup_id: str
    uri: str
    manifest: BackupManifest

    def to_dict(self) -> dict[str, Any]:
        """The backup for `--json`."""
        return {"backup_id": self.backup_id, "uri": self.uri, **self.manifest.model_dump()}


class BackupBucket:
    """Reads and writes backups in a stage's bucket; every call goes through `aws.call`."""

    def __init__(self, stage: Stage, s3: Any) -> None:
        self.stage = stage
        self.bucket = stage.source_bucket
        self.s3 = s3

    def uri(self, key: str) -> str:
        """The s3:// URI of `key`."""
        return f"s3://{self.bucket}/{key}"

    def put(self, key: str, body: bytes, *, state: str) -> None:
        """Write `key` encrypted at rest: the stage's KMS key, else S3-managed keys."""
        alias = self.stage.kms_key_alias
        encryption: dict[str, str] = (
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": alias}
            if alias
            else {"ServerSideEncryption": "AES256"}
        )
        aws.call(
            f"s3:PutObject {self.uri(key)}",
            lambda: self.s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType="application/json",
                **encryption,
            ),
            state=state,
        )

    def get(self, key: str) -> bytes | None:
        """The body of `key`, or None when it does not exist."""
        try:
            return aws.call(
                f"s3:GetObject {self.uri(key)}",
                lambda: self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read(),
                expected=aws.MISSING,
            )
        except ClientError:
            return None

    def backup_ids(self) -> list[str]:
        """Ids of the backups that exist (have a manifest), newest first."""
        prefix = backups_prefix(self.stage)

        def listing() -> list[str]:
            found = []
            pages = self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    rest = str(item["Key"])[len(prefix) :]
                    if rest.endswith("/manifest.json") and rest.count("/") == 1:
                        found.append(rest.split("/", 1)[0])
            return sorted(found, reverse=True)

        return aws.call(f"s3:ListObjectsV2 {self.uri(prefix)}", listing)

    def listing(self) -> list[BackupManifest]:
        """The manifest of every backup that exists, newest first (one listing, both kinds)."""
        return [read_manifest(self, backup_id) for backup_id in self.backup_ids()]


def _json(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def incomplete_backup(backup_id: str) -> str:
    """What a backup that stopped before its manifest is, for a write that fails."""
    return (
        f"backup {backup_id} is incomplete (no manifest), so it does not exist; "
        "re-run `mwaa-elt backup`"
    )


def put_manifest(bucket: BackupBucket, key: str, manifest: BackupManifest) -> None:
    """Write the manifest that makes a backup exist (its last write)."""
    body = _json(manifest.model_dump(mode="json"))
    bucket.put(key, body, state=incomplete_backup(manifest.backup_id))


def execute_backup(
    plan: BackupPlan,
    api: AirflowApi,
    bucket: BackupBucket,
    *,
    created_by: str | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> BackupRecord:
    """Read the metadata, write each part, then the manifest that makes the backup exist."""
    snapshot = Snapshot()
    digests: dict[str, str] = {}
    incomplete = incomplete_backup(plan.backup_id)
    for step in plan.steps:
        if isinstance(step, ReadMetadata):
            snapshot = read_snapshot(api)
        elif isinstance(step, WritePart):
            items = [item.model_dump(mode="json") for item in getattr(snapshot, step.part)]
            body = _json({"part": step.part, "items": items})
            digests[step.part] = hashlib.sha256(body).hexdigest()
            bucket.put(step.key, body, state=incomplete)
        else:
            manifest = BackupManifest(
                backup_id=plan.backup_id,
                stage=plan.stage,
                environment=plan.environment,
                airflow_version=plan.airflow_version,
                created_at=now().isoformat(timespec="seconds"),
                created_by=created_by,
                parts=digests,
                counts=snapshot.counts(),
                not_carried=snapshot.not_carried,
            )
            put_manifest(bucket, step.key, manifest)
            return BackupRecord(plan.backup_id, bucket.uri(plan.prefix), manifest)
    raise RuntimeError("a backup plan ends with its manifest")


def read_manifest(bucket: BackupBucket, backup_id: str) -> BackupManifest:
    """The manifest of a stored backup of either kind; ConfigError naming the known ones."""
    prefix = f"{backups_prefix(bucket.stage)}{backup_id}/"
    where = bucket.uri(f"{prefix}manifest.json")
    body = bucket.get(f"{prefix}manifest.json")
    if body is None:
        known = bucket.backup_ids()
        listed = ", ".join(known[:5]) if known else "none"
        raise ConfigError(
            f"{where}: no backup {backup_id!r} in stage {bucket.stage.name}; expected one of "
            f"the stage's backups (newest first: {listed}); run `mwaa-elt backup --stage "
            f"{bucket.stage.name}` to make one"
        )
    try:
        manifest = BackupManifest.model_validate_json(body)
    except ValidationError as error:
        raise ConfigError(f"{where}: not an mwaa-elt backup manifest: {_first(error)}") from None
    return manifest


def load_backup(bucket: BackupBucket, backup_id: str) -> tuple[BackupManifest, Snapshot]:
    """A stored REST backup, each part checked against the digest its manifest records."""
    prefix = f"{backups_prefix(bucket.stage)}{backup_id}/"
    manifest = read_manifest(bucket, backup_id)
    if manifest.kind != "rest":
        raise ConfigError(
            f"{bucket.uri(prefix)}: backup {backup_id} is an {manifest.kind} backup (database "
            "tables), not one of Airflow's REST API; restore it with `mwaa-elt restore` into a "
            "2.x environment whose mwaa-dr DAGs are live"
        )
    parts: dict[str, list[Any]] = {}
    for part in PARTS:
        key = f"{prefix}{part}.json"
        data = bucket.get(key)
        if data is None or hashlib.sha256(data).hexdigest() != manifest.parts.get(part):
            raise ConfigError(
                f"{bucket.uri(key)}: missing or not the object backup {backup_id} recorded "
                "(its sha256 differs); the backup was changed outside mwaa-elt — restore "
                "another one"
            )
        parts[part] = json.loads(data)["items"]
    try:
        snapshot = Snapshot.model_validate({**parts, "not_carried": manifest.not_carried})
    except ValidationError as error:
        raise ConfigError(f"{bucket.uri(prefix)}: unreadable backup: {_first(error)}") from None
    return manifest, snapshot


def _first(error: ValidationError) -> str:
    first = error.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc']) or '(root)'}: {first['msg']}"


# -- restore: plan, explainer, executor ----------------------------------------------------------

Kind = Literal["create", "update"]


@dataclass(frozen=True)
class PutVariable:
    """Create or update a variable."""

    variable: Variable
    kind: Kind

    @property
    def label(self) -> str:
        return f"{self.kind} variable {self.variable.key}"


@dataclass(frozen=True)
class PutConnection:
    """Create a connection (without password) or update its fields, keeping its password."""

    connection: Connection
    kind: Kind

    @property
    def label(self) -> str:
        return f"{self.kind} connection {self.connection.connection_id}"


@dataclass(frozen=True)
class PutPool:
    """Create or update a pool."""

    pool: Pool
    kind: Kind

    @property
    def label(self) -> str:
        return f"{self.kind} pool {self.pool.name}"


@dataclass(frozen=True)
class SetPaused:
    """Pause or unpause a DAG."""

    dag_id: str
    is_paused: bool

    @property
    def label(self) -> str:
        return f"{'pause' if self.is_paused else 'unpause'} DAG {self.dag_id}"


RestoreStep = PutVariable | PutConnection | PutPool | SetPaused


@dataclass(frozen=True)
class RestorePlan:
    """What restoring a backup changes in one environment; nothing else is touched."""

    stage: str
    environment: str
    backup_id: str
    steps: tuple[RestoreStep, ...]
    unchanged: int  # items the target already holds as backed up
    absent_dags: tuple[str, ...] = ()  # DAGs in the backup the target has not parsed
    kept: tuple[str, ...] = ()  # items the target has and the backup does not: left alone
    not_carried: tuple[str, ...] = ()


def plan_restore(
    stage: str,
    environment: str,
    backup_id: str,
    backup: Snapshot,
    current: Snapshot,
    *,
    dags: Sequence[str] | None = None,
) -> RestorePlan:
    """The steps making `current` hold what `backup` holds; this has no side effects.

    Nothing the target has is deleted. `dags` limits the pause states restored (default: all).
    """
    steps: list[RestoreStep] = []
    unchanged = 0
    kept: list[str] = []

    have_vars = {v.key: v for v in current.variables}
    for variable in backup.variables:
        now = have_vars.get(variable.key)
        if now == variable:
            unchanged += 1
        else:
            steps.append(PutVariable(variable, "create" if now is None else "update"))
    kept += [f"variable {k}" for k in sorted(set(have_vars) - {v.key for v in backup.variables})]

    have_conns = {c.connection_id: c for c in current.connections}
    for connection in backup.connections:
        now = have_conns.get(connection.connection_id)
        if now is not None and _same_connection(now, connection):
            unchanged += 1
        else:
            steps.append(PutConnection(connection, "create" if now is None else "update"))
    wanted = {c.connection_id for c in backup.connections}
    kept += [f"connection {k}" for k in sorted(set(have_conns) - wanted)]

    have_pools = {p.name: p for p in current.pools}
    for pool in backup.pools:
        now = have_pools.get(pool.name)
        if now == pool:
            unchanged += 1
        else:
            steps.append(PutPool(pool, "create" if now is None else "update"))
    kept += [f"pool {k}" for k in sorted(set(have_pools) - {p.name for p in backup.pools})]

    have_dags = {d.dag_id: d.is_paused for d in current.dags}
    absent = []
    chosen = None if dags is None else set(dags)
    for dag in backup.dags:
        if chosen is not None and dag.dag_id not in chosen:
            continue
        if dag.dag_id not in have_dags:
            absent.append(dag.dag_id)
        elif have_dags[dag.dag_id] == dag.is_paused:
            unchanged += 1
        else:
            steps.append(SetPaused(dag.dag_id, dag.is_paused))
    return RestorePlan(
        stage=stage,
        environment=environment,
        backup_id=backup_id,
        steps=tuple(steps),
        unchanged=unchanged,
        absent_dags=tuple(absent),
        kept=tuple(kept),
        not_carried=backup.not_carried,
    )


def _same_connection(current: Connection, wanted: Connection) -> bool:
    # Airflow 3 redacts sensitive values of `extra`; a redacted one cannot be compared.
    if current.extra is not None and REDACTED in current.extra:
        return current.model_dump(exclude={"extra"}) == wanted.model_dump(exclude={"extra"})
    return current == wanted


def explain_restore(plan: RestorePlan) -> list[str]:
    """The restore plan, one line per change, then what it leaves alone."""
    lines = [
        f"restore backup {plan.backup_id} into {plan.environment} (stage {plan.stage}): "
        f"{len(plan.steps)} change(s), {plan.unchanged} already as backed up"
    ]
    lines += [f"  {step.label}" for step in plan.steps]
    if plan.absent_dags:
        lines.append(
            f"not parsed in {plan.environment}, so their pause state is not set: "
            f"{', '.join(plan.absent_dags)} (promote them, then restore again)"
        )
    if plan.kept:
        lines.append(f"kept (not in the backup, never deleted): {', '.join(plan.kept)}")
    created = [s.connection.connection_id for s in plan.steps if isinstance(s, PutConnection)]
    if created:
        lines.append(
            f"connections are written without passwords (never backed up): {', '.join(created)}"
            " — keep secrets in Secrets Manager, or set them again in Airflow"
        )
    if plan.not_carried:
        lines.append(f"not in the backup: {'; '.join(plan.not_carried)}")
    return lines


@dataclass
class RestoreResult:
    """What a restore applied, in order."""

    plan: RestorePlan
    applied: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The result for `--json`."""
        return {
            "backup_id": self.plan.backup_id,
            "environment": self.plan.environment,
            "applied": self.applied,
            "unchanged": self.plan.unchanged,
            "absent_dags": list(self.plan.absent_dags),
            "kept": list(self.plan.kept),
            "not_carried": list(self.plan.not_carried),
        }


class RestoreFailed(ExternalError):
    """A restore stopped part-way; the message says exactly what was applied."""


def execute_restore(
    plan: RestorePlan,
    api: AirflowApi,
    progress: Callable[[int, int, str], None] | None = None,
) -> RestoreResult:
    """Apply the plan's steps in order; at the first failure stop and name what was applied,
    what failed and what was not applied."""
    result = RestoreResult(plan)
    total = len(plan.steps)
    for index, step in enumerate(plan.steps):
        if progress is not None:
            progress(index, total, step.label)
        try:
            _apply(api, step)
        except MwaaEltError as error:
            left = [s.label for s in plan.steps[index + 1 :]]
            raise RestoreFailed(
                [
                    f"restore of backup {plan.backup_id} into {plan.environment} stopped at "
                    f"'{step.label}': {'; '.join(error.messages)}",
                    f"applied ({len(result.applied)}): {', '.join(result.applied) or 'nothing'}",
                    f"not applied ({len(left) + 1}): {', '.join([step.label, *left])}",
                    "restoring the same backup again applies only what is still missing",
                ]
            ) from None
        result.applied.append(step.label)
    return result


def _apply(api: AirflowApi, step: RestoreStep) -> None:
    if isinstance(step, PutVariable):
        body = step.variable.model_dump()
        if step.kind == "create":
            api.call("POST", "/variables", body=body)
        else:
            api.call("PATCH", f"/variables/{quote(step.variable.key, safe='')}", body=body)
    elif isinstance(step, PutConnection):
        fields = step.connection.fields()
        if step.kind == "create":
            api.call("POST", "/connections", body=fields)
        else:
            name = quote(step.connection.connection_id, safe="")
            # The update mask leaves the target's password as it is.
            mask = ",".join(CONNECTION_FIELDS)
            api.call("PATCH", f"/connections/{name}", query={"update_mask": mask}, body=fields)
    elif isinstance(step, PutPool):
        body = step.pool.model_dump()
        if step.kind == "create":
            api.call("POST", "/pools", body=body)
        else:
            api.call("PATCH", f"/pools/{quote(step.pool.name, safe='')}", body=body)
    else:
        api.call(
            "PATCH",
            f"/dags/{quote(step.dag_id, safe='')}",
            query={"update_mask": "is_paused"},
            body={"is_paused": step.is_paused},
        )


def set_paused(api: AirflowApi, dag_ids: Sequence[str], paused: bool) -> list[str]:
    """Pause or unpause `dag_ids` in order; the ones done (a failure names them)."""
    done: list[str] = []
    for dag_id in dag_ids:
        try:
            _apply(api, SetPaused(dag_id, paused))
        except MwaaEltError as error:
            verb = "pause" if paused else "unpause"
            raise ExternalError(
                [
                    f"could not {verb} {dag_id} in {api.target.environment}: "
                    f"{'; '.join(error.messages)}",
                    f"{verb}d before it: {', '.join(done) or 'none'}",
                ]
            ) from None
        done.append(dag_id)
    return done


def pause_states(api: AirflowApi) -> Mapping[str, bool]:
    """Every DAG the environment has parsed, with whether it is paused."""
    return {
        str(item["dag_id"]): bool(item.get("is_paused")) for item in api.collection("/dags", "dags")
    }
