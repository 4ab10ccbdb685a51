"""Shared by the render tests: paths, the example names, and stages forced onto an Airflow line."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from airflow_lines import AIRFLOW_VERSION

from mwaa_elt.stage import Stage

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "dag_templates"
GOLDEN = Path(__file__).with_name("golden")
FIXTURES = Path(__file__).with_name("fixtures")
STAGES = ("dev", "staging", "prod")
EXAMPLES = ("movielens_emr", "movielens_scifi", "scifi_quality")


def with_airflow(stage: Stage, major: int) -> Stage:
    """`stage` as if its stack file named the Airflow `major` release: proves both lines."""
    config = stage.config.model_copy(update={"airflow_version": AIRFLOW_VERSION[major]})
    return dataclasses.replace(stage, config=config)


def airflow_param(stage: str, major: int) -> object:
    return pytest.param(stage, major, id=f"{stage}-airflow{major}")


STAGE_X_AIRFLOW = [airflow_param(stage, major) for stage in STAGES for major in (2, 3)]
