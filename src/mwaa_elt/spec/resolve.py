"""A validated pipeline as one stage runs it: overrides applied, stage variables resolved.

This is what a renderer consumes; run-time Jinja (`{{ ds }}`, `{% if %}`) is still in place
for Airflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from mwaa_elt.spec.model import OnFailure, Pipeline, ScheduleAfter, Task
from mwaa_elt.spec.stage_vars import resolve_stage_vars
from mwaa_elt.spec.values import parse_duration
from mwaa_elt.stage import Stage


@dataclass(frozen=True)
class StageCluster:
    """The EMR cluster of a pipeline in one stage, every field filled from the stage defaults."""

    release_label: str
    applications: tuple[str, ...]
    primary_instance_type: str
    core_instance_type: str
    core_instance_count: int
    idle_timeout_minutes: int
    existing_cluster_id: str | None


@dataclass(frozen=True)
class StageTask:
    """One task in one stage: its step with stage variables resolved, and its SQL or script."""

    id: str
    kind: str
    depends_on: tuple[str, ...]
    group: str | None
    timeout: timedelta | None
    step: Any  # the kind's model (AthenaStep, HiveStep, ...) with resolved strings
    sql: str | None  # athena/unload/check/trino: the SQL (inline or from sql_file), resolved
    script: Path | None  # hive/spark: the script file
    script_text: str | None  # hive/spark: the script, resolved (upload this, content-addressed)


@dataclass(frozen=True)
class StagePipeline:
    """A pipeline as `stage` runs it; tasks are in dependency order."""

    pipeline: Pipeline
    stage: Stage
    schedule: str | ScheduleAfter | None
    paused: bool
    retries: int
    retry_delay: timedelta
    on_failure: OnFailure | None
    tags: tuple[str, ...]
    cluster: StageCluster | None
    tasks: tuple[StageTask, ...]

    @property
    def dag_id(self) -> str:
        return self.pipeline.pipeline


def _resolve_value(value: Any, stage: Stage, source: str) -> Any:
    if isinstance(value, str):
        return resolve_stage_vars(value, stage, source=source)
    if isinstance(value, dict):
        return {k: _resolve_value(v, stage, source) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_value(v, stage, source) for v in value]
    return value


def stage_cluster(pipeline: Pipeline, stage: Stage) -> StageCluster | None:
    """The cluster of `pipeline` in `stage`, or None when no task runs on EMR."""
    if not pipeline.uses_emr:
        return None
    merged: dict[str, Any] = {}
    if pipeline.cluster is not None:
        merged.update(pipeline.cluster.model_dump(exclude_unset=True))
    override = pipeline.stages.get(stage.name)
    if override is not None and override.cluster is not None:
        merged.update(override.cluster.model_dump(exclude_unset=True))
    emr = stage.config.emr
    return StageCluster(
        release_label=merged.get("release_label", emr.release_label),
        applications=tuple(merged.get("applications") or emr.applications),
        primary_instance_type=merged.get("primary_instance_type", emr.primary_instance_type),
        core_instance_type=merged.get("core_instance_type", emr.core_instance_type),
        core_instance_count=merged.get("core_instance_count", emr.core_instance_count),
        idle_timeout_minutes=merged.get("idle_timeout_minutes", emr.idle_timeout_minutes),
        existing_cluster_id=merged.get("existing_cluster_id"),
    )


def _file_text(path: Path) -> str:
    """The file's text exactly as validation read it (`read_text` would turn CR LF and CR into
    LF, changing string literals in SQL and every line of a script), without a leading BOM."""
    return path.read_bytes().decode("utf-8").removeprefix("\ufeff")


def _stage_task(task: Task, pipeline: Pipeline, stage: Stage) -> StageTask:
    source = str(pipeline.source or pipeline.pipeline)
    raw = task.step.model_dump(exclude_unset=True)
    text_keys = {"sql_file", "script"}
    resolved = {
        k: (v if k in text_keys else _resolve_value(v, stage, source)) for k, v in raw.items()
    }
    step = type(task.step).model_validate(resolved)
    sql: str | None = resolved.get("sql")
    if resolved.get("sql_file"):
        file = pipeline.source_dir / resolved["sql_file"]
        sql = resolve_stage_vars(_file_text(file), stage, source=str(file))
    script: Path | None = None
    script_text: str | None = None
    if resolved.get("script"):
        script = pipeline.source_dir / resolved["script"]
        script_text = resolve_stage_vars(_file_text(script), stage, source=str(script))
    return StageTask(
        id=task.id,
        kind=task.kind,
        depends_on=tuple(task.depends_on),
        group=task.group,
        timeout=parse_duration(task.timeout) if task.timeout else None,
        step=step,
        sql=sql,
        script=script,
        script_text=script_text,
    )


def resolve_pipeline(pipeline: Pipeline, stage: Stage) -> StagePipeline:
    """`pipeline` as `stage` runs it; ConfigError (file:line:col) on a bad stage variable.

    Pass a pipeline from `validate_paths`: it has been checked against every stage already.
    """
    override = pipeline.stages.get(stage.name)
    fields_set = override.model_fields_set if override is not None else set()

    def pick(name: str) -> Any:
        return getattr(override, name) if name in fields_set else getattr(pipeline, name)

    return StagePipeline(
        pipeline=pipeline,
        stage=stage,
        schedule=pick("schedule"),
        paused=pick("paused"),
        retries=pick("retries"),
        retry_delay=parse_duration(pipeline.retry_delay),
        on_failure=pick("on_failure"),
        tags=tuple(pick("tags")),
        cluster=stage_cluster(pipeline, stage),
        tasks=tuple(_stage_task(t, pipeline, stage) for t in pipeline.task_order()),
    )
