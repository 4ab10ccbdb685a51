"""The analyst's commands: new, validate (text and JSON), schema."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mwaa_elt.cli import app
from mwaa_elt.spec import pipeline_json_schema_text

runner = CliRunner()


@pytest.fixture
def project(scratch_project: Path, project_root: Path, monkeypatch) -> Path:
    shutil.copytree(project_root / "pipelines", scratch_project / "pipelines")
    monkeypatch.chdir(scratch_project)
    return scratch_project


def test_examples_validate(project):
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0, result.output
    assert "ok: 3 spec(s) checked against 3 stage(s)" in result.output


@pytest.mark.parametrize("engine", ["athena", "emr"])
def test_new_scaffolds_a_valid_spec(project, engine):
    result = runner.invoke(app, ["new", "fresh_one", "--engine", engine])
    assert result.exit_code == 0, result.output
    assert (project / "pipelines/fresh_one/fresh_one.yaml").is_file()
    checked = runner.invoke(app, ["validate", "pipelines/fresh_one"])
    assert checked.exit_code == 0, checked.output
    again = runner.invoke(app, ["new", "fresh_one"])
    assert again.exit_code == 1 and "already exists" in str(again.exception)


def test_new_refuses_a_bad_name(project):
    result = runner.invoke(app, ["new", "Bad-Name"])
    assert result.exit_code == 1
    assert "expected lower-case letters" in str(result.exception)
    assert not (project / "pipelines/Bad-Name").exists()


def test_validate_reports_every_problem_with_location_and_exit_1(project):
    folder = project / "pipelines/broken"
    folder.mkdir()
    (folder / "broken.yaml").write_text(
        "pipeline: broken\ndescription: x\nowner: analytics\nschedul: '@daily'\n"
        "start_date: 2024-01-01\ntasks:\n  - id: a\n    athena: {sql: SELECT 1}\n"
        "    depends_on: [missing]\n"
    )
    result = runner.invoke(app, ["validate", "pipelines/broken"])
    assert result.exit_code == 1
    lines = [line for line in result.stdout.splitlines() if line.startswith("pipelines/")]
    assert (
        lines[0]
        == "pipelines/broken/broken.yaml:4:1: unknown key 'schedul'; did you mean 'schedule'?"
    )
    assert any(
        line.startswith("pipelines/broken/broken.yaml:9:") and "missing" in line for line in lines
    )
    as_json = runner.invoke(app, ["validate", "pipelines/broken", "--format", "json"])
    data = json.loads(as_json.stdout)
    assert data["ok"] is False and data["files"][0]["problems"][0]["line"] == 4


def test_validate_of_a_missing_path_is_a_clear_error(project):
    result = runner.invoke(app, ["validate", "pipelines/nope.yaml"])
    assert result.exit_code == 1 and "no such file or folder" in str(result.exception)


def test_schema_is_the_published_one(project, project_root):
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == json.loads(pipeline_json_schema_text())
    published = (project_root / "pipelines/pipeline.schema.json").read_text()
    assert json.loads(published) == json.loads(result.stdout)
