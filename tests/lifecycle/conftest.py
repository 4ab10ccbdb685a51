"""A moto server per test session, and a scratch project whose dev stage runs Airflow 2.11.0."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from airflow_lines import environment_overrides
from upgrade_support import set_airflow_version

from mwaa_elt.promote.sandbox import Sandbox, create_stage_buckets, sandbox
from mwaa_elt.stage import Stage


@pytest.fixture(scope="session")
def moto_server(stages: dict[str, Stage]) -> Iterator[Sandbox]:
    with sandbox(stages) as running:
        yield running


@pytest.fixture
def endpoint(
    moto_server: Sandbox, stages: dict[str, Stage], monkeypatch: pytest.MonkeyPatch
) -> str:
    """A fresh emulated account: every stage's bucket exists and is empty."""
    requests.post(f"{moto_server.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()
    create_stage_buckets(moto_server.endpoint_url, stages)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_server.endpoint_url


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
