"""Prove generated DAG files with Airflow's own DagBag, under the Airflow line a stage runs.

Airflow cannot live in the main venv, so each Airflow version has its own environment built from
MWAA's image (`make airflow-envs`, airflow_environments.py), and `dagbag_probe.py` runs there in
a fresh process; this module runs it, reads its JSON and applies the gate rules. It returns data;
the CLI formats it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mwaa_elt.airflow_environments import airflow_python
from mwaa_elt.errors import ConfigError, ExternalError

PROBE = Path(__file__).with_name("dagbag_probe.py")
PROBE_TIMEOUT_SECONDS = 300.0
DEFAULT_OWNER = "airflow"

# Rule names, in the order findings are reported.
IMPORTS = "imports"
PARSE_TIME = "parse_time"
DAG_ID_MATCHES_FILE = "dag_id_matches_file"
UNIQUE_DAG_ID = "unique_dag_id"
CYCLE = "no_cycle"
OWNER = "owner"
RETRIES = "retries"
TAGS = "tags"
FAILURE_NOTIFICATION = "failure_notification"


@dataclass(frozen=True)
class Finding:
    """One rule's verdict on a file or one of its DAGs; a failed warning does not fail the check."""

    rule: str
    ok: bool
    message: str
    warning: bool = False
    dag_id: str | None = None

    @property
    def blocking(self) -> bool:
        return not self.ok and not self.warning


@dataclass(frozen=True)
class FileReport:
    """The findings for one DAG file, with the DAG ids it defines and its parse time."""

    path: Path
    dag_ids: tuple[str, ...]
    parse_seconds: float
    findings: tuple[Finding, ...]
    airflow_warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not any(f.blocking for f in self.findings)


@dataclass(frozen=True)
class CheckReport:
    """A DagBag check of one folder under one Airflow version."""

    airflow_version: str
    dags_folder: Path
    budget_seconds: float
    probe_seconds: float
    files: tuple[FileReport, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.files)

    def file(self, name: str) -> FileReport:
        """The report of the file called `name` (e.g. `sales.py`); KeyError when absent."""
        for report in self.files:
            if report.path.name == name:
                return report
        raise KeyError(name)


@dataclass(frozen=True)
class RenderedTask:
    """A task's templated fields as Airflow rendered them for one scheduled run."""

    dag_id: str
    task_id: str
    logical_date: str
    data_interval_start: str
    data_interval_end: str
    fields: dict[str, Any]


def _probe_environment(home: Path, dags_folder: Path) -> dict[str, str]:
    """The caller's environment without Airflow settings, plus a throw-away Airflow home."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AIRFLOW") and key not in ("PYTHONPATH", "PYTHONHOME")
    }
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags_folder),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__LOGGING__LOGGING_LEVEL="ERROR",
        # Importing a DAG file must not leave __pycache__ next to it in the build folder.
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def run_probe(
    dags_folder: Path,
    airflow_version: str,
    *,
    renders: Sequence[tuple[str, str, str]] = (),
    project_root: Path | None = None,
) -> tuple[dict[str, Any], float]:
    """Run the DagBag probe over `dags_folder` in the MWAA environment; its JSON and wall time."""
    if not dags_folder.is_dir():
        raise ConfigError(f"{dags_folder}: no such folder of DAG files; render the pipelines first")
    python = airflow_python(airflow_version, project_root)
    folder = dags_folder.resolve()
    command = [str(python), str(PROBE), "--dags-folder", str(folder)]
    for dag_id, task_id, logical_date in renders:
        command += ["--render-templates", dag_id, task_id, logical_date]
    with tempfile.TemporaryDirectory(prefix="mwaa-elt-airflow-home-") as home:
        started = time.monotonic()
        try:
            done = subprocess.run(
                command,
                env=_probe_environment(Path(home), folder),
                capture_output=True,
                text=True,
                timeout=PROBE_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise _timed_out(airflow_version, folder) from error
        elapsed = time.monotonic() - started
    return _probe_json(done.returncode, done.stdout, done.stderr, airflow_version, python), elapsed


def _timed_out(airflow_version: str, folder: Path) -> ExternalError:
    return ExternalError(
        f"Airflow {airflow_version} DagBag probe over {folder} did not finish in "
        f"{PROBE_TIMEOUT_SECONDS:.0f} s"
    )


def _probe_json(
    returncode: int, stdout: str, stderr: str, airflow_version: str, python: Path
) -> dict[str, Any]:
    try:
        data = json.loads(stdout)
    except json.JSONDecodeError:
        data = None
    if returncode != 0 or not isinstance(data, dict):
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        raise ExternalError(
            f"Airflow {airflow_version} DagBag probe ({python}) failed with exit code "
            f"{returncode}:\n{tail}"
        )
    return data


@dataclass
class StartedProbe:
    """A DagBag probe importing Airflow while its caller still writes the DAG files into
    folders (the probe's `--wait`): `run_started_each` loads them, each in a process forked from
    it, `cancel_probe` ends it and anything it forked."""

    airflow_version: str
    python: Path
    dags_folder: Path
    process: subprocess.Popen[str]
    started: float
    scratch: tempfile.TemporaryDirectory[str]
    sent: tuple[Path, ...] | None = None  # the folders `send_folders` asked it to load


def start_probe(
    airflow_version: str, *, project_root: Path | None = None, niceness: int = 0
) -> StartedProbe:
    """Start the probe of `airflow_version` on an empty folder of its own, `niceness` below
    the caller's priority where the system has priorities, in a process group of its own (what
    it forks ends with it); ConfigError when the environment is not built."""
    python = airflow_python(airflow_version, project_root)
    scratch = tempfile.TemporaryDirectory(prefix="mwaa-elt-probe-")
    folder = Path(scratch.name, "dags").resolve()
    home = Path(scratch.name, "home")
    folder.mkdir()
    home.mkdir()
    command = [str(python), str(PROBE), "--dags-folder", str(folder), "--wait"]
    try:
        process = subprocess.Popen(
            command,
            env=_probe_environment(home, folder),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            process_group=0,
        )
    except OSError:
        scratch.cleanup()
        raise
    if niceness and hasattr(os, "setpriority"):
        with contextlib.suppress(OSError):
            current = os.getpriority(os.PRIO_PROCESS, 0)
            os.setpriority(os.PRIO_PROCESS, process.pid, current + niceness)
    return StartedProbe(airflow_version, python, folder, process, time.monotonic(), scratch)


def send_folders(probe: StartedProbe, folders: Sequence[Path]) -> None:
    """Ask the started probe to load each of `folders` in its own forked process as soon as
    Airflow is imported, and return at once: `run_started_each` collects the reports. A probe
    that has ended already is left for `run_started_each` to report."""
    if probe.sent is not None:
        raise ValueError("the probe was sent its folders already")
    stdin = probe.process.stdin
    assert stdin is not None  # started with a pipe
    with contextlib.suppress(BrokenPipeError):  # `communicate` closes it
        stdin.write(json.dumps([str(folder.resolve()) for folder in folders]) + "\n")
        stdin.flush()
    probe.sent = tuple(folders)  # only once written: a failed write leaves it to be sent again


def run_started_each(
    probe: StartedProbe, folders: Sequence[Path], *, budget_seconds: float = 1.0
) -> tuple[CheckReport, ...]:
    """Load each of `folders` in its own process forked from the started probe once Airflow is
    imported, all at once (one import, however many cores share the files); one report per
    folder, in order, each what `run_dagbag` would give for it. Folders sent ahead
    (`send_folders`) are not sent again: `folders` must be those."""
    if probe.sent is None:
        send_folders(probe, folders)
    elif probe.sent != tuple(folders):
        raise ValueError("the probe was sent other folders than those asked for")
    try:
        try:
            stdout, stderr = probe.process.communicate(timeout=PROBE_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired as error:
            _end(probe.process)
            probe.process.communicate()
            shown = folders[0] if len(folders) == 1 else folders[0].parent
            raise _timed_out(probe.airflow_version, shown) from error
        elapsed = time.monotonic() - probe.started
        data = _probe_json(
            probe.process.returncode, stdout, stderr, probe.airflow_version, probe.python
        )
    finally:
        probe.scratch.cleanup()
    reports = data.get("reports")
    if not isinstance(reports, list) or len(reports) != len(folders):
        raise ExternalError(
            f"Airflow {probe.airflow_version} DagBag probe ({probe.python}) answered "
            f"{len(reports) if isinstance(reports, list) else 'no'} report(s) for "
            f"{len(folders)} folder(s)"
        )
    return tuple(_report(part, budget_seconds, elapsed) for part in reports)


def cancel_probe(probe: StartedProbe) -> None:
    """End a started probe that will not be needed, with what it forked, and remove its folder."""
    _end(probe.process)
    for stream in (probe.process.stdin, probe.process.stdout, probe.process.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    probe.scratch.cleanup()


def _end(process: subprocess.Popen[str]) -> None:
    """Kill a probe still running and every process it forked (its process group)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):  # not the leader of a group of its own
            process.kill()
    process.wait()


def run_dagbag(
    dags_folder: Path,
    airflow_version: str,
    *,
    budget_seconds: float = 1.0,
    project_root: Path | None = None,
) -> CheckReport:
    """Load `dags_folder` with the DagBag of Airflow `airflow_version`; apply the rules per file."""
    data, elapsed = run_probe(dags_folder, airflow_version, project_root=project_root)
    return _report(data, budget_seconds, elapsed)


def _report(data: dict[str, Any], budget_seconds: float, elapsed: float) -> CheckReport:
    return CheckReport(
        airflow_version=data["airflow_version"],
        dags_folder=Path(data["dags_folder"]),
        budget_seconds=budget_seconds,
        probe_seconds=elapsed,
        files=evaluate(data, budget_seconds),
    )


def render_tasks(
    dags_folder: Path,
    airflow_version: str,
    tasks: Sequence[tuple[str, str]],
    logical_date: str,
    *,
    project_root: Path | None = None,
) -> dict[tuple[str, str], RenderedTask]:
    """Render the templated fields of (dag_id, task_id) pairs for the run at `logical_date`.

    One Airflow process renders them all; XComs, Variables and Connections become placeholders
    such as `<xcom:create_cluster>`, since no run exists.
    """
    data, _ = run_probe(
        dags_folder,
        airflow_version,
        renders=[(dag_id, task_id, logical_date) for dag_id, task_id in tasks],
        project_root=project_root,
    )
    rendered: dict[tuple[str, str], RenderedTask] = {}
    for item in data["renders"]:
        where = f"{item['dag_id']}.{item['task_id']}"
        if "error" in item:
            raise ConfigError(f"{dags_folder}: cannot render {where}: {item['error']}")
        rendered[(item["dag_id"], item["task_id"])] = RenderedTask(
            dag_id=item["dag_id"],
            task_id=item["task_id"],
            logical_date=item["logical_date"],
            data_interval_start=item["data_interval_start"],
            data_interval_end=item["data_interval_end"],
            fields=item["fields"],
        )
    return rendered


def evaluate(probe: dict[str, Any], budget_seconds: float) -> tuple[FileReport, ...]:
    """Apply the gate rules to a probe's JSON; pure, so the rules are testable without Airflow."""
    errors: dict[str, dict[str, Any]] = probe["import_errors"]
    dags_by_file: dict[str, list[dict[str, Any]]] = {}
    for dag in probe["dags"]:
        dags_by_file.setdefault(dag["fileloc"], []).append(dag)
    # DagBag keeps the first file with a dag_id and rejects the others; blame every file involved.
    duplicates: dict[str, list[tuple[str, str]]] = {}
    for path, error in errors.items():
        if error["kind"] == "duplicate_dag_id":
            duplicates.setdefault(path, []).append((error["dag_id"], error["other"]))
            duplicates.setdefault(error["other"], []).append((error["dag_id"], path))
    reports = []
    for entry in probe["files"]:
        path = entry["path"]
        findings = _file_findings(
            Path(path), errors.get(path), dags_by_file.get(path, []), duplicates.get(path, [])
        )
        findings.insert(1, _parse_time(entry["parse_seconds"], budget_seconds))
        reports.append(
            FileReport(
                path=Path(path),
                dag_ids=tuple(entry["dag_ids"]),
                parse_seconds=entry["parse_seconds"],
                findings=tuple(findings),
                airflow_warnings=tuple(entry.get("warnings", ())),
            )
        )
    return tuple(reports)


def _file_findings(
    path: Path,
    error: dict[str, Any] | None,
    dags: list[dict[str, Any]],
    duplicates: list[tuple[str, str]],
) -> list[Finding]:
    if error and error["kind"] == "cycle":
        return [Finding(CYCLE, False, _error_summary(error["message"], path))]
    if error and error["kind"] == "import":
        return [Finding(IMPORTS, False, _error_summary(error["message"], path))]
    findings = [Finding(IMPORTS, True, "imports cleanly")]
    if error:  # a duplicate dag_id: this file's DAG was rejected, so only that is reported
        return findings + [_duplicate(dag_id, other) for dag_id, other in duplicates]
    if not dags:
        findings.append(Finding(DAG_ID_MATCHES_FILE, False, "defines no DAG"))
    for dag in dags:
        clashes = [(d, other) for d, other in duplicates if d == dag["dag_id"]]
        findings += _dag_findings(path, dag, clashes)
    return findings


def _duplicate(dag_id: str, other: str) -> Finding:
    return Finding(
        UNIQUE_DAG_ID,
        False,
        f"dag_id {dag_id!r} is also defined in {Path(other).name}; Airflow keeps only one of them",
        dag_id=dag_id,
    )


def _dag_findings(path: Path, dag: dict[str, Any], clashes: list[tuple[str, str]]) -> list[Finding]:
    dag_id: str = dag["dag_id"]
    tasks: list[dict[str, Any]] = dag["tasks"]

    def finding(rule: str, ok: bool, message: str, warning: bool = False) -> Finding:
        return Finding(rule, ok, message, warning=warning, dag_id=dag_id)

    findings = [
        finding(DAG_ID_MATCHES_FILE, True, f"dag_id {dag_id!r} matches the file name")
        if dag_id == path.stem
        else finding(
            DAG_ID_MATCHES_FILE,
            False,
            f"dag_id {dag_id!r} differs from the file name {path.name!r}; "
            f"name the file {dag_id}.py or the DAG {path.stem!r}",
        )
    ]
    if clashes:
        findings += [_duplicate(dag_id, other) for _, other in clashes]
    else:
        findings.append(finding(UNIQUE_DAG_ID, True, f"dag_id {dag_id!r} is unique"))
    findings.append(
        finding(CYCLE, False, dag["cycle_error"] or "the task graph has a cycle")
        if dag["has_cycle"]
        else finding(CYCLE, True, "the task graph has no cycle")
    )
    unowned = [
        t["task_id"] for t in tasks if (t["owner"] or "").strip().lower() in ("", DEFAULT_OWNER)
    ]
    findings.append(
        finding(
            OWNER,
            False,
            f"tasks without an owning team (owner is {DEFAULT_OWNER!r}, Airflow's default): "
            f"{', '.join(unowned)}; set default_args['owner']",
        )
        if unowned
        else finding(OWNER, True, f"owned by {', '.join(dag['owners'])}")
    )
    no_retry = [t["task_id"] for t in tasks if (t["retries"] or 0) < 1]
    findings.append(
        finding(
            RETRIES,
            False,
            f"tasks that never retry: {', '.join(no_retry)}; set default_args['retries'] >= 1",
        )
        if no_retry
        else finding(RETRIES, True, "every task retries at least once")
    )
    findings.append(
        finding(TAGS, True, f"tagged {', '.join(dag['tags'])}")
        if dag["tags"]
        else finding(TAGS, False, "no tags; tag the DAG so it can be found in the Airflow UI")
    )
    silent = [
        t["task_id"]
        for t in tasks
        if not t["on_failure_callback"] and not (t["email_on_failure"] and t["email"])
    ]
    findings.append(
        finding(
            FAILURE_NOTIFICATION,
            False,
            f"nobody is told when these tasks fail: {', '.join(silent)}; "
            "set email with email_on_failure, or an on_failure_callback",
            warning=True,
        )
        if silent and not dag["on_failure_callback"]
        else finding(FAILURE_NOTIFICATION, True, "failures notify someone")
    )
    return findings


def _parse_time(seconds: float, budget: float) -> Finding:
    if seconds <= budget:
        return Finding(PARSE_TIME, True, f"parsed in {seconds:.3f} s (budget {budget:.3f} s)")
    return Finding(
        PARSE_TIME,
        False,
        f"parsed in {seconds:.3f} s, over the budget of {budget:.3f} s; "
        "move work out of the file's top level",
    )


def _error_summary(message: str, path: Path) -> str:
    """The last line of the file named in a traceback, and the exception: `line 3: NameError: …`."""
    lines = [line for line in message.strip().splitlines() if line.strip()]
    exception = lines[-1].strip() if lines else message
    frames = re.findall(rf'File "{re.escape(str(path))}", line (\d+)', message)
    return f"line {frames[-1]}: {exception}" if frames else exception
