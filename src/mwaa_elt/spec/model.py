"""The pipeline spec as pydantic models: what an analyst may write in `pipelines/<name>.yaml`.

Field-level rules live here; rules that need the file system, the stages or the other specs
(paths, stage variables, SQL, the task graph) live in `validate.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from mwaa_elt.spec.values import (
    DURATION,
    IDENTIFIER,
    SQL_NAME,
    check_cron,
    check_date,
    check_duration,
    check_timezone,
    scalar_text,
)

TASK_KINDS = (
    "athena",
    "unload",
    "wait_for_s3",
    "wait_for_partition",
    "check",
    "hive",
    "spark",
    "trino",
)
EMR_KINDS = ("hive", "spark", "trino")
EmrApplication = Literal["Hadoop", "Hive", "Spark", "Trino", "Presto", "Tez", "Livy"]

Identifier = Annotated[
    str,
    Field(
        pattern=IDENTIFIER,
        description="1-64 lower-case letters, digits and '_', starting with a letter.",
    ),
]
SqlName = Annotated[
    str,
    Field(pattern=SQL_NAME, description="A column name: letters, digits and '_'."),
]
Duration = Annotated[
    str,
    BeforeValidator(check_duration),
    Field(
        pattern=DURATION,
        min_length=2,
        description="A duration: a number and a unit (30s, 5m, 1h, 1d) or a combination (1h30m).",
    ),
]
RelativePath = Annotated[
    str,
    Field(
        min_length=1,
        description="A path relative to the spec's folder, e.g. sql/create_movies.sql; "
        "it may not leave that folder.",
    ),
]
# Unquoted numbers and booleans are accepted and passed on as their text.
ScalarText = Annotated[
    str,
    BeforeValidator(scalar_text),
    WithJsonSchema({"type": ["string", "number", "boolean"]}),
]
DatasetRef = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_]{0,63}\.[a-z][a-z0-9_]{0,63}$",
        description="<pipeline>.<dataset>: a dataset another pipeline lists under `produces`.",
    ),
]


class _Spec(BaseModel):
    # Strict: YAML already typed every value, so `retries: "2"` or `tags: [2024]` is a mistake
    # worth reporting rather than coercing.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# -- schedule ----------------------------------------------------------------------------------


class ScheduleAfter(_Spec):
    """Run when other pipelines have produced datasets (Airflow Datasets / Assets)."""

    after: list[DatasetRef] = Field(
        min_length=1,
        description="Datasets as <pipeline>.<dataset>; the pipeline runs once all of them "
        "were updated since its last run.",
    )


def _schedule_kind(value: Any) -> str:
    return "after" if isinstance(value, dict | ScheduleAfter) else "cron"


def _none_word(value: Any) -> Any:
    return None if isinstance(value, str) and value.strip().lower() == "none" else value


Cron = Annotated[
    str,
    AfterValidator(check_cron),
    Field(description="A cron expression ('0 6 * * *') or a preset (@daily, @hourly, ...)."),
]
ScheduleField = Annotated[
    Annotated[
        Annotated[Cron, Tag("cron")] | Annotated[ScheduleAfter, Tag("after")],
        Discriminator(_schedule_kind),
    ]
    | None,
    BeforeValidator(_none_word),
]


# -- alerts and cluster ------------------------------------------------------------------------


def _literal_address(value: str) -> str:
    # Airflow 3's SMTP notifier renders its addresses as a template: '{{' would be replaced and
    # '{%' would make the failure alert itself fail, so an address must be plain text.
    tag = next((t for t in ("{{", "{%", "{#") if t in value), None)
    if tag is not None:
        raise ValueError(
            f"{value!r} contains '{tag}'; Airflow renders alert addresses as templates, so it "
            "would not be sent as written: write the address as plain text"
        )
    return value


EmailAddress = Annotated[
    str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"), AfterValidator(_literal_address)
]


class OnFailure(_Spec):
    """Who hears about a failed task."""

    email: list[EmailAddress] = Field(
        default_factory=list, description="Addresses that get an email when a task fails."
    )
    sns_topic: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{1,256}$",
        description="Name (not ARN) of an SNS topic in the stage's account to notify; "
        "the ARN is derived from the stage.",
    )

    @model_validator(mode="after")
    def _someone(self) -> OnFailure:
        if not self.email and self.sns_topic is None:
            raise ValueError("names nobody; give email: [...] and/or sns_topic: <name>")
        return self


class Cluster(_Spec):
    """The EMR cluster the hive, spark and trino tasks run on; unset fields take stage defaults."""

    release_label: str | None = Field(
        default=None, pattern=r"^emr-\d+\.\d+\.\d+$", description="EMR release, e.g. emr-7.5.0."
    )
    applications: list[EmrApplication] | None = Field(
        default=None,
        description="EMR applications to install; trino tasks need Trino, hive tasks Hive, "
        "spark tasks Spark.",
    )
    primary_instance_type: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$",
        description="EC2 instance type of the primary node, e.g. m5.xlarge.",
    )
    core_instance_type: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$",
        description="EC2 instance type of the core nodes, e.g. m5.xlarge.",
    )
    core_instance_count: int | None = Field(
        default=None, ge=1, le=50, description="Number of core nodes (1-50)."
    )
    idle_timeout_minutes: int | None = Field(
        default=None,
        ge=5,
        le=1440,
        description="Minutes an idle transient cluster lives before EMR terminates it.",
    )
    existing_cluster_id: str | None = Field(
        default=None,
        pattern=r"^j-[A-Z0-9]+$",
        description="Run the steps on this running cluster (j-XXXX) instead of launching a "
        "transient one; the other cluster fields must then be unset.",
    )

    @model_validator(mode="after")
    def _existing_alone(self) -> Cluster:
        if self.existing_cluster_id is not None:
            others = sorted(self.model_fields_set - {"existing_cluster_id"})
            if others:
                raise ValueError(
                    f"existing_cluster_id targets a running cluster, so {', '.join(others)} "
                    "cannot apply; remove them or remove existing_cluster_id"
                )
        return self


# -- tasks -------------------------------------------------------------------------------------


class _SqlSource(_Spec):
    sql: str | None = Field(
        default=None,
        min_length=1,
        description="The SQL, inline (for one-liners); or use sql_file.",
    )
    sql_file: RelativePath | None = Field(
        default=None, description="A .sql file relative to the spec's folder; or use sql."
    )
    skip_sql_checks: str | None = Field(
        default=None,
        min_length=10,
        description="Why this task's SQL cannot be analysed (valid Athena SQL beyond the "
        "parser): its statements are then neither parsed nor checked against the catalog. "
        "validate warns about it and promotion records it in the stage's manifest.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> _SqlSource:
        if (self.sql is None) == (self.sql_file is None):
            given = "both" if self.sql is not None else "neither"
            raise ValueError(f"gives {given} of sql and sql_file; give exactly one")
        return self


class AthenaStep(_SqlSource):
    """Run one SQL statement in the stage's Athena workgroup."""


def _no_header(value: bool) -> bool:
    if value:
        raise ValueError(
            "header: true cannot be honoured: Athena UNLOAD writes no header line; remove "
            "header (or export with a CTAS table, whose readers know the columns)"
        )
    return value


class UnloadStep(_SqlSource):
    """Export a SELECT's result to S3: clears `to`, then Athena UNLOAD; re-runs are safe."""

    to: str = Field(
        min_length=1,
        description="Destination folder, inside the stage's own prefix: start with "
        "{{ lake.uri }} and end with '/'.",
    )
    format: Literal["csv", "parquet"] = Field(default="csv", description="csv or parquet.")
    header: Annotated[
        bool,
        AfterValidator(_no_header),
        WithJsonSchema({"type": "boolean", "const": False}),
    ] = Field(
        default=False,
        description="Must be false: Athena UNLOAD writes no header line (export with a CTAS "
        "table for one).",
    )
    delimiter: str = Field(
        default=",", min_length=1, max_length=1, description="csv only: the field delimiter."
    )
    compression: Literal["none", "gzip", "snappy", "zstd"] | None = Field(
        default=None,
        description="csv: none or gzip (default none); parquet: snappy, gzip, zstd or none "
        "(default snappy).",
    )

    @model_validator(mode="after")
    def _format_options(self) -> UnloadStep:
        if self.format == "parquet":
            set_ = self.model_fields_set
            if "header" in set_ or "delimiter" in set_:
                raise ValueError("header and delimiter apply to csv only; remove them for parquet")
        elif self.compression in {"snappy", "zstd"}:
            raise ValueError(
                f"compression {self.compression} is for parquet; csv allows none, gzip"
            )
        return self


class _Wait(_Spec):
    timeout: Duration = Field(default="6h", description="Give up after this long (default 6h).")
    poke_interval: Duration = Field(default="5m", description="Check this often (default 5m).")


class WaitForS3Step(_Wait):
    """Wait until an S3 object (`key`) or any object under a prefix (`prefix`) exists."""

    key: str | None = Field(
        default=None, description="Full s3:// URI of the object, e.g. {{ lake.bucket_uri }}..."
    )
    prefix: str | None = Field(
        default=None, description="Full s3:// URI of a folder ending in '/'; any object counts."
    )

    @model_validator(mode="after")
    def _one_target(self) -> WaitForS3Step:
        if (self.key is None) == (self.prefix is None):
            given = "both" if self.key is not None else "neither"
            raise ValueError(f"gives {given} of key and prefix; give exactly one")
        return self


class WaitForPartitionStep(_Wait):
    """Wait until a Glue table has a partition matching `expression`."""

    table: str = Field(
        min_length=1, description="<database>.<table>, e.g. {{ db.movielens }}.ratings."
    )
    expression: str = Field(min_length=1, description="Partition filter, e.g. ds='{{ ds }}'.")


class CheckStep(_SqlSource):
    """A data-quality check that fails the task when the data is wrong.

    Either `table` with `row_count_min` and/or `not_null`, or `sql` / `sql_file` with a query
    returning one boolean (true = pass).
    """

    table: str | None = Field(
        default=None, description="<database>.<table> to check, e.g. {{ db.analytics }}.scifi."
    )
    where: str | None = Field(
        default=None, description="Optional filter on the table, e.g. ds = '{{ ds }}'."
    )
    row_count_min: int | None = Field(
        default=None, ge=0, description="Fail when the table has fewer rows than this."
    )
    not_null: list[SqlName] | None = Field(
        default=None, min_length=1, description="Fail when any of these columns holds a NULL."
    )

    @model_validator(mode="after")
    def _one_source(self) -> CheckStep:
        has_sql = self.sql is not None or self.sql_file is not None
        if has_sql:
            if self.sql is not None and self.sql_file is not None:
                raise ValueError("gives both sql and sql_file; give exactly one")
            extra = [
                k
                for k in ("table", "where", "row_count_min", "not_null")
                if k in self.model_fields_set
            ]
            if extra:
                raise ValueError(
                    f"a sql check returns its own boolean; remove {', '.join(extra)} "
                    "(or drop sql and check a table)"
                )
            return self
        if self.table is None:
            raise ValueError(
                "checks nothing; give table with row_count_min and/or not_null, or sql "
                "returning one boolean"
            )
        if self.row_count_min is None and self.not_null is None:
            raise ValueError("names a table but no assertion; add row_count_min and/or not_null")
        return self


class HiveStep(_Spec):
    """Run a Hive script as an EMR step (`hive -f script -d key=value`)."""

    script: RelativePath = Field(description="A .hql/.sql file relative to the spec's folder.")
    args: dict[Identifier, ScalarText] = Field(
        default_factory=dict, description="Hive variables, passed as -d key=value."
    )


class SparkStep(_Spec):
    """Run a PySpark script as an EMR step (spark-submit)."""

    script: RelativePath = Field(description="A .py file relative to the spec's folder.")
    args: list[ScalarText] = Field(
        default_factory=list, description="Arguments after the script, e.g. ['--ds', '{{ ds }}']."
    )
    conf: dict[Annotated[str, Field(pattern=r"^spark\.[A-Za-z0-9_.-]+$")], ScalarText] = Field(
        default_factory=dict,
        description="spark-submit --conf settings, e.g. spark.executor.memory: 4g.",
    )


class TrinoStep(_SqlSource):
    """Run SQL with trino-cli on the EMR cluster (needs Trino in cluster.applications)."""


class Task(_Spec):
    """One task of the DAG: an `id` and exactly one kind key (athena, unload, hive, ...)."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": [kind]} for kind in TASK_KINDS]}
    )

    id: Identifier = Field(description="Task id, unique in the pipeline.")
    depends_on: list[Identifier] = Field(
        default_factory=list, description="Ids of tasks that must succeed before this one."
    )
    group: Identifier | None = Field(
        default=None, description="Show the task inside this task group in the Airflow UI."
    )
    timeout: Duration | None = Field(
        default=None, description="Fail the task when it runs longer than this."
    )
    athena: AthenaStep | None = Field(default=None, description=AthenaStep.__doc__)
    unload: UnloadStep | None = Field(default=None, description=UnloadStep.__doc__)
    wait_for_s3: WaitForS3Step | None = Field(default=None, description=WaitForS3Step.__doc__)
    wait_for_partition: WaitForPartitionStep | None = Field(
        default=None, description=WaitForPartitionStep.__doc__
    )
    check: CheckStep | None = Field(default=None, description=(CheckStep.__doc__ or "").strip())
    hive: HiveStep | None = Field(default=None, description=HiveStep.__doc__)
    spark: SparkStep | None = Field(default=None, description=SparkStep.__doc__)
    trino: TrinoStep | None = Field(default=None, description=TrinoStep.__doc__)

    @model_validator(mode="after")
    def _one_kind(self) -> Task:
        kinds = [k for k in TASK_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            what = "no kind" if not kinds else f"{len(kinds)} kinds ({', '.join(kinds)})"
            raise ValueError(
                f"task '{self.id}' has {what}; give exactly one of: {', '.join(TASK_KINDS)}"
            )
        return self

    @property
    def kind(self) -> str:
        """The task's kind key, e.g. 'athena'."""
        return next(k for k in TASK_KINDS if getattr(self, k) is not None)

    @property
    def step(self) -> _Spec:
        """The kind's settings, e.g. the AthenaStep."""
        return getattr(self, self.kind)

    @property
    def on_emr(self) -> bool:
        return self.kind in EMR_KINDS


# -- the pipeline ------------------------------------------------------------------------------


class Source(_Spec):
    """A table that exists outside the platform (loaded by another system) and that this
    pipeline reads; with its columns when known, so queries are checked against them."""

    table: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,63}\.[a-z_][a-z0-9_]{0,127}$",
        description="<database>.<table> with the database's logical name (as in "
        "glueDatabases, e.g. movielens.ratings); SQL reads it as {{ db.movielens }}.ratings.",
    )
    columns: list[SqlName] | None = Field(
        default=None, min_length=1, description="Its columns, when known (lower case)."
    )
    description: str | None = Field(default=None, description="What the table holds.")


class StageOverride(_Spec):
    """Settings that differ in one stage; each replaces the pipeline's (cluster: per field)."""

    schedule: ScheduleField = Field(
        default=None, description="Schedule in this stage; null runs only when triggered."
    )
    paused: bool | None = Field(default=None, description="Create the DAG paused in this stage.")
    cluster: Cluster | None = Field(
        default=None, description="Cluster fields that differ in this stage."
    )
    retries: int | None = Field(default=None, ge=1, le=10, description="Retries in this stage.")
    on_failure: OnFailure | None = Field(default=None, description="Alerts in this stage.")
    tags: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(
        default=None, description="Tags in this stage (replace the pipeline's tags)."
    )


def _not_airflow(value: str) -> str:
    if value == "airflow":
        raise ValueError(
            "'airflow' is Airflow's placeholder owner; name the team that answers for "
            "this pipeline, e.g. analytics"
        )
    return value


class Pipeline(_Spec):
    """An ELT pipeline: one Airflow DAG per stage, built from this spec."""

    model_config = ConfigDict(
        title="mwaa-elt pipeline",
        json_schema_extra={"$id": "https://mwaa-elt.dev/schema/pipeline.schema.json"},
    )

    pipeline: Identifier = Field(description="The DAG id; the spec file must be <pipeline>.yaml.")
    description: str = Field(
        min_length=1, description="What the pipeline does; shown as the DAG's documentation."
    )
    owner: Annotated[str, AfterValidator(_not_airflow)] = Field(
        pattern=r"^[a-z][a-z0-9_.-]{0,63}$",
        description="The team that answers for this pipeline (not 'airflow').",
    )
    tags: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, description="Tags shown in the Airflow UI."
    )
    schedule: ScheduleField = Field(
        default=None,
        description="When to run: a cron expression, a preset (@daily, @hourly, @weekly, "
        "@monthly, @yearly, @once), null (only when triggered), or "
        "{after: [<pipeline>.<dataset>, ...]}.",
    )
    start_date: Annotated[date, BeforeValidator(check_date)] = Field(
        description="First date the schedule covers, YYYY-MM-DD."
    )
    timezone: Annotated[str, AfterValidator(check_timezone)] = Field(
        default="UTC",
        description="IANA time zone of start_date and of cron schedules, e.g. Europe/Paris "
        "(default UTC).",
    )
    catchup: bool = Field(default=False, description="Run the missed intervals since start_date.")
    paused: bool = Field(default=False, description="Create the DAG paused.")
    retries: int = Field(default=2, ge=1, le=10, description="Retries of a failed task (1-10).")
    retry_delay: Duration = Field(default="5m", description="Wait between retries (default 5m).")
    max_active_runs: int = Field(
        default=1, ge=1, le=16, description="Runs of this DAG at the same time."
    )
    on_failure: OnFailure | None = Field(
        default=None, description="Who is alerted when a task fails."
    )
    produces: list[Identifier] = Field(
        default_factory=list,
        description="Datasets this pipeline updates when it succeeds; other pipelines schedule "
        "on them as {after: [<pipeline>.<dataset>]}.",
    )
    sources: list[Source] = Field(
        default_factory=list,
        description="Tables this pipeline reads that no pipeline creates (they exist outside "
        "the platform); every table a query reads must be created by a task, by another "
        "pipeline, or be declared here.",
    )
    cluster: Cluster | None = Field(
        default=None,
        description="EMR cluster for hive, spark and trino tasks; every field defaults to the "
        "stage's EMR settings.",
    )
    stages: dict[str, StageOverride] = Field(
        default_factory=dict, description="Per-stage overrides, keyed by stage name (dev, prod)."
    )
    tasks: list[Task] = Field(min_length=1, description="The tasks of the DAG.")

    _source: Path | None = PrivateAttr(default=None)

    @field_validator("produces")
    @classmethod
    def _unique_datasets(cls, value: list[str]) -> list[str]:
        twice = sorted({v for v in value if value.count(v) > 1})
        if twice:
            raise ValueError(f"lists {', '.join(twice)} twice")
        return value

    @property
    def source(self) -> Path | None:
        """The spec file this pipeline was loaded from."""
        return self._source

    @property
    def source_dir(self) -> Path:
        """The folder that task paths (sql_file, script) are relative to."""
        return self._source.parent if self._source is not None else Path(".")

    @property
    def uses_emr(self) -> bool:
        return any(task.on_emr for task in self.tasks)

    def task(self, task_id: str) -> Task:
        """The task with id `task_id`; KeyError when there is none."""
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise KeyError(task_id)

    def task_order(self) -> list[Task]:
        """Tasks in a dependency order (stable: file order among ready tasks)."""
        done: set[str] = set()
        order: list[Task] = []
        pending = list(self.tasks)
        while pending:
            ready = [t for t in pending if all(d in done for d in t.depends_on)]
            if not ready:  # a cycle; validation reports it, keep the rest in file order
                ready = pending[:1]
            for task in ready:
                order.append(task)
                done.add(task.id)
            pending = [t for t in pending if t.id not in done]
        return order


def stage_clusters(
    data: Mapping[str, Any],
    stage_names: Iterable[str],
    fields: Callable[[Any], dict[str, Any] | None],
) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """For each stage of a spec as written: its raw `stages.<name>.cluster` and the cluster it
    runs on, the spec's `cluster` with that override merged over it. `fields` reads a raw
    cluster mapping (None when it cannot be read: that stage, or all for the base, is skipped)."""
    base = fields(data.get("cluster"))
    if base is None:
        return
    overrides = data.get("stages") if isinstance(data.get("stages"), dict) else {}
    for name in stage_names:
        override = overrides.get(name)
        raw = override.get("cluster") if isinstance(override, dict) else None
        extra = fields(raw)
        if extra is not None:
            yield name, raw, {**base, **extra}
