"""The package gate: a DAG may only import what the stage's MWAA environment installs."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import pytest

from mwaa_elt.check import CheckReport, FileReport, Finding
from mwaa_elt.errors import ConfigError
from mwaa_elt.promote import gates
from mwaa_elt.promote.gates import required_distributions, requirements_gate
from mwaa_elt.render import RenderedPipeline, RenderResult
from mwaa_elt.stage import Stage

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "infra" / "environment" / "requirements.txt"


def _render(stage: Stage, dag: str) -> RenderResult:
    pipeline = RenderedPipeline("sales", "pipelines/sales/sales.yaml", "dags/sales.py", (), "0")
    return RenderResult(stage.name, stage.airflow.version, {"dags/sales.py": dag.encode()}, {"sales": pipeline})  # fmt: skip


def test_imports_map_to_distributions() -> None:
    dag = b"""
import json
import pendulum
from datetime import timedelta
from airflow.sdk import DAG
from airflow.providers.amazon.aws.operators.athena import AthenaOperator
from airflow.providers.common.sql.operators.sql import SQLCheckOperator
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
import great_expectations as gx
from .local import helper
"""
    assert required_distributions(dag) == {
        "apache-airflow-providers-amazon",
        "apache-airflow-providers-common-sql",
        "apache-airflow-providers-cncf-kubernetes",
        "great-expectations",
    }


def test_imports_nested_in_any_statement_are_found() -> None:
    dag = b"""
def build():
    import boto3
class Factory:
    def make(self):
        with open("x") as f:
            from great_expectations import core
if True:
    pass
else:
    import pandas
try:
    import numpy
except ImportError:
    import scipy
finally:
    import requests
for _ in []:
    pass
else:
    import yaml
match 1:
    case 1:
        import jinja2
f = lambda: __import__("not_a_statement")
"""
    found = required_distributions(dag)
    reference = set()
    for node in ast.walk(ast.parse(dag)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            reference |= required_distributions(ast.unparse(node).encode())
    assert found == reference
    assert {"boto3", "great-expectations", "pandas", "scipy", "requests", "jinja2"} <= found


@pytest.mark.parametrize("stage_name", ["dev", "prod"])
def test_generated_imports_are_provided_on_every_stage(
    stages: dict[str, Stage], stage_name: str
) -> None:
    stage = stages[stage_name]
    golden = (ROOT / "tests/render/golden" / stage_name / "movielens_scifi.py").read_text()
    imported = requirements_gate(_render(stage, golden), stage, REQUIREMENTS)
    # The gate looked at the DAG's imports (not at nothing) and found them all installed.
    assert "apache-airflow-providers-amazon" in imported["sales"]


def test_a_provider_the_stage_does_not_install_is_refused_with_what_to_do(
    stages: dict[str, Stage],
) -> None:
    dag = "from airflow.providers.snowflake.operators.snowflake import SnowflakeSqlApiOperator\n"
    with pytest.raises(ConfigError) as raised:
        requirements_gate(_render(stages["staging"], dag), stages["staging"], REQUIREMENTS)
    (message,) = raised.value.messages
    assert message.startswith("sales: imports apache-airflow-providers-snowflake")
    assert "add it to requirements.txt" in message
    assert "pulumi up --stack staging" in message


def test_a_package_listed_in_the_requirements_passes(
    stages: dict[str, Stage], tmp_path: Path
) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(REQUIREMENTS.read_text() + "apache-airflow-providers-snowflake\n")
    dag = "from airflow.providers.snowflake.operators.snowflake import SnowflakeSqlApiOperator\n"
    imported = requirements_gate(_render(stages["staging"], dag), stages["staging"], requirements)
    assert imported == {"sales": {"apache-airflow-providers-snowflake"}}


def test_only_the_named_pipelines_are_checked(stages: dict[str, Stage]) -> None:
    dag = "from airflow.providers.snowflake.operators.snowflake import SnowflakeSqlApiOperator\n"
    assert (
        requirements_gate(_render(stages["staging"], dag), stages["staging"], REQUIREMENTS, [])
        == {}
    )


def _many(stage: Stage, count: int) -> RenderResult:
    files, pipelines = {}, {}
    for index in range(count):
        name, dag_path = f"p{index:03d}", f"dags/p{index:03d}.py"
        files[dag_path] = f"# {name}\n".encode()
        pipelines[name] = RenderedPipeline(name, f"pipelines/{name}/{name}.yaml", dag_path, (), "0")
    return RenderResult(stage.name, stage.airflow.version, files, pipelines)


def _loaded(folder: Path, version: str, *, project_root: Path) -> CheckReport:
    """What run_dagbag reports for `folder`: every file, one failing when it says so."""
    reports = []
    for path in sorted(folder.iterdir()):
        broken = path.name == "p007.py"
        finding = Finding("imports", not broken, "boom" if broken else "ok")
        reports.append(FileReport(path, (path.stem,), 0.01, (finding,)))
    return CheckReport(version, folder, 1.0, 2.0, tuple(reports))


@pytest.mark.parametrize("workers", ["1", "2", "3"])
def test_the_dagbag_gate_loads_each_dag_once_in_however_many_airflow_processes(
    stages: dict[str, Stage], monkeypatch, workers: str
) -> None:
    monkeypatch.setenv("MWAA_ELT_WORKERS", workers)
    folders: list[Path] = []

    def loaded(folder: Path, version: str, *, project_root: Path) -> CheckReport:
        folders.append(folder)
        return _loaded(folder, version, project_root=project_root)

    monkeypatch.setattr(gates, "run_dagbag", loaded)
    stage = stages["dev"]
    names = [f"p{index:03d}" for index in range(10) if index != 7]
    report = gates.dagbag_gate(_many(stage, 10), stage, ROOT, names)
    assert len(folders) == int(workers)  # one Airflow process per share
    assert sorted(f.path.name for f in report.files) == sorted(f"{n}.py" for n in names)
    assert report.airflow_version == stage.airflow.version and report.ok

    with pytest.raises(ConfigError) as raised:  # a failure in any share refuses the promotion
        gates.dagbag_gate(_many(stage, 10), stage, ROOT, [f"p{i:03d}" for i in range(10)])
    assert raised.value.messages[0] == "p007.py: imports: boom"
    assert "integrity gate failed" in raised.value.messages[-1]


def test_the_dagbag_gate_gives_its_first_share_to_the_probe_started_ahead(
    stages: dict[str, Stage], monkeypatch, tmp_path: Path
) -> None:
    """`start_dagbag_gate` starts Airflow while the promotion renders; the gate loads the first
    two shares of the DAG files there (it has no start-up left) and the others in processes
    of their own, each DAG once."""
    monkeypatch.setenv("MWAA_ELT_WORKERS", "2")
    stage = stages["dev"]
    started: list[SimpleNamespace] = []
    ran: list[str] = []
    cancelled: list[SimpleNamespace] = []

    def start(version: str, *, project_root: Path, niceness: int) -> SimpleNamespace:
        assert niceness > 0  # below the promotion's own priority
        folder = tmp_path / f"started-{len(started)}"
        folder.mkdir()
        started.append(SimpleNamespace(dags_folder=folder, airflow_version=version))
        return started[-1]

    def run_started(probe: SimpleNamespace) -> CheckReport:
        ran.append("started")
        return _loaded(probe.dags_folder, probe.airflow_version, project_root=ROOT)

    def run_fresh(folder: Path, version: str, *, project_root: Path) -> CheckReport:
        ran.append("fresh")
        return _loaded(folder, version, project_root=project_root)

    monkeypatch.setattr(gates, "start_probe", start)
    monkeypatch.setattr(gates, "run_started", run_started)
    monkeypatch.setattr(gates, "run_dagbag", run_fresh)
    monkeypatch.setattr(gates, "cancel_probe", cancelled.append)

    gates.start_dagbag_gate(stage.airflow.version, ROOT)
    gates.start_dagbag_gate(stage.airflow.version, ROOT)  # one per version and project
    assert len(started) == 1
    names = [f"p{index:03d}" for index in range(10) if index != 7]
    report = gates.dagbag_gate(_many(stage, 10), stage, ROOT, names)
    assert sorted(ran) == ["fresh", "started"]
    assert sorted(f.path.name for f in report.files) == sorted(f"{n}.py" for n in names)
    assert len(list(started[0].dags_folder.iterdir())) == 6  # two shares of three
    assert cancelled == [started[0]]  # released (a no-op for a probe that has run)

    gates.start_dagbag_gate(stage.airflow.version, ROOT)  # a gate that never runs
    gates.cancel_started_gates()
    assert cancelled == [started[0], started[1]]
    gates.dagbag_gate(_many(stage, 10), stage, ROOT, names)  # nothing started: all fresh
    assert ran.count("started") == 1
