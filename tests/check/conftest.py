"""Airflow venv discovery for the DagBag tests: each test runs under Airflow 2 and 3, or skips."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mwaa_elt.check import airflow_python
from mwaa_elt.errors import ConfigError

SAMPLE_DAGS = Path(__file__).with_name("sample_dags")


def _missing_reason(major: int) -> str | None:
    try:
        airflow_python(major)
    except ConfigError as error:
        return f"no Airflow {major} venv ({error}); `make airflow-envs` builds it"
    return None


def _with_airflow(major: int) -> object:
    reason = _missing_reason(major)
    return pytest.param(
        major,
        id=f"airflow{major}",
        marks=pytest.mark.skipif(reason is not None, reason=reason or ""),
    )


AIRFLOW_MAJORS = [_with_airflow(2), _with_airflow(3)]


@pytest.fixture(scope="module", params=AIRFLOW_MAJORS)
def airflow_major(request: pytest.FixtureRequest) -> int:
    """2 and 3, each skipped when its venv is missing."""
    return request.param


@pytest.fixture(scope="module")
def sample_dags(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch copy of the hand-written sample DAG files, one fault per file."""
    folder = tmp_path_factory.mktemp("dags")
    for source in SAMPLE_DAGS.glob("*.py"):
        shutil.copy(source, folder / source.name)
    return folder
