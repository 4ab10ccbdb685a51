"""requirements.txt against the constraints of MWAA's image for a target Airflow version."""

from __future__ import annotations

from pathlib import Path

import pytest

from mwaa_elt.lifecycle.rehearsal import target_stage
from mwaa_elt.lifecycle.requirements_check import check_requirements
from mwaa_elt.stage import Stage

HEADER = (
    '--constraint "https://raw.githubusercontent.com/apache/airflow/'
    'constraints-{airflow_version}/constraints-{python_version}.txt"\n'
)


@pytest.fixture
def staging(stages: dict[str, Stage]) -> Stage:
    assert stages["staging"].airflow.version == "2.11.0"
    return stages["staging"]


def findings(tmp_path: Path, staging: Stage, body: str, to: str = "3.0.6") -> list[tuple]:
    source = tmp_path / "requirements.txt"
    source.write_text(HEADER + body)
    found = check_requirements(source, target_stage(staging, to), staging, shown="req.txt")
    return [(f.line, f.kind, f.blocking) for f in found]


def test_requirements_the_constraints_allow_pass(tmp_path: Path, staging: Stage) -> None:
    body = "apache-airflow-providers-amazon\napache-airflow-providers-common-sql>=1.20\n"
    assert findings(tmp_path, staging, body) == []


def test_a_pin_the_target_constrains_differently_conflicts_at_its_line(
    tmp_path: Path, staging: Stage
) -> None:
    body = "# comment\nrequests==2.32.3\napache-airflow-providers-amazon<9.10\n"
    assert findings(tmp_path, staging, body) == [(3, "conflict", True), (4, "conflict", True)]
    assert findings(tmp_path, staging, body, to="2.11.0") == []  # what 2.11.0 pins


def test_a_requirement_against_mwaa_essential_pins_is_refused(
    tmp_path: Path, staging: Stage
) -> None:
    found = check_requirements(
        _write(tmp_path, "Flask-AppBuilder==4.5.3\n"), target_stage(staging, "3.0.6"), staging
    )
    assert [(f.line, f.kind) for f in found] == [(2, "essential")]
    assert "Flask-AppBuilder==4.5.3" in found[0].requirement
    assert "flask-appbuilder==4.6.3" in found[0].message and "remove the line" in found[0].message


def test_a_package_the_target_no_longer_constrains_is_reported_not_blocking(
    tmp_path: Path, staging: Stage
) -> None:
    assert findings(tmp_path, staging, "apache-airflow-providers-tabular\n") == [
        (2, "dropped", False)
    ]


def test_a_marker_false_on_the_target_python_is_reported(tmp_path: Path, staging: Stage) -> None:
    body = 'tomli; python_version < "3.11"\n'
    assert findings(tmp_path, staging, body) == [(2, "marker", False)]


def test_the_build_rules_apply_for_the_target(tmp_path: Path, staging: Stage) -> None:
    body = "apache-airflow==2.11.0\n-e ./local\n"
    assert findings(tmp_path, staging, body) == [(2, "invalid", True), (3, "invalid", True)]
    found = check_requirements(
        _write(tmp_path, body), target_stage(staging, "3.0.6"), staging, shown="req.txt"
    )
    assert found[0].message.startswith("'apache-airflow==2.11.0' requires Airflow itself")


def test_an_indented_requirement_is_located_at_its_column(tmp_path: Path, staging: Stage) -> None:
    found = check_requirements(
        _write(tmp_path, "   requests==2.0\n"), target_stage(staging, "3.0.6"), staging
    )
    assert [(f.line, f.col, f.kind) for f in found] == [(2, 4, "conflict")]


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "requirements.txt"
    path.write_text(HEADER + body)
    return path
