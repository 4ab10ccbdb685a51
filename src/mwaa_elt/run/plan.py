"""A local run as a plan: what the sandbox is seeded with, then which DAGs run, in order.

`plan_run` has no side effects: from the stage model, the rendered files and the pipelines'
samples it lists typed steps (the buckets, workgroup, Glue databases, roles, topics, secrets and
objects a provisioned stage has, then the DAG runs). `explain` prints it; `execute.run_plan`
executes it against a fresh sandbox.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import PurePosixPath

from mwaa_elt.errors import ConfigError
from mwaa_elt.render.result import SCRIPTS_DIR, RenderResult
from mwaa_elt.spec.model import Pipeline, ScheduleAfter
from mwaa_elt.spec.resolve import resolve_pipeline
from mwaa_elt.stage import EMR_SUBNET_VARIABLE, Stage

SAMPLES_DIR = "samples"
# samples/<root>/<key>: where each root lands in the stage's data lake bucket.
SAMPLE_ROOTS = {
    "lake": "the data lake bucket's root, as {{ lake.bucket_uri }} (e.g. landing/...)",
    "stage": "the stage's own prefix of the data lake, as {{ lake.uri }}",
}


@dataclass(frozen=True)
class CreateBucket:
    """Create a bucket the stack provisions (versioned, as Pulumi creates it)."""

    bucket: str


@dataclass(frozen=True)
class PutObject:
    """Upload a file: a pipeline's sample data or an EMR script, at its S3 key."""

    bucket: str
    key: str
    data: bytes
    origin: str  # where it comes from, for the explainer: a sample path or a rendered script

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class CreateWorkgroup:
    """Create the stage's Athena workgroup with its query results location."""

    name: str
    output_location: str


@dataclass(frozen=True)
class CreateDatabase:
    """Create a Glue database of the stage at its data lake location."""

    name: str
    location: str


@dataclass(frozen=True)
class CreateRole:
    """Create an IAM role (and its instance profile) that EMR clusters are launched with."""

    name: str
    service: str
    instance_profile: str | None = None


@dataclass(frozen=True)
class CreateTopic:
    """Create an SNS topic the generated DAGs send failure alerts to."""

    name: str


@dataclass(frozen=True)
class CreateSubnet:
    """Create the private subnet EMR clusters launch into, and its Airflow variable's secret."""

    cidr: str
    secret_name: str


@dataclass(frozen=True)
class RunDag:
    """Run one rendered DAG with Airflow's test runner; upstream DAGs feed the one asked for."""

    dag_id: str
    dag_path: str  # relative to the render's output folder
    upstream: bool


SeedStep = (
    CreateBucket
    | PutObject
    | CreateWorkgroup
    | CreateDatabase
    | CreateRole
    | CreateTopic
    | CreateSubnet
)


@dataclass(frozen=True)
class RunPlan:
    """Everything one local run does, in order: seed the sandbox, then run the DAGs."""

    stage: Stage
    logical_date: date
    seed: tuple[SeedStep, ...]
    dags: tuple[RunDag, ...]
    files: Mapping[str, bytes]  # the render: DAG files and scripts by relative path


def run_order(pipelines: Mapping[str, Pipeline], stage: Stage, name: str) -> list[str]:
    """`name` after the pipelines whose datasets schedule it, transitively, producers first."""
    if name not in pipelines:
        known = ", ".join(sorted(pipelines)) or "none"
        raise ConfigError(f"no pipeline named {name}; known: {known}")
    order: list[str] = []
    visiting: set[str] = set()

    def visit(current: str) -> None:
        if current in order or current in visiting:
            return  # validation rejects dataset cycles; a repeat is already placed
        visiting.add(current)
        schedule = resolve_pipeline(pipelines[current], stage).schedule
        if isinstance(schedule, ScheduleAfter):
            for ref in schedule.after:
                producer = ref.split(".", 1)[0]
                if producer in pipelines and producer != current:
                    visit(producer)
        visiting.discard(current)
        order.append(current)

    visit(name)
    return order


def sample_objects(pipeline: Pipeline, stage: Stage) -> list[PutObject]:
    """The pipeline's sample files as uploads: samples/lake/<key>, samples/stage/<key>."""
    folder = pipeline.source_dir / SAMPLES_DIR
    if not folder.is_dir():
        return []
    uploads: list[PutObject] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = PurePosixPath(path.relative_to(folder).as_posix())
        root, *rest = relative.parts
        if root not in SAMPLE_ROOTS or not rest:
            expected = ", ".join(f"{SAMPLES_DIR}/{r}/..." for r in SAMPLE_ROOTS)
            raise ConfigError(
                f"{path}: a sample file outside the known roots; expected {expected} "
                f"(see docs/pipelines.md, 'Run a pipeline locally'); move the file there"
            )
        key = "/".join(rest)
        if root == "stage":
            key = f"{stage.data_lake_write_prefixes[0]}{key}"
        uploads.append(
            PutObject(
                bucket=stage.data_lake_bucket,
                key=key,
                data=path.read_bytes(),
                origin=f"{pipeline.pipeline}/{SAMPLES_DIR}/{relative}",
            )
        )
    return uploads


def _script_objects(render: RenderResult, stage: Stage, names: Sequence[str]) -> list[PutObject]:
    """The EMR scripts of the pipelines run, at the keys their DAGs point to (as promotion does)."""
    uploads = []
    for name in names:
        for path in render.pipelines[name].script_paths:
            key = stage.scripts_prefix + PurePosixPath(path).relative_to(SCRIPTS_DIR).as_posix()
            uploads.append(PutObject(stage.source_bucket, key, render.files[path], path))
    return uploads


def plan_run(
    pipelines: Mapping[str, Pipeline],
    stage: Stage,
    render: RenderResult,
    name: str,
    logical_date: date,
) -> RunPlan:
    """The seeding and DAG runs for running `name` (after its upstream pipelines) in `stage`.

    Pure: reads the samples' files, changes nothing. `render` must hold every pipeline run.
    """
    order = run_order(pipelines, stage, name)
    missing = [n for n in order if n not in render.pipelines]
    if missing:
        raise ConfigError(f"the render for {stage.name} lacks {', '.join(missing)}; render them")
    seed: list[SeedStep] = [CreateBucket(stage.source_bucket)]
    if stage.data_lake_bucket != stage.source_bucket:
        seed.append(CreateBucket(stage.data_lake_bucket))
    seed.append(CreateWorkgroup(stage.athena_workgroup, stage.athena_results_uri))
    locations = stage.glue_database_locations
    seed += [
        CreateDatabase(real, locations[logical]) for logical, real in stage.glue_databases.items()
    ]
    seed += [
        CreateRole(stage.emr_service_role, "elasticmapreduce.amazonaws.com"),
        CreateRole(stage.emr_instance_role, "ec2.amazonaws.com", stage.emr_instance_profile),
    ]
    seed += [CreateTopic(stage.sns_topic_name(topic)) for topic in stage.config.alert_topics]
    seed.append(CreateSubnet("10.0.0.0/24", stage.secrets_variable_name(EMR_SUBNET_VARIABLE)))
    seed += _script_objects(render, stage, order)
    uploads: dict[str, PutObject] = {}
    for pipeline_name in order:
        for upload in sample_objects(pipelines[pipeline_name], stage):
            uploads.setdefault(upload.uri, upload)  # pipelines may share a landing folder
    seed += [uploads[uri] for uri in sorted(uploads)]
    dags = tuple(RunDag(n, render.pipelines[n].dag_path, upstream=n != name) for n in order)
    return RunPlan(stage, logical_date, tuple(seed), dags, render.files)


def explain(plan: RunPlan) -> list[str]:
    """One line per step, for people."""
    lines = []
    for step in plan.seed:
        match step:
            case CreateBucket(bucket=bucket):
                lines.append(f"create bucket s3://{bucket}")
            case PutObject(origin=origin):
                lines.append(f"upload {origin} to {step.uri}")
            case CreateWorkgroup(name=name, output_location=output):
                lines.append(f"create Athena workgroup {name} (results in {output})")
            case CreateDatabase(name=name, location=location):
                lines.append(f"create Glue database {name} at {location}")
            case CreateRole(name=name, instance_profile=profile):
                extra = f" with instance profile {profile}" if profile else ""
                lines.append(f"create IAM role {name}{extra}")
            case CreateTopic(name=name):
                lines.append(f"create SNS topic {name}")
            case CreateSubnet(secret_name=secret):
                lines.append(f"create the EMR subnet and its Airflow variable {secret}")
    for run in plan.dags:
        role = "upstream, " if run.upstream else ""
        lines.append(f"run DAG {run.dag_id} ({role}logical date {plan.logical_date.isoformat()})")
    return lines
