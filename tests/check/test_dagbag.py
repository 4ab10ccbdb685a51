"""The gate rules as Airflow's own DagBag sees hand-written DAG files, under Airflow 2 and 3.

One probe run per Airflow version for the whole sample folder (Airflow takes seconds to start).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mwaa_elt.check import (
    CYCLE,
    DAG_ID_MATCHES_FILE,
    FAILURE_NOTIFICATION,
    IMPORTS,
    OWNER,
    PARSE_TIME,
    RETRIES,
    TAGS,
    UNIQUE_DAG_ID,
    CheckReport,
    cancel_probe,
    run_dagbag,
    run_started,
    start_probe,
)

DAG_RULES = [
    IMPORTS,
    PARSE_TIME,
    DAG_ID_MATCHES_FILE,
    UNIQUE_DAG_ID,
    CYCLE,
    OWNER,
    RETRIES,
    TAGS,
    FAILURE_NOTIFICATION,
]


def verdicts(failing: set[str]) -> list[tuple[str, bool]]:
    """Every rule of a loaded one-DAG file, failing exactly the rules in `failing`."""
    return [(rule, rule not in failing) for rule in DAG_RULES]


# Generous: the parse-time budget itself is tested on fixed numbers in test_rules.py.
BUDGET_SECONDS = 5.0


@pytest.fixture(scope="module")
def report(sample_dags: Path, airflow_version: str) -> CheckReport:
    return run_dagbag(sample_dags, airflow_version, budget_seconds=BUDGET_SECONDS)


@pytest.mark.parametrize(
    ("file", "expected"),
    [
        ("sales_orders.py", verdicts(set())),
        ("misnamed.py", verdicts({DAG_ID_MATCHES_FILE})),
        ("default_owner.py", verdicts({OWNER})),
        ("no_retries.py", verdicts({RETRIES})),
        ("untagged.py", verdicts({TAGS})),
        ("silent.py", verdicts({FAILURE_NOTIFICATION})),
        ("cyclic.py", [(CYCLE, False), (PARSE_TIME, True)]),
        ("broken_import.py", [(IMPORTS, False), (PARSE_TIME, True)]),
    ],
)
def test_each_sample_fails_exactly_its_rule(report: CheckReport, file: str, expected: list) -> None:
    assert [(f.rule, f.ok) for f in report.file(file).findings] == expected


def test_report_names_the_airflow_line_it_ran(report: CheckReport, airflow_major: int) -> None:
    assert report.airflow_version.split(".")[0] == str(airflow_major)
    assert report.file("sales_orders.py").dag_ids == ("sales_orders",)


def test_missing_notification_only_warns(report: CheckReport) -> None:
    silent = report.file("silent.py")
    (warning,) = [f for f in silent.findings if not f.ok]
    assert warning.warning and "load" in warning.message
    assert silent.ok


def test_rule_failures_fail_the_file_and_the_report(report: CheckReport) -> None:
    failing = {f.path.name for f in report.files if not f.ok}
    assert failing == {
        "misnamed.py",
        "default_owner.py",
        "no_retries.py",
        "untagged.py",
        "cyclic.py",
        "broken_import.py",
        "twin_1.py",
        "twin_2.py",
    }
    assert not report.ok


def test_messages_name_the_offending_tasks_and_lines(report: CheckReport) -> None:
    def message(file: str, rule: str) -> str:
        return next(f.message for f in report.file(file).findings if f.rule == rule)

    assert "'airflow'" in message("default_owner.py", OWNER)
    assert "load" in message("default_owner.py", OWNER)
    assert message("no_retries.py", RETRIES).startswith("tasks that never retry: once;")
    assert "Cycle detected in DAG: cyclic" in message("cyclic.py", CYCLE)
    assert "name the file not_the_file_name.py" in message("misnamed.py", DAG_ID_MATCHES_FILE)
    source = (Path(__file__).parent / "sample_dags" / "broken_import.py").read_text()
    line = next(i for i, text in enumerate(source.splitlines(), 1) if "AthenaQueryOperator" in text)
    assert message("broken_import.py", IMPORTS).startswith(
        f"line {line}: ImportError: cannot import name 'AthenaQueryOperator'"
    )


def test_duplicate_dag_id_is_reported_on_both_files(report: CheckReport) -> None:
    # DagBag keeps whichever twin it reads first (directory order), so check both symmetrically.
    for file, other in (("twin_1.py", "twin_2.py"), ("twin_2.py", "twin_1.py")):
        clash = [f for f in report.file(file).findings if f.rule == UNIQUE_DAG_ID]
        assert [(f.ok, f.dag_id) for f in clash] == [(False, "twin")]
        assert other in clash[0].message
    loaded = report.file("twin_1.py").dag_ids + report.file("twin_2.py").dag_ids
    assert loaded == ("twin",)


def test_checking_leaves_no_bytecode_in_the_dags_folder(
    report: CheckReport, sample_dags: Path
) -> None:
    assert not list(sample_dags.rglob("__pycache__"))


def test_a_probe_started_before_its_files_exist_reports_what_a_fresh_one_does(
    report: CheckReport, sample_dags: Path, airflow_version: str
) -> None:
    """`start_probe` imports Airflow first (the promotion's DagBag gate overlaps it with
    rendering); the DAG files written afterwards get the same verdicts."""
    started = start_probe(airflow_version)
    for source in sample_dags.glob("*.py"):
        shutil.copy(source, started.dags_folder / source.name)
    warm = run_started(started, budget_seconds=BUDGET_SECONDS)
    assert warm.airflow_version == report.airflow_version
    assert [(f.path.name, [(x.rule, x.ok) for x in f.findings]) for f in warm.files] == [
        (f.path.name, [(x.rule, x.ok) for x in f.findings]) for f in report.files
    ]
    assert not Path(started.scratch.name).exists()


def test_a_started_probe_that_is_not_needed_ends_and_leaves_nothing(airflow_version: str) -> None:
    started = start_probe(airflow_version, niceness=5)
    own = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, started.process.pid) == min(own + 5, 19)
    cancel_probe(started)
    assert started.process.returncode is not None
    assert not Path(started.scratch.name).exists()
