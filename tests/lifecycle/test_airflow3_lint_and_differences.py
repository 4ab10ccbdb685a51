"""ruff's Airflow 3 rules with positions in the user's files, and the run-time differences a
pipeline's spec exposes when its stage crosses between Airflow 2 and 3."""

from __future__ import annotations

from pathlib import Path

from mwaa_elt.lifecycle.airflow3_lint import collect_sources, embedded_python, lint_python
from mwaa_elt.lifecycle.runtime_differences import differences

STARTUP = """#!/bin/sh
set -e
echo start
python3 - <<'PY'
import os
from airflow.operators.dummy import DummyOperator
DummyOperator(task_id="x")
PY
echo done
"""


def test_python_here_documents_of_a_shell_script_keep_their_lines() -> None:
    assert embedded_python(STARTUP) == [
        (
            5,
            'import os\nfrom airflow.operators.dummy import DummyOperator\nDummyOperator(task_id="x")\n',
        )
    ]
    assert embedded_python("#!/bin/sh\ncat <<EOF\nnot python\nEOF\n") == []


def test_findings_name_the_file_line_and_rule_and_only_removals_block(tmp_path: Path) -> None:
    startup = tmp_path / "startup.sh"
    startup.write_text(STARTUP)
    plugin = tmp_path / "plugin.py"
    plugin.write_text(
        "from airflow import DAG\n\nwith DAG('x', schedule_interval='@daily'):\n    pass\n"
    )
    found = lint_python(collect_sources({"plugins/plugin.py": plugin}, startup))
    shown = [(f.path, f.line, f.col, f.rule, f.blocking) for f in found]
    assert sorted(shown) == sorted(
        [
            ("plugins/plugin.py", 3, 6, "AIR311", False),  # airflow.DAG: still works in 3.0
            ("plugins/plugin.py", 3, 15, "AIR301", True),  # schedule_interval: removed
            (str(startup), 7, 1, "AIR302", True),  # DummyOperator, on the script's own line
        ]
    )
    assert any("schedule_interval" in f.message for f in found if f.rule == "AIR301")


def test_clean_python_has_no_findings() -> None:
    assert (
        lint_python({"ok.py": "from airflow.sdk import DAG\n\nDAG(dag_id='x', schedule=None)\n"})
        == ()
    )


def _pipeline(tmp_path: Path, schedule: str, sql: str) -> tuple[Path, Path]:
    folder = tmp_path / "pipelines" / "p"
    folder.mkdir(parents=True)
    spec = folder / "p.yaml"
    spec.write_text(
        f"pipeline: p\nschedule: {schedule}\ntasks:\n  - id: a\n    athena: {{sql_file: a.sql}}\n"
    )
    (folder / "a.sql").write_text(sql)
    return folder, spec


def test_a_cron_pipeline_reading_ds_changes_meaning_on_airflow_3(tmp_path: Path) -> None:
    folder, spec = _pipeline(tmp_path, "'0 3 * * *'", "SELECT 1\nWHERE ds = '{{ ds }}'\n")
    found = differences("p", folder, spec, 2, 3, tmp_path)
    assert [(d.path, d.line, d.col, d.topic) for d in found] == [
        ("(bundle) pipelines/p/a.sql", 2, 13, "cron-logical-date")
    ]
    assert "CronTriggerTimetable" in found[0].message
    assert differences("p", folder, spec, 2, 3, tmp_path, cron_intervals=True) == []
    assert differences("p", folder, spec, 2, 2, tmp_path) == []  # no line crossed


def test_an_asset_scheduled_pipeline_has_no_logical_date_on_airflow_3(tmp_path: Path) -> None:
    folder, spec = _pipeline(
        tmp_path, "{after: [q.table]}", "SELECT '{{ run_id }}', '{{ ts }}', '{{ next_ds }}'\n"
    )
    found = differences("p", folder, spec, 2, 3, tmp_path)
    assert [(d.path.rsplit("/", 1)[-1], d.line, d.topic) for d in found] == [
        ("p.yaml", 2, "asset-schedule"),
        ("a.sql", 1, "asset-logical-date"),  # ts
        ("a.sql", 1, "removed-context"),  # next_ds
    ]
    back = differences("p", folder, spec, 3, 2, tmp_path)
    assert [d.topic for d in back] == ["asset-schedule"]
