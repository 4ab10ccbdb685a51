"""Test files: the published JSON Schema, and the test `mwaa-elt new` scaffolds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from mwaa_elt.cli import app
from mwaa_elt.spec.yaml_source import load_yaml
from mwaa_elt.sqltest import sqltest_json_schema_text

runner = CliRunner()


def test_published_schema_is_current(project_root):
    published = (project_root / "pipelines/test.schema.json").read_text()
    assert published == sqltest_json_schema_text(), (
        "regenerate: mwaa-elt schema --tests --out pipelines/test.schema.json"
    )


def test_schema_command_prints_the_test_schema():
    result = runner.invoke(app, ["schema", "--tests"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["title"] == "mwaa-elt SQL tests"


def test_every_example_test_file_follows_the_schema_and_names_it(project_root):
    schema = json.loads((project_root / "pipelines/test.schema.json").read_text())
    files = sorted(project_root.glob("pipelines/*/tests/*.yaml"))
    assert files
    for path in files:
        text = path.read_text()
        assert text.startswith("# yaml-language-server: $schema=../../test.schema.json\n"), path
        doc, problems = load_yaml(path.read_bytes())
        assert doc is not None, problems
        jsonschema.validate(doc.data, schema)


def test_schema_refuses_what_the_loader_refuses(project_root):
    schema = json.loads((project_root / "pipelines/test.schema.json").read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {"tests": [{"name": "x", "task": "t", "expect": {}, "oops": 1}]}, schema
        )


@pytest.fixture
def project(scratch_project: Path, project_root: Path, monkeypatch) -> Path:
    shutil.copytree(project_root / "pipelines", scratch_project / "pipelines")
    monkeypatch.chdir(scratch_project)
    return scratch_project


def test_new_athena_pipeline_comes_with_passing_sql_tests(project):
    created = runner.invoke(app, ["new", "fresh_one"])
    assert created.exit_code == 0, created.output
    assert "pipelines/fresh_one/tests/fresh_one.yaml" in created.stdout
    result = runner.invoke(app, ["test", "fresh_one"])
    assert result.exit_code == 0, result.output
    assert "2 passed, 0 failed, 0 error(s)" in result.stdout


def test_the_scaffolded_test_fails_when_the_query_breaks(project):
    runner.invoke(app, ["new", "fresh_one"])
    spec = project / "pipelines/fresh_one/fresh_one.yaml"
    spec.write_text(spec.read_text().replace("count(*) AS row_count", "count(*) + 1 AS row_count"))
    result = runner.invoke(app, ["test", "fresh_one"])
    assert result.exit_code == 1
    assert "1 passed, 1 failed" in result.stdout
