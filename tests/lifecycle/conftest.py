"""A moto server per test session, and a scratch project whose dev stage runs Airflow 2.11.0."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from airflow_lines import environment_overrides
from upgrade_support import set_airflow_version


@pytest.fixture
def project(
    scratch_project: Path, project_root: Path, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The examples, templates and environment files in a scratch project; dev on 2.11.0."""
    for folder in ("pipelines", "dag_templates", "infra/environment"):
        shutil.copytree(project_root / folder, scratch_project / folder)
    set_airflow_version(scratch_project, "dev", "2.11.0")
    for variable, python in environment_overrides().items():
        monkeypatch.setenv(variable, python)
    monkeypatch.chdir(scratch_project)
    return scratch_project
