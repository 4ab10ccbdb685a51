"""The gate rules as Airflow's own DagBag sees hand-written DAG files, under Airflow 2 and 3.

One probe run per Airflow version for the whole sample folder (Airflow takes seconds to start).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from mwaa_elt.airflow_environments import airflow_python
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
    run_started_each,
    send_folders,
    start_probe,
)
from mwaa_elt.check.dagbag import PROBE, StartedProbe, _end
from mwaa_elt.errors import ExternalError

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
    (warm,) = run_started_each(started, [started.dags_folder], budget_seconds=BUDGET_SECONDS)
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


def _findings(reports: list[CheckReport] | tuple[CheckReport, ...]) -> list[tuple[str, list]]:
    return sorted(
        (file.path.name, [(x.rule, x.ok) for x in file.findings])
        for report in reports
        for file in report.files
    )


def test_a_started_probe_loads_each_folder_in_a_forked_process_with_the_same_verdicts(
    report: CheckReport, sample_dags: Path, airflow_version: str, tmp_path: Path
) -> None:
    """`run_started_each` (the promotion's DagBag gate, one share per core): each folder is
    loaded in a process forked from the probe once Airflow is imported, and every file gets the
    verdicts one fresh process over all of them gives. The folders can be sent ahead
    (`send_folders`, as soon as the files are written) and collected later."""
    files = sorted(sample_dags.glob("*.py"))
    twins = [f for f in files if f.name.startswith("twin_")]  # a clash is seen within a folder
    others = [f for f in files if f not in twins]
    folders = []
    for index, share in enumerate([twins + others[::2], others[1::2]]):
        folder = tmp_path / f"part-{index}"
        folder.mkdir()
        for source in share:
            shutil.copy(source, folder / source.name)
        folders.append(folder)
    started = start_probe(airflow_version)
    send_folders(started, folders)  # returns at once: the probe loads them when it can
    with pytest.raises(ValueError, match="sent its folders already"):
        send_folders(started, folders[:1])
    with pytest.raises(ValueError, match="other folders"):
        run_started_each(started, folders[:1])
    parts = run_started_each(started, folders, budget_seconds=BUDGET_SECONDS)
    assert [part.dags_folder for part in parts] == [folder.resolve() for folder in folders]
    assert [len(part.files) for part in parts] == [len(list(f.glob("*.py"))) for f in folders]
    assert _findings(parts) == _findings([report])
    assert started.process.returncode == 0
    assert not Path(started.scratch.name).exists()


def test_a_forked_load_that_dies_fails_the_whole_load_naming_its_folder(
    sample_dags: Path, airflow_version: str, tmp_path: Path
) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    shutil.copy(sample_dags / "sales_orders.py", good / "sales_orders.py")
    (bad / "dies.py").write_text("import os\n\nos._exit(3)\n")
    with pytest.raises(ExternalError) as raised:
        run_started_each(start_probe(airflow_version), [good, bad])
    text = "\n".join(raised.value.messages)
    assert f"{bad.resolve()}: the process loading it ended with 3" in text
    assert str(good.resolve()) + ":" not in text


def _running(pid: int) -> bool:
    """Whether `pid` is a live process (not gone, not a zombie nobody reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_ending_a_probe_ends_the_loads_it_forked(airflow_version: str, tmp_path: Path) -> None:
    """A load cut short (Ctrl-C, the probe's time limit, a gate that is abandoned) leaves no
    Airflow process behind: the probe runs in its own process group, ended whole."""
    pids = tmp_path / "pids"
    pids.mkdir()
    folders = []
    for index in range(2):
        folder = tmp_path / f"part-{index}"
        folder.mkdir()
        (folder / f"slow_{index}.py").write_text(
            f"import os\nimport time\n\nopen(os.path.join({str(pids)!r}, str(os.getpid())), 'w')"
            ".close()\ntime.sleep(300)\n"
        )
        folders.append(folder)
    started = start_probe(airflow_version)
    failures: list[BaseException] = []

    def load() -> None:
        try:
            run_started_each(started, folders)
        except BaseException as error:  # what the gate's caller would see
            failures.append(error)

    loading = threading.Thread(target=load)
    loading.start()
    deadline = time.monotonic() + 120
    while len(list(pids.iterdir())) < len(folders) and time.monotonic() < deadline:
        time.sleep(0.1)
    forked = [int(path.name) for path in pids.iterdir()]
    assert len(forked) == len(folders) and started.process.pid not in forked
    assert all(_running(pid) for pid in forked)
    _end(started.process)
    deadline = time.monotonic() + 10  # well before Airflow's own import timeout (30 s)
    while any(_running(pid) for pid in forked) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_running(pid) for pid in forked)
    loading.join(timeout=60)
    cancel_probe(started)
    assert not loading.is_alive() and isinstance(failures[0], ExternalError)


def test_every_kind_of_import_is_imported_before_the_files_are_timed(
    airflow_version: str, tmp_path: Path
) -> None:
    """The probe imports what the files import before it times them, as the scheduler does; a
    file whose import lines repeat another's is not parsed again, and each distinct set of
    import lines still counts, wherever it comes in the folder."""
    kinds = {
        "a": "from airflow.utils.trigger_rule import TriggerRule\n",
        "b": "from airflow.utils.helpers import chain\n",
        "c": "from airflow.utils.trigger_rule import TriggerRule\nimport airflow.utils.weight_rule\n",
    }
    folder = tmp_path / "dags"
    folder.mkdir()
    for index, kind in enumerate("aababac"):
        (folder / f"f{index}.py").write_text(f"# {index}\n{kinds[kind]}x = {index}\n")
    done = subprocess.run(
        [str(airflow_python(airflow_version)), str(PROBE), "--dags-folder", str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "AIRFLOW_HOME": str(tmp_path / "home")},
        check=True,
    )
    imported = set(json.loads(done.stdout)["pre_imported"])
    assert {
        "airflow.utils.trigger_rule",
        "airflow.utils.helpers",
        "airflow.utils.weight_rule",
    } <= imported


def test_folders_are_recorded_as_sent_only_once_written(tmp_path: Path) -> None:
    """A write the pipe refuses (other than a probe that has ended) leaves the probe unsent, so
    the gate sends its own folders instead of waiting for a load that was never asked for."""

    class RefusingPipe:
        def write(self, text: str) -> None:
            raise OSError(22, "Invalid argument")

    process = SimpleNamespace(stdin=RefusingPipe())
    probe = StartedProbe("3.0.6", Path("python"), tmp_path, process, 0.0, None)  # type: ignore[arg-type]
    with pytest.raises(OSError, match="Invalid argument"):
        send_folders(probe, [tmp_path])
    assert probe.sent is None
