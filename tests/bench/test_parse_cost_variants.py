"""The parse-cost benchmark compares like with like: its three variants build the same DAGs.

Timings belong to `make bench`; these tests prove, on one Athena and one EMR pipeline, that the
hand-written (and, where its venv is built, the dag-factory) variant loads in Airflow 3 with the
same operators, arguments and dependencies as mwaa-elt's, and that the comparison catches a
variant that drifts.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from airflow_lines import python_of_line

from bench import parse_cost
from bench.dag_variants import dag_factory_yaml, handwritten


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One Athena and one EMR bench pipeline rendered by mwaa-elt and described under Airflow 3."""
    python = python_of_line(3)
    scratch = tmp_path_factory.mktemp("parse-cost")
    pipelines = parse_cost.render_mwaa_elt(scratch, athena=1, emr=1)
    report = parse_cost.describe(scratch / "variants" / parse_cost.MWAA_ELT, pipelines, python)
    recipes = parse_cost.recipes_of(pipelines, report["dags"])
    return {
        "scratch": scratch,
        "pipelines": pipelines,
        "dags": report["dags"],
        "recipes": recipes,
        "python": python,
    }


@pytest.fixture(scope="module")
def hand_written(rendered: dict[str, Any]) -> dict[str, Any]:
    folder = rendered["scratch"] / "variants" / parse_cost.HAND_WRITTEN
    handwritten.write(rendered["recipes"], folder)
    report = parse_cost.describe(folder, rendered["pipelines"], rendered["python"])
    return {"folder": folder, "dags": report["dags"]}


def test_hand_written_dags_equal_mwaa_elts_in_every_task_argument(rendered, hand_written):
    assert (
        sorted(hand_written["dags"]) == sorted(rendered["dags"]) == ["sales_0000", "sales_emr_0000"]
    )
    assert parse_cost.compare(rendered["dags"], hand_written["dags"], dag_factory=False) == []


def test_each_pipeline_has_the_shape_the_benchmark_promises(rendered):
    athena = rendered["dags"]["sales_0000"]["tasks"]
    emr = rendered["dags"]["sales_emr_0000"]["tasks"]
    # Five Athena statements, and the clear that makes the CTAS re-runnable.
    assert sorted(t["operator"].rsplit(".", 1)[1] for t in athena.values()) == [
        *["AthenaOperator"] * 5,
        "S3DeleteObjectsOperator",
    ]
    assert {t["operator"].rsplit(".", 1)[1] for t in emr.values()} == {
        "EmrCreateJobFlowOperator",
        "EmrAddStepsOperator",
        "EmrStepSensor",
        "EmrTerminateJobFlowOperator",
    }
    assert emr["terminate_cluster"]["is_teardown"] and emr["create_cluster"]["is_setup"]


def test_hand_written_files_import_nothing_but_airflow_pendulum_and_the_standard_library(
    hand_written,
):
    allowed = ("airflow", "pendulum", "datetime")
    for path in sorted(Path(hand_written["folder"]).glob("*.py")):
        tree = ast.parse(path.read_text())
        modules = [
            node.module if isinstance(node, ast.ImportFrom) else alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        ]
        assert modules, path
        assert all(str(m).split(".")[0] in allowed for m in modules), (path.name, modules)


def test_dag_factory_dags_differ_from_mwaa_elts_only_where_dag_factory_must(rendered, tmp_path):
    python = parse_cost.BENCH_VENV / "bin" / "python"
    if not (parse_cost.BENCH_VENV / ".installed").exists():
        pytest.skip("no dag-factory venv; `make bench-envs` builds it")
    dag_factory_yaml.write(rendered["recipes"], tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.yml")) == [
        "sales_0000.yml",
        "sales_emr_0000.yml",
    ]
    report = parse_cost.describe(tmp_path, rendered["pipelines"], python)
    assert parse_cost.compare(rendered["dags"], report["dags"], dag_factory=True) == []
    # Without the allowance the known differences show up, and nothing else.
    strict = parse_cost.compare(rendered["dags"], report["dags"], dag_factory=False)
    assert {line.split(":")[0] for line in strict} == {
        "sales_0000.doc_md",
        "sales_0000.tags",
        "sales_emr_0000.doc_md",
        "sales_emr_0000.tags",
        "sales_emr_0000.create_cluster.is_setup",
        "sales_emr_0000.terminate_cluster.is_teardown",
        "sales_emr_0000.terminate_cluster.trigger_rule",
    }


def _task(operator: str, upstream: list[str], **changes: Any) -> dict[str, Any]:
    """A task as the probe describes it (the keys compare() reads), with `changes` applied."""
    return {
        "operator": f"airflow.providers.amazon.aws.operators.{operator}",
        "group": None,
        "upstream": upstream,
        "owner": "analytics",
        "retries": 1,
        "retry_delay": {"timedelta_seconds": 300.0},
        "trigger_rule": "all_success",
        "is_setup": False,
        "is_teardown": False,
        "on_failure_callback": [],
        "outlets": [],
        "fields": {"query": "SELECT 1", "aws_conn_id": "aws_default"},
        "attributes": {"deferrable": True},
        **changes,
    }


def _described() -> dict[str, Any]:
    """Two DAGs as the probe describes them: an Athena one and an EMR one with a teardown."""
    athena = {"summary": _task("athena.AthenaOperator", [])}
    emr = {
        "create_cluster": _task("emr.EmrCreateJobFlowOperator", [], is_setup=True),
        "terminate_cluster": _task(
            "emr.EmrTerminateJobFlowOperator",
            ["create_cluster"],
            is_teardown=True,
            trigger_rule="all_done_setup_success",
        ),
    }
    return {
        dag_id: {"dag_id": dag_id, "doc_md": f"{dag_id} docs", "tags": ["dev"], "tasks": tasks}
        for dag_id, tasks in (("sales_0000", athena), ("sales_emr_0000", emr))
    }


def test_compare_finds_nothing_between_equal_descriptions():
    assert parse_cost.compare(_described(), _described(), dag_factory=False) == []


def test_compare_names_the_task_argument_that_differs():
    other = _described()
    other["sales_0000"]["tasks"]["summary"]["fields"]["query"] = "SELECT 2"
    for dag_factory in (False, True):
        problems = parse_cost.compare(_described(), other, dag_factory=dag_factory)
        assert [p.split(":")[0] for p in problems] == ["sales_0000.summary.fields"]


def test_compare_reports_missing_dags_and_tasks():
    other = _described()
    del other["sales_0000"]
    del other["sales_emr_0000"]["tasks"]["terminate_cluster"]
    problems = parse_cost.compare(_described(), other, dag_factory=False)
    assert problems == [
        "sales_0000: built by only one of the two variants",
        "sales_emr_0000.terminate_cluster: built by only one of the two variants",
    ]


def test_compare_allows_dag_factorys_known_differences_to_dag_factory_only():
    other = _described()
    for dag in other.values():
        dag["doc_md"] += "\n## YML DAG\n..."
        dag["tags"].append("dagfactory")
    tasks = other["sales_emr_0000"]["tasks"]
    tasks["create_cluster"]["is_setup"] = False
    tasks["terminate_cluster"].update(is_teardown=False, trigger_rule="all_done")
    assert parse_cost.compare(_described(), other, dag_factory=True) == []
    assert len(parse_cost.compare(_described(), other, dag_factory=False)) == 7


def test_dag_factory_allowances_do_not_cover_other_tasks_tags_or_docs():
    other = _described()
    other["sales_0000"]["tasks"]["summary"]["trigger_rule"] = "all_done"
    other["sales_0000"]["tags"].append("unexpected")
    other["sales_emr_0000"]["doc_md"] = "something else entirely"
    problems = parse_cost.compare(_described(), other, dag_factory=True)
    assert sorted(p.split(":")[0] for p in problems) == [
        "sales_0000.summary.trigger_rule",
        "sales_0000.tags",
        "sales_emr_0000.doc_md",
    ]
