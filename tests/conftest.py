"""Shared fixtures: the project's own stacks, and a scratch project to break stack files in."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

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
