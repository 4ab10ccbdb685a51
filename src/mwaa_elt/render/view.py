"""What a generated DAG file says, as data: the operators, their values and the dependencies.

Templates only lay this out as Python; every decision (task ids, SQL, EMR steps, datasets) is
made here, so it is testable without Jinja or Airflow.
"""

from __future__ import annotations

import builtins
import itertools
import keyword
import math
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from mwaa_elt.errors import ConfigError
from mwaa_elt.spec.airflow_ids import (
    CLEAR_SUFFIX,
    CREATE_CLUSTER,
    PUBLISH,
    SUBMIT_SUFFIX,
    TERMINATE_CLUSTER,
)
from mwaa_elt.spec.model import CheckStep, UnloadStep
from mwaa_elt.spec.resolve import StagePipeline, StageTask
from mwaa_elt.spec.s3_locations import clear_location
from mwaa_elt.spec.values import parse_duration
from mwaa_elt.stage import EMR_MANAGED_POLICIES_TAG, EMR_SUBNET_VARIABLE, Stage
from mwaa_elt.stage.green import paused_on_creation

AWS_CONN_ID = "aws_default"
ATHENA_DATABASE = "default"  # SQL names its databases; the query context only needs a valid one
# The stage's private subnet for EMR is known only to Pulumi; it publishes it as this Airflow
# Variable (Secrets Manager, <secrets prefix>variables/emr_subnet_id), read when the task runs.
EMR_STEP_POKE_SECONDS = 60
EMR_STEP_DEFAULT_TIMEOUT = timedelta(hours=6)
DATASET_SCHEME = "mwaa-elt"

# Names the generated module itself uses; a task variable must not shadow them.
_MODULE_NAMES = {"dag", "pendulum", "timedelta", "run_athena_check"}
_RESERVED = set(keyword.kwlist) | set(keyword.softkwlist) | set(dir(builtins)) | _MODULE_NAMES


@dataclass(frozen=True)
class Op:
    """One Airflow task in the file: the template macro that writes it and the macro's values."""

    macro: str
    var: str
    task_id: str
    full_id: str
    values: dict[str, Any]


@dataclass(frozen=True)
class Block:
    """Consecutive tasks written together; `group` names their TaskGroup (None: the DAG itself)."""

    group: str | None
    ops: tuple[Op, ...]


@dataclass(frozen=True)
class Dataset:
    """An Airflow Dataset (2.x) / Asset (3.x) a pipeline produces or waits for."""

    name: str  # <pipeline>.<dataset>, as specs write it
    uri: str


@dataclass(frozen=True)
class DagView:
    """Everything the DAG template needs for one pipeline in one stage."""

    airflow_major: int
    dag: dict[str, Any]
    default_args: dict[str, Any]
    notifiers: tuple[dict[str, Any], ...]  # {"class": ..., "args": {...}} per on_failure_callback
    blocks: tuple[Block, ...]
    deps: tuple[tuple[tuple[str, ...], str], ...]
    teardown: tuple[str, str] | None  # (terminate var, create var)
    symbols: tuple[str, ...]  # what the file imports, by the names the templates know
    uses_check: bool


def dataset_for(stage: Stage, ref: str) -> Dataset:
    """The dataset `<pipeline>.<name>` in `stage`: one URI scheme for producers and consumers."""
    pipeline, name = ref.split(".", 1)
    return Dataset(name=ref, uri=f"{DATASET_SCHEME}://{stage.name}/{pipeline}/{name}")


def sql_string(value: str) -> str:
    """`value` as a SQL string literal (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def split_s3_uri(uri: str, where: str) -> tuple[str, str]:
    """`s3://bucket/key` as (bucket, key); ConfigError naming `where` for anything else."""
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ConfigError(f"{where}: '{uri}' is not an s3://bucket/key URI")
    bucket, key = uri[5:].split("/", 1)
    if not bucket or not key:
        raise ConfigError(f"{where}: '{uri}' needs both a bucket and a key or prefix")
    return bucket, key


def check_query(step: CheckStep, sql: str | None) -> str:
    """The SQL of a data-quality check: one boolean, true when the data is right."""
    if sql is not None:
        return sql
    conditions = []
    if step.row_count_min is not None:
        conditions.append(f"count(*) >= {step.row_count_min}")
    if step.not_null:
        nulls = " OR ".join(f'"{column}" IS NULL' for column in step.not_null)
        conditions.append(f"count_if({nulls}) = 0")
    lines = [f"SELECT {' AND '.join(conditions)}", f"FROM {step.table}"]
    if step.where:
        lines.append(f"WHERE {step.where}")  # last clause, so it needs no parentheses
    return "\n".join(lines) + "\n"


def unload_query(step: UnloadStep, sql: str, where: str) -> str:
    """Athena UNLOAD of `sql` to `step.to` in the step's format."""
    if step.format == "csv":
        compression = (step.compression or "none").upper()
        props = ["format = 'TEXTFILE'", f"field_delimiter = {sql_string(step.delimiter)}"]
    else:
        compression = (step.compression or "snappy").upper()
        props = ["format = 'PARQUET'"]
    props.append(f"compression = '{compression}'")
    select = sql.rstrip()
    select = select[:-1].rstrip() if select.endswith(";") else select
    return f"UNLOAD (\n{select}\n)\nTO {sql_string(step.to)}\nWITH ({', '.join(props)})\n"


def athena_query(sql: str) -> str:
    """SQL as AthenaOperator gets it: Airflow would read a value ending in `.sql` as a file name."""
    return sql + "\n" if sql.endswith(".sql") else sql


class _Names:
    """Python variable names for tasks: the task id, unless Python or the module already uses it."""

    def __init__(self) -> None:
        self._used: set[str] = set()

    def take(self, task_id: str) -> str:
        name = task_id
        if name in _RESERVED or name in self._used:
            name = f"{task_id}_task"
        n = 2
        while name in _RESERVED or name in self._used:
            name = f"{task_id}_task{n}"
            n += 1
        self._used.add(name)
        return name


@dataclass
class _Builder:
    sp: StagePipeline
    source: str
    script_keys: dict[str, str]
    names: _Names = field(default_factory=_Names)
    symbols: set[str] = field(default_factory=set)
    first: dict[str, Op] = field(default_factory=dict)  # spec id -> the op its upstreams feed
    last: dict[str, Op] = field(default_factory=dict)  # spec id -> the op that means "done"
    deps: list[tuple[tuple[str, ...], str]] = field(default_factory=list)

    @property
    def stage(self) -> Stage:
        return self.sp.stage

    def where(self, task: StageTask) -> str:
        return f"{self.source}: task '{task.id}'"

    def op(self, macro: str, task_id: str, group: str | None, values: dict[str, Any]) -> Op:
        full = f"{group}.{task_id}" if group else task_id
        return Op(macro, self.names.take(task_id), task_id, full, values)

    # -- per kind ---------------------------------------------------------------------------

    def athena(self, task: StageTask, query: str, task_id: str | None = None) -> Op:
        self.symbols.add("AthenaOperator")
        return self.op(
            "athena",
            task_id or task.id,
            task.group,
            {
                "query": athena_query(query),
                "database": ATHENA_DATABASE,
                "workgroup": self.stage.athena_workgroup,
                "output_location": self.stage.athena_results_uri,
                "aws_conn_id": AWS_CONN_ID,
                "execution_timeout": task.timeout,
            },
        )

    def task_ops(self, task: StageTask, job_flow_id: str | None) -> list[Op]:
        step = task.step
        if task.kind == "athena":
            # A CTAS or UNLOAD needs its folder empty: cleared first, so a re-run (Airflow's
            # "clear" of the run) finds it as the first try did. Validation made it a folder
            # of its own under the stage's write prefix.
            folder = clear_location(task.sql or "")
            if folder is None:
                return [self.athena(task, task.sql or "")]
            bucket, prefix = split_s3_uri(folder, f"{self.where(task)}: athena.sql")
            self.symbols.add("S3DeleteObjectsOperator")
            clear = self.op(
                "s3_delete",
                task.id + CLEAR_SUFFIX,
                task.group,
                {"bucket": bucket, "prefix": prefix, "aws_conn_id": AWS_CONN_ID},
            )
            return [clear, self.athena(task, task.sql or "")]
        if task.kind == "unload":
            bucket, prefix = split_s3_uri(step.to, f"{self.where(task)}: unload.to")
            self.symbols.add("S3DeleteObjectsOperator")
            clear = self.op(
                "s3_delete",
                task.id + CLEAR_SUFFIX,
                task.group,
                {"bucket": bucket, "prefix": prefix, "aws_conn_id": AWS_CONN_ID},
            )
            query = unload_query(step, task.sql or "", self.where(task))
            return [clear, self.athena(task, query)]
        if task.kind == "check":
            self.symbols.update({"PythonOperator", "AthenaHook", "AirflowFailException"})
            return [
                self.op(
                    "check",
                    task.id,
                    task.group,
                    {
                        "sql": check_query(step, task.sql),
                        "workgroup": self.stage.athena_workgroup,
                        "output_location": self.stage.athena_results_uri,
                        "execution_timeout": task.timeout,
                    },
                )
            ]
        if task.kind == "wait_for_s3":
            return [self.wait_for_s3(task)]
        if task.kind == "wait_for_partition":
            return [self.wait_for_partition(task)]
        assert job_flow_id is not None  # every EMR task has a cluster
        return self.emr_step(task, job_flow_id)

    def sensor_values(self, task: StageTask) -> dict[str, Any]:
        return {
            "timeout": parse_duration(task.step.timeout),
            "poke_interval": parse_duration(task.step.poke_interval),
            "execution_timeout": task.timeout,
            "aws_conn_id": AWS_CONN_ID,
        }

    def wait_for_s3(self, task: StageTask) -> Op:
        step = task.step
        self.symbols.add("S3KeySensor")
        uri = step.key if step.key is not None else step.prefix
        split_s3_uri(uri, f"{self.where(task)}: wait_for_s3")
        values = {"bucket_key": uri, "wildcard_match": False}
        if step.prefix is not None:
            # Any object under the folder counts; fnmatch's * also matches '/'.
            values = {"bucket_key": uri + "*", "wildcard_match": True}
        return self.op("s3_key_sensor", task.id, task.group, values | self.sensor_values(task))

    def wait_for_partition(self, task: StageTask) -> Op:
        step = task.step
        database, dot, table = step.table.partition(".")
        if not dot or not database or not table:
            raise ConfigError(
                f"{self.where(task)}: wait_for_partition.table '{step.table}' is not "
                "<database>.<table>"
            )
        self.symbols.add("GlueCatalogPartitionSensor")
        values = {"database_name": database, "table_name": table, "expression": step.expression}
        return self.op(
            "glue_partition_sensor", task.id, task.group, values | self.sensor_values(task)
        )

    def emr_step(self, task: StageTask, job_flow_id: str) -> list[Op]:
        self.symbols.update({"EmrAddStepsOperator", "EmrStepSensor"})
        submit = self.op(
            "emr_add_steps",
            task.id + SUBMIT_SUFFIX,
            task.group,
            {
                "job_flow_id": job_flow_id,
                "steps": [
                    {
                        "Name": f"{self.sp.dag_id}.{task.id}",
                        "ActionOnFailure": "CONTINUE",  # the DAG decides; the teardown terminates
                        "HadoopJarStep": {
                            "Jar": "command-runner.jar",
                            "Args": self.step_args(task),
                        },
                    }
                ],
                "aws_conn_id": AWS_CONN_ID,
            },
        )
        timeout = task.timeout or EMR_STEP_DEFAULT_TIMEOUT
        wait = self.op(
            "emr_step_sensor",
            task.id,
            task.group,
            {
                "job_flow_id": job_flow_id,
                "step_id": (
                    "{{ task_instance.xcom_pull(task_ids="
                    f"'{submit.full_id}', key='return_value')[0] }}}}"
                ),
                "poke_interval": timedelta(seconds=EMR_STEP_POKE_SECONDS),
                "timeout": timeout,
                # Deferred, the sensor polls max_attempts times; make that cover the timeout.
                "max_attempts": math.ceil(timeout.total_seconds() / EMR_STEP_POKE_SECONDS),
                "aws_conn_id": AWS_CONN_ID,
            },
        )
        return [submit, wait]

    def script_uri(self, task: StageTask) -> str:
        return f"s3://{self.stage.source_bucket}/{self.script_keys[task.id]}"

    def step_args(self, task: StageTask) -> list[str]:
        step = task.step
        if task.kind == "hive":
            args = ["hive-script", "--run-hive-script", "--args", "-f", self.script_uri(task)]
            for key, value in step.args.items():
                args += ["-d", f"{key}={value}"]
            return args
        if task.kind == "spark":
            args = ["spark-submit", "--deploy-mode", "cluster"]
            for key, value in step.conf.items():
                args += ["--conf", f"{key}={value}"]
            return [*args, self.script_uri(task), *step.args]
        # trino: the catalog lets SQL name tables as <database>.<table>, as on Athena
        return ["trino-cli", "--catalog", "hive", "--execute", task.sql or ""]


def _job_flow_overrides(sp: StagePipeline) -> dict[str, Any]:
    stage, cluster = sp.stage, sp.cluster
    assert cluster is not None
    managed_key, managed_value = EMR_MANAGED_POLICIES_TAG
    tags = {**stage.tags, "pipeline": sp.dag_id, managed_key: managed_value}
    return {
        # run_id exists in every run; an asset-triggered run on Airflow 3 has no ts_nodash.
        "Name": f"{stage.name}-{sp.dag_id}-{{{{ run_id }}}}",
        "ReleaseLabel": cluster.release_label,
        "Applications": [{"Name": name} for name in cluster.applications],
        "Instances": {
            "InstanceGroups": [
                {
                    "Name": "Primary",
                    "Market": "ON_DEMAND",
                    "InstanceRole": "MASTER",
                    "InstanceType": cluster.primary_instance_type,
                    "InstanceCount": 1,
                },
                {
                    "Name": "Core",
                    "Market": "ON_DEMAND",
                    "InstanceRole": "CORE",
                    "InstanceType": cluster.core_instance_type,
                    "InstanceCount": cluster.core_instance_count,
                },
            ],
            # Steps are added one task at a time; the teardown task ends the cluster.
            "KeepJobFlowAliveWhenNoSteps": True,
            "TerminationProtected": False,
            "Ec2SubnetId": f"{{{{ var.value.{EMR_SUBNET_VARIABLE} }}}}",
        },
        "JobFlowRole": stage.emr_instance_profile,
        "ServiceRole": stage.emr_service_role,
        "LogUri": stage.emr_log_uri,
        "VisibleToAllUsers": True,
        "AutoTerminationPolicy": {"IdleTimeout": cluster.idle_timeout_minutes * 60},
        "Tags": [{"Key": key, "Value": tags[key]} for key in sorted(tags)],
    }


def _ancestors(tasks: tuple[StageTask, ...]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for task in tasks:  # dependency order: every upstream is done first
        found[task.id] = set()
        for dep in task.depends_on:
            found[task.id] |= {dep, *found.get(dep, set())}
    return found


def build_view(sp: StagePipeline, source: str, script_keys: dict[str, str]) -> DagView:
    """The DAG of `sp` as data; `script_keys` maps EMR task ids to their scripts' S3 keys."""
    stage = sp.stage
    builder = _Builder(sp, source, script_keys)
    emr_tasks = [t for t in sp.tasks if t.kind in ("hive", "spark", "trino")]
    cluster_ops: list[Op] = []
    job_flow_id: str | None = None
    create: Op | None = None
    if emr_tasks and sp.cluster is not None and sp.cluster.existing_cluster_id is None:
        builder.symbols.update({"EmrCreateJobFlowOperator", "EmrTerminateJobFlowOperator"})
        create = builder.op(
            "emr_create",
            CREATE_CLUSTER,
            None,
            {"job_flow_overrides": _job_flow_overrides(sp), "aws_conn_id": AWS_CONN_ID},
        )
        cluster_ops.append(create)
        job_flow_id = (
            f"{{{{ task_instance.xcom_pull(task_ids='{CREATE_CLUSTER}', key='return_value') }}}}"
        )
    elif emr_tasks and sp.cluster is not None:
        job_flow_id = sp.cluster.existing_cluster_id

    per_task: dict[str, list[Op]] = {}
    for task in sp.tasks:
        ops = builder.task_ops(task, job_flow_id)
        per_task[task.id] = ops
        builder.first[task.id], builder.last[task.id] = ops[0], ops[-1]

    deps: list[tuple[tuple[str, ...], str]] = []
    if create is not None:
        # The cluster starts when the first EMR steps could start, not while sensors still wait.
        ancestors = _ancestors(sp.tasks)
        emr_ids = {t.id for t in emr_tasks}
        roots = [t for t in emr_tasks if not ancestors[t.id] & emr_ids]
        before = sorted({d for t in roots for d in t.depends_on}, key=_order(sp))
        if before:
            deps.append((tuple(builder.last[d].var for d in before), create.var))
    for task in sp.tasks:
        ops = per_task[task.id]
        upstream = [builder.last[d].var for d in task.depends_on]
        if create is not None and task.id in {t.id for t in emr_tasks}:
            upstream.insert(0, create.var)
        if upstream:
            deps.append((tuple(upstream), ops[0].var))
        deps.extend(((a.var,), b.var) for a, b in itertools.pairwise(ops))

    teardown: tuple[str, str] | None = None
    if create is not None:
        terminate = builder.op(
            "emr_terminate",
            TERMINATE_CLUSTER,
            None,
            {"job_flow_id": job_flow_id, "aws_conn_id": AWS_CONN_ID},
        )
        cluster_ops.append(terminate)
        deps.append((tuple(builder.last[t.id].var for t in emr_tasks), terminate.var))
        teardown = (terminate.var, create.var)

    produced = [dataset_for(stage, f"{sp.dag_id}.{name}") for name in sp.pipeline.produces]
    sinks = _sinks(sp)
    outlet_op: Op | None = None
    publish: Op | None = None
    if produced:
        if len(sinks) == 1:
            outlet_op = builder.last[sinks[0]]
        else:
            builder.symbols.add("EmptyOperator")
            publish = builder.op("publish", PUBLISH, None, {})
            deps.append((tuple(builder.last[s].var for s in sinks), publish.var))
            outlet_op = publish

    _check_unique_ids(sp, per_task, cluster_ops, publish, source)
    blocks = _blocks(sp, per_task, cluster_ops, publish)
    if outlet_op is not None:
        builder.symbols.add("Dataset")
        blocks = tuple(
            Block(b.group, tuple(_with_outlets(op, outlet_op, produced) for op in b.ops))
            for b in blocks
        )
    if any(b.group for b in blocks):
        builder.symbols.add("TaskGroup")
    schedule = _schedule(sp)
    if schedule["kind"] == "datasets":
        builder.symbols.add("Dataset")
    notifiers = _notifiers(sp)
    builder.symbols.update(n["class"] for n in notifiers)
    return DagView(
        airflow_major=stage.airflow.major,
        dag={
            "dag_id": sp.dag_id,
            "description": sp.pipeline.description,
            "doc_md": _doc_md(sp, source),
            "schedule": schedule,
            "start_date": sp.pipeline.start_date.isoformat(),
            "start": (
                sp.pipeline.start_date.year,
                sp.pipeline.start_date.month,
                sp.pipeline.start_date.day,
            ),
            "timezone": sp.pipeline.timezone,
            "catchup": sp.pipeline.catchup,
            "max_active_runs": sp.pipeline.max_active_runs,
            # A cutover's green environment gets every DAG paused (`mwaa_elt.stage.green`).
            "paused": sp.paused or paused_on_creation(stage),
            "tags": list(dict.fromkeys([*sp.tags, stage.name])),
        },
        default_args=_default_args(sp),
        notifiers=tuple(notifiers),
        blocks=blocks,
        deps=tuple(deps),
        teardown=teardown,
        symbols=tuple(sorted(builder.symbols | {"DAG"})),
        uses_check="PythonOperator" in builder.symbols,
    )


def _order(sp: StagePipeline) -> Any:
    index = {t.id: i for i, t in enumerate(sp.tasks)}
    return index.__getitem__


def _sinks(sp: StagePipeline) -> list[str]:
    upstream = {d for t in sp.tasks for d in t.depends_on}
    return [t.id for t in sp.tasks if t.id not in upstream]


def _with_outlets(op: Op, target: Op, produced: list[Dataset]) -> Op:
    if op is not target:
        return op
    return Op(op.macro, op.var, op.task_id, op.full_id, op.values | {"outlets": produced})


def _blocks(
    sp: StagePipeline,
    per_task: dict[str, list[Op]],
    cluster_ops: list[Op],
    publish: Op | None,
) -> tuple[Block, ...]:
    """Tasks in dependency order; a group's tasks are written together where its first task is."""
    blocks: list[Block] = []
    if cluster_ops:
        blocks.append(Block(None, (cluster_ops[0],)))
    seen: set[str] = set()
    for task in sp.tasks:
        if task.group is None:
            blocks.append(Block(None, tuple(per_task[task.id])))
        elif task.group not in seen:
            seen.add(task.group)
            members = [t for t in sp.tasks if t.group == task.group]
            blocks.append(Block(task.group, tuple(op for t in members for op in per_task[t.id])))
    if len(cluster_ops) > 1:
        blocks.append(Block(None, (cluster_ops[1],)))
    if publish is not None:
        blocks.append(Block(None, (publish,)))
    return tuple(blocks)


def _check_unique_ids(
    sp: StagePipeline,
    per_task: dict[str, list[Op]],
    cluster_ops: list[Op],
    publish: Op | None,
    source: str,
) -> None:
    """Airflow rejects two tasks (or a task and a group) with one id; say which spec ids clash."""
    owners: dict[str, list[str]] = {}
    for task in sp.tasks:
        for op in per_task[task.id]:
            owners.setdefault(op.full_id, []).append(f"task '{task.id}'")
    for op in [*cluster_ops, *([publish] if publish else [])]:
        owners.setdefault(op.full_id, []).append("the generated task")
    for group in {t.group for t in sp.tasks if t.group}:
        owners.setdefault(group, []).append(f"group '{group}'")
    clashes = [
        f"{source}: Airflow task id '{task_id}' would come from both {' and '.join(who)}; "
        "rename one of them"
        for task_id, who in sorted(owners.items())
        if len(who) > 1
    ]
    if clashes:
        raise ConfigError(clashes)


def _schedule(sp: StagePipeline) -> dict[str, Any]:
    if sp.schedule is None:
        return {"kind": "none"}
    if isinstance(sp.schedule, str):
        return {"kind": "cron", "value": sp.schedule}
    return {"kind": "datasets", "datasets": [dataset_for(sp.stage, r) for r in sp.schedule.after]}


def _default_args(sp: StagePipeline) -> dict[str, Any]:
    args: dict[str, Any] = {
        "owner": sp.pipeline.owner,
        "retries": sp.retries,
        "retry_delay": sp.retry_delay,
    }
    emails = _emails(sp)
    # Airflow 3 deprecates e-mail settings on tasks for the SMTP notifier (see _notifiers).
    if emails and sp.stage.airflow.major == 2:
        args |= {"email": emails, "email_on_failure": True, "email_on_retry": False}
    return args


def _emails(sp: StagePipeline) -> list[str]:
    """The spec's alert addresses, if the stage has an SMTP connection to send them with."""
    if sp.on_failure is None or sp.stage.config.smtp_connection is None:
        return []
    return list(sp.on_failure.email)


def _alert_topic(sp: StagePipeline) -> str | None:
    """The topic of failure alerts: the spec's, else the stage's first (which Pulumi creates)."""
    if sp.on_failure is not None and sp.on_failure.sns_topic is not None:
        return sp.on_failure.sns_topic
    topics = sp.stage.config.alert_topics
    return topics[0] if topics else None


def _notifiers(sp: StagePipeline) -> list[dict[str, Any]]:
    """The on_failure_callback notifiers: SNS to the stage's topic, and SMTP on Airflow 3.

    SNS is the default, because the stack provisions the topics; e-mail is sent only where the
    stage names an SMTP connection (`smtpConnection`), since nothing else provisions one.
    """
    stage = sp.stage
    notifiers: list[dict[str, Any]] = []
    topic = _alert_topic(sp)
    if topic is not None:
        arn = stage.sns_topic_arn(topic)
        notifiers.append(
            {
                "class": "SnsNotifier",
                "args": {
                    "aws_conn_id": AWS_CONN_ID,
                    "region_name": stage.region,
                    "target_arn": arn,
                    # SNS subjects stop at 100 characters: a stage name and a dag_id (<= 64) fit.
                    "subject": f"[{stage.name}] Airflow task failed in {{{{ dag.dag_id }}}}",
                    "message": (
                        "Task {{ ti.task_id }} of DAG {{ dag.dag_id }} failed in run {{ run_id }} "
                        "(try {{ ti.try_number }}).\nLog: {{ ti.log_url }}"
                    ),
                },
            }
        )
    emails = _emails(sp)
    if emails and stage.airflow.major >= 3:
        notifiers.append(
            {
                "class": "SmtpNotifier",
                "args": {"to": emails, "smtp_conn_id": stage.config.smtp_connection},
            }
        )
    return notifiers


def _doc_md(sp: StagePipeline, source: str) -> str:
    # Ends with a fixed line, so Airflow never takes a description ending in .md for a file.
    return (
        f"{sp.pipeline.description}\n\n"
        f"Generated by mwaa-elt from `{source}` for stage `{sp.stage.name}`; edit the spec, "
        "not this file."
    )
