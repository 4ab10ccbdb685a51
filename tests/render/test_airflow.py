"""The generated DAGs under Airflow itself: DagBag loads of every example for every stage on both
Airflow lines, templated fields rendered by Airflow for a sample date, and escaping round trips.

One probe process per folder and Airflow line; each fills a DagBag and renders the tasks asked for.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from render_support import (
    EXAMPLES,
    FIXTURES,
    ROOT,
    STAGE_X_AIRFLOW,
    TEMPLATES,
    airflow_param,
    with_airflow,
)

from mwaa_elt.check import evaluate, run_probe
from mwaa_elt.render import RenderResult, render_pipelines, write_render
from mwaa_elt.spec import discover_specs, validate_paths
from mwaa_elt.stage import Stage

WHEN = "2024-03-01T00:00:00+00:00"
RENDERS = [
    ("movielens_scifi", "raw_tables.create_movies"),
    ("movielens_scifi", "create_scifi"),
    ("movielens_scifi", "export_scifi_clear"),
    ("movielens_scifi", "export_scifi"),
    ("movielens_scifi", "wait_for_ratings"),
    ("scifi_quality", "checks.has_rows"),
    ("scifi_quality", "checks.keys_present"),
    ("scifi_quality", "record_check"),
    ("movielens_emr", "create_cluster"),
    ("movielens_emr", "clean_ratings_submit"),
    ("movielens_emr", "clean_ratings"),
    ("movielens_emr", "rank_films_submit"),
    ("movielens_emr", "terminate_cluster"),
]
Render = Callable[..., RenderResult]


@functools.cache
def _probe(folder: Path, major: int, renders: tuple[tuple[str, str, str], ...]) -> dict[str, Any]:
    data, _ = run_probe(folder, major, renders=renders)
    return data


@pytest.fixture(scope="module")
def probed(
    render_for: Render, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str, int], dict[str, Any]]:
    """The probe's JSON for the examples rendered for `stage` on Airflow `major`."""

    def probe(stage: str, major: int) -> dict[str, Any]:
        out = tmp_path_factory.getbasetemp() / f"render-{stage}-{major}"
        if not out.exists():
            write_render(render_for(stage, major), out)
        renders = tuple((dag, task, WHEN) for dag, task in RENDERS)
        return _probe(out / "dags", major, renders)

    return probe


def _rendered(data: dict[str, Any], dag_id: str, task_id: str) -> dict[str, Any]:
    for item in data["renders"]:
        if (item["dag_id"], item["task_id"]) == (dag_id, task_id):
            assert "error" not in item, item
            return item
    raise AssertionError(f"{dag_id}.{task_id} was not rendered")


@pytest.mark.parametrize(("stage", "major"), STAGE_X_AIRFLOW)
def test_every_example_loads_and_passes_the_gate(
    probed: Callable[[str, int], dict[str, Any]], stage: str, major: int
) -> None:
    data = probed(stage, major)
    assert data["airflow_version"].startswith(f"{major}.")
    assert data["import_errors"] == {}
    assert sorted(d["dag_id"] for d in data["dags"]) == sorted(EXAMPLES)
    # Parse time depends on the machine's load; this test is about correctness, and the budget
    # rule has its own tests (tests/check/test_rules.py).
    reports = evaluate(data, budget_seconds=60.0)
    failing = [(r.path.name, f) for r in reports for f in r.findings if not f.ok]
    assert failing == []
    assert all(not f["warnings"] for f in data["files"]), [f["warnings"] for f in data["files"]]


@pytest.mark.parametrize(("stage", "major"), STAGE_X_AIRFLOW)
def test_airflow_renders_final_sql_for_a_sample_date(
    probed: Callable[[str, int], dict[str, Any]],
    all_stages: dict[str, Stage],
    stage: str,
    major: int,
) -> None:
    data = probed(stage, major)
    lake = all_stages[stage].data_lake_bucket
    movies = _rendered(data, "movielens_scifi", "raw_tables.create_movies")["fields"]
    assert f"CREATE EXTERNAL TABLE IF NOT EXISTS {stage}_movielens.movies (" in movies["query"]
    assert movies["workgroup"] == f"mwaa-elt-{stage}"
    assert movies["database"] == "default"

    scifi = _rendered(data, "movielens_scifi", "create_scifi")
    ts_nodash = datetime.fromisoformat(scifi["logical_date"]).strftime("%Y%m%dT%H%M%S")
    assert scifi["logical_date"].startswith("2024-03-01")
    assert (
        f"external_location = 's3://{lake}/{stage}/analytics/scifi/{ts_nodash}/'"
        in scifi["fields"]["query"]
    )

    clear = _rendered(data, "movielens_scifi", "export_scifi_clear")["fields"]
    assert (clear["bucket"], clear["prefix"]) == (lake, f"{stage}/exports/scifi/")
    export = _rendered(data, "movielens_scifi", "export_scifi")["fields"]["query"]
    assert export == (
        f"UNLOAD (\nSELECT * FROM {stage}_analytics.scifi ORDER BY avg_rating DESC\n)\n"
        f"TO 's3://{lake}/{stage}/exports/scifi/'\n"
        "WITH (format = 'TEXTFILE', field_delimiter = ',', compression = 'NONE')"
    )
    wait = _rendered(data, "movielens_scifi", "wait_for_ratings")["fields"]
    assert wait["bucket_key"] == f"s3://{lake}/landing/movielens/ratings/*"

    has_rows = _rendered(data, "scifi_quality", "checks.has_rows")["fields"]["op_kwargs"]
    assert has_rows["sql"] == f"SELECT count(*) >= 1\nFROM {stage}_analytics.scifi"
    keys = _rendered(data, "scifi_quality", "checks.keys_present")["fields"]["op_kwargs"]
    assert keys["sql"] == (
        f'SELECT count_if("movieid" IS NULL OR "title" IS NULL) = 0\nFROM {stage}_analytics.scifi'
    )
    # Airflow's Jinja drops one trailing newline of a rendered string, as it does for any DAG.
    recorded = _rendered(data, "scifi_quality", "record_check")
    record, record_date = recorded["fields"]["query"], recorded["logical_date"]
    assert record == (
        f"INSERT INTO {stage}_ops.quality_runs\n"
        f"SELECT 'scifi_quality', 'scheduled__{record_date}', current_timestamp"
    )


@pytest.mark.parametrize(("stage", "major"), STAGE_X_AIRFLOW)
def test_airflow_renders_emr_cluster_and_step_arguments(
    probed: Callable[[str, int], dict[str, Any]],
    all_stages: dict[str, Stage],
    stage: str,
    major: int,
) -> None:
    data = probed(stage, major)
    target = all_stages[stage]
    cluster = _rendered(data, "movielens_emr", "create_cluster")
    overrides = cluster["fields"]["job_flow_overrides"]
    # Named by run_id, which every run has (an asset-triggered run on Airflow 3 has no ts_nodash).
    assert overrides["Name"] == f"{stage}-movielens_emr-scheduled__{cluster['logical_date']}"
    assert overrides["ServiceRole"] == target.emr_service_role
    assert overrides["JobFlowRole"] == target.emr_instance_profile
    assert overrides["LogUri"] == target.emr_log_uri
    assert {"Key": "stage", "Value": stage} in overrides["Tags"]
    assert overrides["Instances"]["KeepJobFlowAliveWhenNoSteps"] is True
    assert overrides["Instances"]["Ec2SubnetId"] == "<var.value.emr_subnet_id>"
    core = overrides["Instances"]["InstanceGroups"][1]
    assert core["InstanceCount"] == (4 if stage == "prod" else 2)

    hive = _rendered(data, "movielens_emr", "clean_ratings_submit")["fields"]
    assert hive["job_flow_id"] == "<xcom:create_cluster>"
    args = hive["steps"][0]["HadoopJarStep"]["Args"]
    assert args[:4] == ["hive-script", "--run-hive-script", "--args", "-f"]
    assert args[4].startswith(f"s3://{target.source_bucket}/scripts/movielens_emr/")
    assert args[5:] == [
        "-d", "ds=2024-03-01",
        "-d", f"source_db={stage}_movielens",
        "-d", f"target_db={stage}_analytics",
        "-d", f"target_location=s3://{target.data_lake_bucket}/{stage}/curated/ratings_clean/",
    ]  # fmt: skip
    spark = _rendered(data, "movielens_emr", "rank_films_submit")["fields"]
    args = spark["steps"][0]["HadoopJarStep"]["Args"]
    assert args[:7] == [
        "spark-submit", "--deploy-mode", "cluster",
        "--conf", "spark.executor.memory=4g", "--conf", "spark.sql.shuffle.partitions=64",
    ]  # fmt: skip
    assert args[8:] == [
        "--ds", "2024-03-01", "--database", f"{stage}_analytics",
        "--output", f"s3://{target.data_lake_bucket}/{stage}/curated/top_rated/ds=2024-03-01/",
    ]  # fmt: skip
    sensor = _rendered(data, "movielens_emr", "clean_ratings")["fields"]
    assert sensor["step_id"] == "<xcom:clean_ratings_submit[0]>"  # the first step id it added


@pytest.mark.parametrize(("stage", "major"), STAGE_X_AIRFLOW[:2])
def test_emr_cluster_is_a_teardown_so_a_failed_step_fails_the_run(
    probed: Callable[[str, int], dict[str, Any]], stage: str, major: int
) -> None:
    """Airflow ignores teardown tasks when it decides a run's state: a failed step fails the run
    although the cluster is terminated, which runs after every step, failed or not."""
    dag = next(d for d in probed(stage, major)["dags"] if d["dag_id"] == "movielens_emr")
    tasks = {t["task_id"]: t for t in dag["tasks"]}
    terminate = tasks["terminate_cluster"]
    assert terminate["trigger_rule"] == "all_done_setup_success"
    assert set(terminate["upstream"]) == {"create_cluster", "clean_ratings", "rank_films"}
    assert tasks["create_cluster"]["upstream"] == ["wait_for_ratings"]  # not while waiting
    deferrable = {t for t, v in tasks.items() if v["deferrable"]}
    assert {"clean_ratings", "rank_films", "terminate_cluster", "wait_for_ratings"} <= deferrable


# -- escaping ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tricky(all_stages: dict[str, Stage]) -> tuple[Any, dict[int, RenderResult]]:
    """A spec with quotes, triple quotes, backslashes, newlines, Jinja and unicode everywhere."""
    report = validate_paths(discover_specs(FIXTURES), all_stages)
    assert report.ok, report.problems
    results = {
        major: render_pipelines(
            report.pipelines, with_airflow(all_stages["dev"], major), TEMPLATES, project_root=ROOT
        )
        for major in (2, 3)
    }
    return report.pipelines["tricky"], results


def _calls(source: str) -> dict[str, dict[str, Any]]:
    """task_id (or 'DAG') → the literal keyword arguments of the call that creates it."""
    found: dict[str, dict[str, Any]] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            values = {}
            for kw in node.keywords:
                try:
                    values[kw.arg] = ast.literal_eval(kw.value)
                except ValueError:
                    continue
            key = "DAG" if node.func.id == "DAG" else values.get("task_id")
            if key:
                found[key] = values
    return found


@pytest.mark.parametrize("major", [2, 3])
def test_adversarial_spec_text_round_trips_exactly(
    tricky: tuple[Any, dict[int, RenderResult]], major: int
) -> None:
    spec, results = tricky
    calls = _calls(results[major].files["dags/tricky.py"].decode())
    dag = calls["DAG"]
    assert dag["description"] == spec.description
    assert dag["doc_md"].startswith(spec.description + "\n\n")
    assert dag["tags"] == [*spec.tags, "dev"]
    assert calls["import"]["query"] == spec.task("import").athena.sql
    steps = calls["pendulum_submit"]["steps"][0]["HadoopJarStep"]["Args"]
    assert steps[-len(spec.task("pendulum").spark.args) :] == spec.task("pendulum").spark.args
    assert "spark.app.name=x'y\"z" in steps
    hive = calls["dag_submit"]["steps"][0]["HadoopJarStep"]["Args"]
    assert hive[-4:] == ["-d", "quote='\"", "-d", "brace={{ ds }}"]
    assert calls["len"]["op_kwargs"]["sql"] == spec.task("len").check.sql


@pytest.mark.parametrize(
    "major", [airflow_param("dev", 2).values[1], airflow_param("dev", 3).values[1]]
)
def test_adversarial_spec_loads_in_airflow_with_its_values(
    tricky: tuple[Any, dict[int, RenderResult]], tmp_path: Path, major: int
) -> None:
    spec, results = tricky
    write_render(results[major], tmp_path / "out")
    data = _probe(tmp_path / "out" / "dags", major, (("tricky", "pendulum_submit", WHEN),))
    assert data["import_errors"] == {}
    (dag,) = data["dags"]
    assert dag["tags"] == sorted([*spec.tags, "dev"])
    assert {t["task_id"] for t in dag["tasks"]} >= {"import", "pendulum", "dag", "len"}
    args = _rendered(data, "tricky", "pendulum_submit")["fields"]["steps"][0]["HadoopJarStep"]
    assert args["Args"][-6:] == ["it's", '"""', "a\\b", "line\nbreak", "2024-03-01", "☃"]
