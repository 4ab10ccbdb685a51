"""`mwaa-elt check`: render every DAG for a stage and gate it with Airflow's DagBag."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from airflow_lines import AIRFLOW_VERSION, environment_overrides
from typer.testing import CliRunner

from mwaa_elt.cli import app

runner = CliRunner()


@pytest.fixture
def project(scratch_project: Path, project_root: Path, monkeypatch) -> Path:
    shutil.copytree(project_root / "pipelines", scratch_project / "pipelines")
    shutil.copytree(project_root / "dag_templates", scratch_project / "dag_templates")
    for variable, python in environment_overrides().items():
        monkeypatch.setenv(variable, python)
    monkeypatch.chdir(scratch_project)
    return scratch_project


@pytest.mark.parametrize(
    ("stage", "version"), [("dev", AIRFLOW_VERSION[3]), ("prod", AIRFLOW_VERSION[2])]
)
def test_check_passes_every_example_under_the_stage_airflow(project, stage, version):
    # A generous budget: parse time depends on the machine's load, and `make bench` measures it.
    result = runner.invoke(app, ["check", "--stage", stage, "--budget", "60", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["airflow_version"] == version and data["ok"] is True
    assert sorted(d["file"] for d in data["dags"]) == [
        "movielens_emr.py",
        "movielens_scifi.py",
        "scifi_quality.py",
    ]
    assert not (project / "build").exists()  # check renders into a scratch folder


def test_check_fails_with_exit_1_when_a_gate_fails(project):
    result = runner.invoke(app, ["check", "--stage", "prod", "--budget", "0", "--json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False
    assert all(any(f["rule"] == "parse_time" for f in dag["failures"]) for dag in data["dags"])
