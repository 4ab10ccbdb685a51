"""The parse-cost benchmark compares like with like: its three variants build the same DAGs.

Timings belong to `make bench`; these tests prove, on one Athena and one EMR pipeline, that the
hand-written (and, where its venv is built, the dag-factory) variant loads in Airflow 3 with the
same operators, arguments and dependencies as mwaa-elt's, and that the comparison catches a
variant that drifts.
"""

from __future__ import annotations

import ast
import copy
from pathlib import Path
from typing import Any

import pytest

from bench import parse_cost
from bench.dag_variants import dag_factory_yaml, handwritten
from mwaa_elt.check import airflow_python
from mwaa_elt.errors import ConfigError


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One Athena and one EMR bench pipeline rendered by mwaa-elt and described under Airflow 3."""
    try:
        python = airflow_python(3)
    except ConfigError as error:
        pytest.skip(f"no Airflow 3 venv ({error}); `make airflow-envs` builds it")
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
    assert [t["operator"].rsplit(".", 1)[1] for t in athena.values()] == ["AthenaOperator"] * 5
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


def test_compare_names_the_task_argument_that_differs(rendered):
    other = copy.deepcopy(rendered["dags"])
    other["sales_0000"]["tasks"]["drop_summary"]["fields"]["query"] = "DROP TABLE other"
    for dag_factory in (False, True):
        problems = parse_cost.compare(rendered["dags"], other, dag_factory=dag_factory)
        assert [p.split(":")[0] for p in problems] == ["sales_0000.drop_summary.fields"]


def test_compare_reports_missing_dags_and_tasks(rendered):
    other = copy.deepcopy(rendered["dags"])
    del other["sales_0000"]
    del other["sales_emr_0000"]["tasks"]["build_sessions"]
    problems = parse_cost.compare(rendered["dags"], other, dag_factory=False)
    assert "sales_0000: built by only one of the two variants" in problems
    assert "sales_emr_0000.build_sessions: built by only one of the two variants" in problems


def test_dag_factory_allowances_do_not_cover_other_tasks_or_other_tags(rendered):
    other = copy.deepcopy(rendered["dags"])
    other["sales_0000"]["tasks"]["create_summary"]["trigger_rule"] = "all_done"
    other["sales_0000"]["tags"].append("unexpected")
    other["sales_emr_0000"]["doc_md"] = "something else entirely"
    problems = parse_cost.compare(rendered["dags"], other, dag_factory=True)
    assert sorted(p.split(":")[0] for p in problems) == [
        "sales_0000.create_summary.trigger_rule",
        "sales_0000.tags",
        "sales_emr_0000.doc_md",
    ]
