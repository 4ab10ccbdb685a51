"""Shared fixtures: the project's own stacks, and a scratch project to break stack files in."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from mwaa_elt.promote.sandbox import Sandbox, create_stage_buckets, sandbox
from mwaa_elt.stage import Stage, load_all_stages

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("dev", "staging", "prod")


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def stages() -> dict[str, Stage]:
    return load_all_stages(ROOT / "stacks")


@pytest.fixture
def scratch_project(tmp_path: Path) -> Path:
    """A copy of the project's Pulumi.yaml and stacks/ that a test may edit."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    return tmp_path


# A moto server per test session (per xdist worker), shared by the promote and lifecycle tests.
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
