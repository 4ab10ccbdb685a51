"""The DagBag tests run under both Airflow lines, each in its MWAA environment."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from airflow_lines import AIRFLOW_VERSION, python_of_line

SAMPLE_DAGS = Path(__file__).with_name("sample_dags")


@pytest.fixture(scope="module", params=[pytest.param(m, id=f"airflow{m}") for m in (2, 3)])
def airflow_major(request: pytest.FixtureRequest) -> int:
    """2 and 3; the line's MWAA environment must be built (`make airflow-envs`)."""
    python_of_line(request.param)
    return request.param


@pytest.fixture(scope="module")
def airflow_version(airflow_major: int) -> str:
    return AIRFLOW_VERSION[airflow_major]


@pytest.fixture(scope="module")
def sample_dags(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch copy of the hand-written sample DAG files, one fault per file."""
    folder = tmp_path_factory.mktemp("dags")
    for source in SAMPLE_DAGS.glob("*.py"):
        shutil.copy(source, folder / source.name)
    return folder
