"""`mwaa-elt run`: every example runs clean with Airflow's test runner on both Airflow lines, and
a broken query, a missing table and a missing EMR script each fail the right task, with the
engine's message. Slow: each run starts Airflow in the stage's environment."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import date
from pathlib import Path

import pytest

from mwaa_elt.project import Project
from mwaa_elt.run import plan_pipeline_run, run_pipeline
from mwaa_elt.run.execute import RunReport, airflow_python, run_plan
from mwaa_elt.run.plan import PutObject
from mwaa_elt.stage import load_stage

pytest.importorskip("duckdb")
pytest.importorskip("moto")

ROOT = Path(__file__).resolve().parents[2]
PROJECT = Project(ROOT)
DAY = date(2024, 1, 1)
pytestmark = pytest.mark.slow


def _python(stage: str) -> Path:
    """The stage's MWAA environment; missing, it fails saying how to build it (never skips)."""
    return airflow_python(load_stage(PROJECT.stacks_dir, stage), ROOT)


def _states(report: RunReport) -> dict[str, str]:
    return {f"{d.dag_id}.{t.task_id}": t.state for d in report.dags for t in d.tasks}


def _errors(report: RunReport) -> dict[str, str | None]:
    return {f"{d.dag_id}.{t.task_id}": t.error for d in report.dags for t in d.tasks}


SCIFI_TASKS = {
    "movielens_scifi.wait_for_ratings",
    "movielens_scifi.create_database",
    "movielens_scifi.raw_tables.create_movies",
    "movielens_scifi.raw_tables.create_ratings",
    "movielens_scifi.drop_scifi",
    "movielens_scifi.create_scifi_clear",
    "movielens_scifi.create_scifi",
    "movielens_scifi.export_scifi_clear",
    "movielens_scifi.export_scifi",
}
QUALITY_TASKS = {
    "scifi_quality.checks.has_rows",
    "scifi_quality.checks.keys_present",
    "scifi_quality.checks.ratings_in_range",
    "scifi_quality.checks.only_scifi",
    "scifi_quality.create_quality_runs",
    "scifi_quality.record_check",
}
EMR_TASKS = {
    "movielens_emr.wait_for_ratings",
    "movielens_emr.create_cluster",
    "movielens_emr.clean_ratings_submit",
    "movielens_emr.clean_ratings",
    "movielens_emr.rank_films_submit",
    "movielens_emr.rank_films",
    "movielens_emr.terminate_cluster",
}


@pytest.mark.parametrize("stage", ["dev", "staging"])
def test_the_athena_examples_run_clean_with_their_upstream_pipeline(stage: str) -> None:
    python = _python(stage)
    # scifi_quality runs after the dataset movielens_scifi produces: both run, in that order.
    report = run_pipeline(PROJECT, stage, "scifi_quality", DAY, python=python)
    assert [(d.dag_id, d.upstream) for d in report.dags] == [
        ("movielens_scifi", True),
        ("scifi_quality", False),
    ]
    states = _states(report)
    assert set(states) == SCIFI_TASKS | QUALITY_TASKS
    assert {t: s for t, s in states.items() if s != "success"} == {}, _errors(report)
    rows = {t.task_id: t.rows_written for d in report.dags for t in d.tasks}
    # The samples hold ten sci-fi films with ratings; the CTAS and the export write all ten.
    assert rows["create_scifi"] == 10 and rows["export_scifi"] == 10
    assert rows["record_check"] == 1
    assert report.ok


@pytest.mark.parametrize("stage", ["dev", "staging"])
def test_the_emr_example_runs_clean_and_its_cluster_is_terminated(stage: str) -> None:
    python = _python(stage)
    report = run_pipeline(PROJECT, stage, "movielens_emr", DAY, python=python)
    states = _states(report)
    assert set(states) == EMR_TASKS
    assert {t: s for t, s in states.items() if s != "success"} == {}, _errors(report)
    assert report.clusters_left == ()
    assert report.ok


def test_a_missing_emr_script_fails_its_step_and_the_teardown_still_ends_the_cluster() -> None:
    python = _python("dev")
    plan = plan_pipeline_run(PROJECT, "dev", "movielens_emr", DAY)
    # As if the promotion had not uploaded the Spark script: the DAG points at a missing object.
    kept = tuple(
        s for s in plan.seed if not (isinstance(s, PutObject) and s.key.endswith("top_rated.py"))
    )
    assert len(kept) == len(plan.seed) - 1
    report = run_plan(dataclasses.replace(plan, seed=kept), python)
    states = _states(report)
    assert states["movielens_emr.clean_ratings"] == "success"
    assert states["movielens_emr.rank_films"] == "failed"
    assert states["movielens_emr.terminate_cluster"] == "success"
    error = _errors(report)["movielens_emr.rank_films"] or ""
    assert error.startswith("script s3://airflow-mwaa-elt-dev-111111111111/scripts/movielens_emr/")
    assert error.endswith("/top_rated.py does not exist")
    assert report.clusters_left == ()
    assert not report.ok


BROKEN = """\
pipeline: broken
description: A query with a type error, and one reading a declared source nothing provides.
owner: analytics
tags: [test]
schedule: null
start_date: 2024-01-01
on_failure: {sns_topic: data-alerts}
sources:
  - table: ops.audit_log
tasks:
  - id: create_database
    athena: {sql: "CREATE DATABASE IF NOT EXISTS {{ db.movielens }}"}
  - id: create_movies
    athena: {sql_file: sql/create_movies.sql}
    depends_on: [create_database]
  - id: wrong_type
    athena:
      sql: |
        SELECT avg(title) FROM {{ db.movielens }}.movies
    depends_on: [create_movies]
  - id: missing_table
    athena:
      sql: |
        SELECT count(*) FROM {{ db.ops }}.audit_log
    depends_on: [create_movies]
"""


def test_a_broken_query_and_a_missing_table_fail_their_tasks_with_the_engines_message(
    tmp_path: Path,
) -> None:
    python = _python("dev")
    for part in ("Pulumi.yaml", "stacks", "dag_templates"):
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, tmp_path / part)
        else:
            shutil.copy(source, tmp_path / part)
    folder = tmp_path / "pipelines" / "broken"
    (folder / "sql").mkdir(parents=True)
    shutil.copy(ROOT / "pipelines/pipeline.schema.json", tmp_path / "pipelines")
    (folder / "broken.yaml").write_text(BROKEN)
    shutil.copy(ROOT / "pipelines/movielens_scifi/sql/create_movies.sql", folder / "sql")
    shutil.copytree(ROOT / "pipelines/movielens_scifi/samples", folder / "samples")

    report = run_pipeline(Project(tmp_path), "dev", "broken", DAY, python=python)
    states, errors = _states(report), _errors(report)
    assert states["broken.create_movies"] == "success"
    assert states["broken.wrong_type"] == "failed"
    assert states["broken.missing_table"] == "failed"
    # Validation cannot see either: no types, and a declared source is trusted to exist.
    assert (errors["broken.wrong_type"] or "").startswith("TYPE_MISMATCH: ")
    assert "avg(VARCHAR)" in (errors["broken.wrong_type"] or "")
    assert errors["broken.missing_table"] == (
        "TABLE_NOT_FOUND: line 1:22: Table 'awsdatacatalog.dev_ops.audit_log' does not exist"
    )
    assert not report.ok


def test_a_run_seeds_its_sandbox_whatever_used_moto_before_in_the_process() -> None:
    """moto keeps its state in the process: after a promotion sandbox made the stages' buckets,
    a run's sandbox still starts from what its plan seeds (it used to fail on the bucket)."""
    from mwaa_elt.promote.sandbox import sandbox
    from mwaa_elt.run.execute import running_sandbox, seed, stage_credentials
    from mwaa_elt.stage import load_all_stages

    plan = plan_pipeline_run(PROJECT, "dev", "movielens_scifi", DAY)
    with sandbox(load_all_stages(PROJECT.stacks_dir)) as made:
        assert plan.stage.source_bucket in made.buckets
    with running_sandbox() as endpoint:
        seed(plan, endpoint, stage_credentials(plan.stage))
