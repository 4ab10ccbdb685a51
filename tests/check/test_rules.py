"""Gate rules on fixed probe output, and how the Airflow venvs are found; no Airflow needed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mwaa_elt import airflow_environments
from mwaa_elt.airflow_environments import airflow_python
from mwaa_elt.check import (
    FAILURE_NOTIFICATION,
    IMPORTS,
    PARSE_TIME,
    UNIQUE_DAG_ID,
    evaluate,
    run_dagbag,
)
from mwaa_elt.errors import ConfigError

FOLDER = "/dags"


def task(task_id: str, **overrides: Any) -> dict[str, Any]:
    values = {
        "task_id": task_id,
        "owner": "sales-analytics",
        "retries": 1,
        "email": ["sales-data@example.com"],
        "email_on_failure": True,
        "on_failure_callback": False,
    }
    return values | overrides


def dag(dag_id: str, *tasks: dict[str, Any], file: str | None = None, **overrides: Any) -> dict:
    values = {
        "dag_id": dag_id,
        "fileloc": f"{FOLDER}/{file or dag_id}.py",
        "tags": ["sales"],
        "owners": ["sales-analytics"],
        "has_cycle": False,
        "cycle_error": None,
        "on_failure_callback": False,
        "tasks": list(tasks),
    }
    return values | overrides


def probe(*dags: dict, errors: dict | None = None, seconds: float = 0.01) -> dict[str, Any]:
    paths = sorted({d["fileloc"] for d in dags} | set(errors or {}))
    files = [
        {
            "path": path,
            "parse_seconds": seconds,
            "dag_ids": [d["dag_id"] for d in dags if d["fileloc"] == path],
        }
        for path in paths
    ]
    return {"files": files, "import_errors": errors or {}, "dags": list(dags)}


def failing(report_findings: tuple) -> list[str]:
    return [f.rule for f in report_findings if not f.ok]


def test_parse_time_over_budget_fails_with_both_numbers() -> None:
    (report,) = evaluate(probe(dag("slow", task("t")), seconds=1.5), 1.0)
    finding = next(f for f in report.findings if f.rule == PARSE_TIME)
    assert not finding.ok
    assert "1.500 s" in finding.message and "1.000 s" in finding.message


def test_a_task_callback_counts_as_notification() -> None:
    alerting = task("t", email_on_failure=False, on_failure_callback=True)
    (report,) = evaluate(probe(dag("alerting", alerting)), 1.0)
    assert failing(report.findings) == []


def test_email_on_failure_without_addresses_is_not_notification() -> None:
    (report,) = evaluate(probe(dag("mute", task("t", email_on_failure=True, email=[]))), 1.0)
    (finding,) = [f for f in report.findings if not f.ok]
    assert (finding.rule, finding.warning) == (FAILURE_NOTIFICATION, True)
    assert report.ok


def test_duplicate_reported_on_kept_and_rejected_file() -> None:
    message = f"AirflowDagDuplicatedIdException: Ignoring DAG x from {FOLDER}/b.py - also found in"
    error = {
        "kind": "duplicate_dag_id",
        "dag_id": "x",
        "other": f"{FOLDER}/a.py",
        "message": f"{message} {FOLDER}/a.py",
    }
    kept, rejected = evaluate(
        probe(dag("x", task("t"), file="a"), errors={f"{FOLDER}/b.py": error}), 1.0
    )
    assert failing(kept.findings) == ["dag_id_matches_file", UNIQUE_DAG_ID]
    assert [(f.rule, f.ok) for f in rejected.findings] == [
        (IMPORTS, True),
        (PARSE_TIME, True),
        (UNIQUE_DAG_ID, False),
    ]


def test_a_file_without_a_dag_fails() -> None:
    data = probe()
    data["files"] = [{"path": f"{FOLDER}/helpers.py", "parse_seconds": 0.0, "dag_ids": []}]
    (report,) = evaluate(data, 1.0)
    assert [(f.rule, f.ok, f.message) for f in report.findings][-1] == (
        "dag_id_matches_file",
        False,
        "defines no DAG",
    )


def test_missing_environment_says_how_to_build_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MWAA_ELT_AIRFLOW_PYTHON_3_0_6", raising=False)
    monkeypatch.setattr(airflow_environments, "TOOL_ROOT", tmp_path / "tool")
    with pytest.raises(
        ConfigError, match=r"Airflow 3\.0\.6 image is missing; run `make airflow-envs`"
    ):
        airflow_python("3.0.6", root=tmp_path)


def test_env_var_overrides_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    python = tmp_path / "python"
    python.touch()
    monkeypatch.setenv("MWAA_ELT_AIRFLOW_PYTHON_2_11_0", str(python))
    assert airflow_python("2.11.0", root=tmp_path / "elsewhere") == python
    monkeypatch.setenv("MWAA_ELT_AIRFLOW_PYTHON_2_11_0", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="MWAA_ELT_AIRFLOW_PYTHON_2_11_0"):
        airflow_python("2.11.0")


def test_version_without_an_mwaa_image_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"Airflow 1\.10\.12 is not vendored"):
        airflow_python("1.10.12")


def test_missing_dags_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such folder"):
        run_dagbag(tmp_path / "nowhere", "3.0.6")
