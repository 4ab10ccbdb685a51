"""The analyst's commands: new, validate (text and JSON), schema."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mwaa_elt.cli import app
from mwaa_elt.spec import pipeline_json_schema_text

runner = CliRunner()


@pytest.fixture
def project(scratch_project: Path, project_root: Path, monkeypatch) -> Path:
    shutil.copytree(project_root / "pipelines", scratch_project / "pipelines")
    shutil.copytree(project_root / "dag_templates", scratch_project / "dag_templates")
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


def test_new_keeps_build_output_out_of_git(project):
    (project / ".gitignore").write_text("*.log")  # the user's own lines stay, in order
    result = runner.invoke(app, ["new", "first_one"])
    assert result.exit_code == 0, result.output
    lines = (project / ".gitignore").read_text().splitlines()
    assert lines[0] == "*.log" and "build/" in lines and ".mwaa-elt-sandbox/" in lines
    again = runner.invoke(app, ["new", "second_one"])
    assert again.exit_code == 0, again.output
    assert (project / ".gitignore").read_text().splitlines() == lines  # added once only


def test_new_writes_a_gitignore_when_there_is_none(project):
    assert not (project / ".gitignore").exists()
    result = runner.invoke(app, ["new", "first_one"])
    assert result.exit_code == 0, result.output
    assert "build/" in (project / ".gitignore").read_text().splitlines()


def test_the_projects_own_gitignore_ignores_build_output(project_root):
    lines = (project_root / ".gitignore").read_text().splitlines()
    assert "build/" in lines


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


def test_a_project_folder_that_cannot_be_looked_into_is_a_clear_error(tmp_path: Path) -> None:
    """`--project-dir` naming a folder the system refuses to look up (here a name longer than
    it allows) is an error message and exit code, not a traceback, for `promote` too, which
    reads it before its command line is imported (`promote.airflow_ahead`)."""
    too_long = tmp_path / ("a" * 300)
    for args in (["validate"], ["promote", "--to", "dev"]):
        done = subprocess.run(
            [sys.executable, "-m", "mwaa_elt", *args, "-C", str(too_long)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "NO_COLOR": "1", "COLUMNS": "2000"},
        )
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert f"{too_long}: cannot look for Pulumi.yaml there (File name too long)" in done.stderr


def test_schema_is_the_published_one(project, project_root):
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == json.loads(pipeline_json_schema_text())
    published = (project_root / "pipelines/pipeline.schema.json").read_text()
    assert json.loads(published) == json.loads(result.stdout)


def test_render_writes_every_dag_then_nothing_when_unchanged(project):
    first = runner.invoke(app, ["render", "--stage", "staging", "--json"])
    assert first.exit_code == 0, first.output
    data = json.loads(first.stdout)
    assert {p["pipeline"] for p in data["pipelines"]} == {
        "movielens_scifi",
        "movielens_emr",
        "scifi_quality",
    }
    dag = project / "build/staging/dags/movielens_scifi.py"
    assert "staging_movielens" in dag.read_text() and "dev_movielens" not in dag.read_text()
    second = json.loads(runner.invoke(app, ["render", "--stage", "staging", "--json"]).stdout)
    assert second["written"] == [] and len(second["unchanged"]) == len(data["written"])


def test_render_of_an_invalid_spec_writes_nothing_and_keeps_old_output(project):
    assert runner.invoke(app, ["render", "--stage", "dev"]).exit_code == 0
    before = {p: p.read_bytes() for p in (project / "build/dev").rglob("*") if p.is_file()}
    spec = project / "pipelines/movielens_scifi/movielens_scifi.yaml"
    spec.write_text(spec.read_text().replace("owner: analytics", "owner: [oops]"))
    result = runner.invoke(app, ["render", "--stage", "dev"])
    assert result.exit_code == 1
    assert "nothing was rendered" in str(result.exception)
    after = {p: p.read_bytes() for p in (project / "build/dev").rglob("*") if p.is_file()}
    assert after == before


def test_render_removes_the_dag_of_a_deleted_spec(project):
    assert runner.invoke(app, ["render", "--stage", "dev"]).exit_code == 0
    shutil.rmtree(project / "pipelines/scifi_quality")
    result = runner.invoke(app, ["render", "--stage", "dev", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["removed"] == ["dags/scifi_quality.py"]
    assert not (project / "build/dev/dags/scifi_quality.py").exists()


def test_render_of_one_pipeline_keeps_the_other_pipelines_output(project):
    assert runner.invoke(app, ["render", "--stage", "dev"]).exit_code == 0
    before = sorted(p.name for p in (project / "build/dev/dags").iterdir())
    result = runner.invoke(app, ["render", "--stage", "dev", "movielens_scifi", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["removed"] == []
    assert sorted(p.name for p in (project / "build/dev/dags").iterdir()) == before


def test_render_of_an_unknown_pipeline_or_stage_is_refused(project):
    assert runner.invoke(app, ["render", "--stage", "qa"]).exit_code == 1
    result = runner.invoke(app, ["render", "--stage", "dev", "nope"])
    assert result.exit_code == 1 and "no pipeline named nope" in str(result.exception)
