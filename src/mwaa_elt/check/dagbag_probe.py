"""Load a folder of DAG files with Airflow's own DagBag and print one JSON object describing it.

Runs inside an Airflow venv (2.x or 3.x) with only the standard library and Airflow, as
`<venv>/bin/python dagbag_probe.py --dags-folder DIR [--render-templates DAG_ID TASK_ID DATE]...`.
It never imports mwaa_elt, needs no metadata database, and writes only the JSON to stdout.
With `--wait` it imports Airflow first and loads the folder when a line arrives on standard
input: its caller writes the DAG files meanwhile. A line holding a JSON array of folders instead
loads each of them in a process forked after that import, all at once, and prints
`{"reports": [...]}`, one report per folder in order: Airflow is imported once however many cores
share the files, as the scheduler's DAG processor forks its parsers from a warm interpreter.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
import importlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

# What the scheduler's DAG processor has imported before it times a file: the DAG and operator
# machinery, so a file's parse time is its own cost (Airflow's `parsing_pre_import_modules`).
CORE_MODULES = (
    "pendulum",
    "airflow.models.dag",
    "airflow.models.baseoperator",
    "airflow.timetables.interval",
    "airflow.timetables.trigger",
    "airflow.sdk",
    "airflow.sdk.definitions.dag",
)
# The lines that can start an import statement: files whose lines of this kind are the same
# import the same modules, so only the first of them is parsed for its imports.
IMPORT_LINE = re.compile(rb"^[ \t]*(?:import|from)[ \t].*$", re.MULTILINE)
DUPLICATE = re.compile(
    r"Ignoring DAG (?P<dag_id>\S+) from (?P<path>.+) - also found in (?P<other>.+)$"
)


def _prepare_environment() -> None:
    """Give Airflow a throw-away home and no examples when the caller did not choose."""
    sys.dont_write_bytecode = True  # importing DAG files must not leave __pycache__ beside them
    if "AIRFLOW_HOME" not in os.environ:
        home = tempfile.mkdtemp(prefix="airflow-home-")
        atexit.register(shutil.rmtree, home, ignore_errors=True)
        os.environ["AIRFLOW_HOME"] = home
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "ERROR")


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[Any]:
    """Send everything written to fd 1 (Airflow's log handlers included) to stderr; yield stdout."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with os.fdopen(os.dup(saved), "w") as real_stdout:
            yield real_stdout
            real_stdout.flush()
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _seconds(value: Any) -> float:
    """A FileLoadStat duration as seconds: a timedelta in Airflow 2 and 3.0, a number later."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


def _pre_import(files: list[Path]) -> list[str]:
    """Import the core modules and every `airflow...` module the files import, ignoring failures.
    Airflow's own parser finds a file's imports; a file whose import lines are those of a file
    parsed already is not parsed again (generated DAG files share theirs)."""
    modules: list[str] = list(CORE_MODULES)
    try:
        from airflow.utils.file import iter_airflow_imports
    except ImportError:  # pragma: no cover - present in every supported version
        iter_airflow_imports = None
    if iter_airflow_imports is not None:
        parsed: set[tuple[bytes, ...]] = set()
        for path in files:
            with contextlib.suppress(Exception):
                lines = tuple(IMPORT_LINE.findall(path.read_bytes()))
                if lines in parsed:
                    continue
                parsed.add(lines)
                modules.extend(iter_airflow_imports(str(path)))
    imported = []
    for name in dict.fromkeys(modules):
        try:
            importlib.import_module(name)
        except Exception:
            continue
        imported.append(name)
    return imported


def _stat_path(raw: str, folder: Path) -> str:
    """The absolute path of a stats entry; Airflow 2 strips the configured DAGS_FOLDER prefix."""
    path = Path(raw)
    if path.is_absolute() and path.exists():
        return str(path)
    return str(folder / raw.lstrip("/"))


def _warning_text(item: Any) -> str:
    """A captured parse warning as one line, whether Airflow kept it as text or as an object."""
    if isinstance(item, warnings.WarningMessage):
        return f"{item.category.__name__}: {item.message}"
    return str(item)


def _classify_error(message: str) -> dict[str, Any]:
    """What kind of import error DagBag recorded: a cycle, a duplicate dag_id, or anything else."""
    if "AirflowDagCycleException" in message or "Cycle detected in DAG" in message:
        return {"kind": "cycle"}
    match = DUPLICATE.search(message.strip())
    if "AirflowDagDuplicatedIdException" in message and match:
        return {"kind": "duplicate_dag_id", "dag_id": match["dag_id"], "other": match["other"]}
    return {"kind": "import"}


def _callbacks(value: Any) -> bool:
    """Whether an on_failure_callback is set; Airflow 3 keeps an empty list when none is."""
    if value is None:
        return False
    if isinstance(value, list | tuple):
        return len(value) > 0
    return True


def _has_cycle(dag: Any) -> tuple[bool, str | None]:
    """Run Airflow's own cycle check on a loaded DAG."""
    try:
        from airflow.utils.dag_cycle_tester import check_cycle
    except ImportError:  # pragma: no cover - present in every supported version
        return False, None
    try:
        check_cycle(dag)
    except Exception as error:
        return True, f"{type(error).__name__}: {error}"
    return False, None


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None


def _describe_task(task: Any) -> dict[str, Any]:
    email = task.email
    emails = [email] if isinstance(email, str) else list(email or [])
    return {
        "task_id": task.task_id,
        "operator": type(task).__name__,
        "module": type(task).__module__,
        "owner": task.owner,
        "retries": task.retries,
        "email": emails,
        "email_on_failure": bool(task.email_on_failure),
        "on_failure_callback": _callbacks(task.on_failure_callback),
        "deferrable": getattr(task, "deferrable", None),
        "trigger_rule": str(getattr(task.trigger_rule, "value", task.trigger_rule)),
        "upstream": sorted(task.upstream_task_ids),
    }


def _describe_dag(dag: Any) -> dict[str, Any]:
    tasks = [_describe_task(task) for task in dag.tasks]
    has_cycle, cycle_error = _has_cycle(dag)
    timeout = dag.dagrun_timeout
    return {
        "dag_id": dag.dag_id,
        "fileloc": dag.fileloc,
        "schedule": dag.timetable.summary,
        "timetable": type(dag.timetable).__name__,
        "start_date": _iso(dag.start_date),
        "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs,
        "dagrun_timeout_seconds": timeout.total_seconds() if timeout else None,
        "tags": sorted(dag.tags or []),
        "owners": sorted({task["owner"] for task in tasks}),
        "task_count": len(tasks),
        "has_cycle": has_cycle,
        "cycle_error": cycle_error,
        "on_failure_callback": _callbacks(dag.on_failure_callback),
        "tasks": tasks,
    }


def import_airflow() -> float:
    """Import Airflow's DAG machinery and `CORE_MODULES`; the seconds it took.

    Airflow's modules live as long as the process: no collection can free any of them, so none
    runs while they are imported (`fill` freezes them after its own imports).
    """
    started = time.monotonic()
    gc.disable()
    importlib.import_module("airflow.models.dagbag")
    _pre_import([])
    return time.monotonic() - started


def fill(folder: Path, startup_before: float = 0.0) -> tuple[Any, dict[str, Any]]:
    """Fill a DagBag from `folder` and describe files, import errors and DAGs as JSON-ready data.
    `startup_before`: seconds `import_airflow` took, when it ran first."""
    started = time.monotonic()
    gc.disable()  # as in import_airflow, which may have run already
    import airflow
    from airflow.models.dagbag import DagBag

    files = sorted(folder.rglob("*.py"))
    pre_imported = _pre_import(files)
    gc.freeze()  # out of every later collection (about 0.4 s of a 4 s start-up)
    startup = startup_before + time.monotonic() - started

    # Nor does a collection run while the bag fills: its DAGs and operators stay alive, and a
    # full collection walks all of them each time the bag grows by a quarter (a tenth of the
    # time of a 2,500-file bag), landing in the parse time of whichever file it interrupts.
    started = time.monotonic()
    try:
        dagbag = DagBag(dag_folder=str(folder), include_examples=False, safe_mode=False)
    finally:
        gc.enable()
    fill_seconds = time.monotonic() - started

    errors = {str(path): str(message) for path, message in dagbag.import_errors.items()}
    captured = getattr(dagbag, "captured_warnings", {}) or {}
    dag_ids: dict[str, list[str]] = {}  # by file: one pass, not one per file
    for dag in dagbag.dags.values():
        dag_ids.setdefault(dag.fileloc, []).append(dag.dag_id)
    report_files = []
    for stat in dagbag.dagbag_stats:
        path = _stat_path(stat.file, folder)
        report_files.append(
            {
                "path": path,
                "parse_seconds": _seconds(stat.duration),
                "dag_ids": sorted(dag_ids.get(path, ())),
                "task_count": stat.task_num,
                "import_error": errors.get(path),
                "warnings": [_warning_text(w) for w in captured.get(path, ())],
            }
        )
    report = {
        "airflow_version": airflow.__version__,
        "python_version": ".".join(map(str, sys.version_info[:3])),
        "dags_folder": str(folder),
        "startup_seconds": startup,
        "fill_seconds": fill_seconds,
        "pre_imported": pre_imported,
        "files": sorted(report_files, key=lambda f: f["path"]),
        "import_errors": {
            path: {"message": message, **_classify_error(message)}
            for path, message in sorted(errors.items())
        },
        "dags": [_describe_dag(dagbag.dags[dag_id]) for dag_id in sorted(dagbag.dags)],
    }
    return dagbag, report


def fill_each(folders: list[Path], startup_before: float) -> list[str]:
    """`fill` each folder in a process forked from this one (Airflow imported already), all at
    once; their reports as JSON text, in order. A child that fails or dies fails the whole load.
    One folder is loaded here, with nothing to fork."""
    if len(folders) == 1:
        return [json.dumps(fill(folders[0], startup_before)[1], default=str)]
    # What the first file of each folder imports is imported here, once, not in every child:
    # generated DAG files share their imports (each child still imports what its files add).
    started = time.monotonic()
    _pre_import([files[0] for folder in folders if (files := sorted(folder.glob("*.py")))])
    startup_before += time.monotonic() - started
    children = []
    for folder in folders:
        answer = tempfile.TemporaryFile()  # noqa: SIM115 - read after the child exits
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: fill, write the report, leave without the parent's exit hooks
            code = 1
            try:
                report = fill(folder, startup_before)[1]
                answer.write(json.dumps(report, default=str).encode())
                answer.flush()
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stderr.flush()
                os._exit(code)
        children.append((pid, answer, folder))
    reports = []
    failed = []
    for pid, answer, folder in children:
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        if code != 0:
            failed.append(f"{folder}: the process loading it ended with {code}")
            continue
        answer.seek(0)
        reports.append(answer.read().decode())
    if failed:
        raise RuntimeError("; ".join(failed))
    return reports


def _folders(line: str) -> list[Path] | None:
    """The folders a `--wait` line asks to load in forked processes (a JSON array), or None for
    the one `--dags-folder`."""
    if not line.startswith("["):
        return None
    return [Path(folder).resolve() for folder in json.loads(line)]


class _Placeholder:
    """Stands in for run-time values (XComs, Variables, Connections) so templates render offline."""

    def __init__(self, path: str) -> None:
        self._path = path

    def __getattr__(self, name: str) -> _Placeholder:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Placeholder(f"{self._path}.{name}")

    def __getitem__(self, key: Any) -> _Placeholder:
        return _Placeholder(f"{self._path}[{key!r}]")

    def __call__(self, *args: Any, **kwargs: Any) -> _Placeholder:
        parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
        return _Placeholder(f"{self._path}({', '.join(parts)})")

    def __str__(self) -> str:
        return f"<{self._path}>"

    __repr__ = __str__


class _TaskInstanceStub:
    """The few task-instance attributes templates read; xcom_pull yields a placeholder."""

    def __init__(self, dag_id: str, task_id: str, run_id: str, logical_date: Any) -> None:
        self.dag_id = dag_id
        self.task_id = task_id
        self.run_id = run_id
        self.logical_date = logical_date
        self.try_number = 1
        self.map_index = -1

    def xcom_pull(self, task_ids: Any = None, key: str = "return_value", **_: Any) -> Any:
        suffix = "" if key == "return_value" else f":{key}"
        if isinstance(task_ids, list | tuple):
            return [_Placeholder(f"xcom:{t}{suffix}") for t in task_ids]
        return _Placeholder(f"xcom:{task_ids or self.task_id}{suffix}")


def _data_interval(dag: Any, logical_date: Any) -> tuple[Any, Any, Any]:
    """The scheduled run at or after `logical_date` per the DAG's timetable: date, start, end."""
    from airflow.timetables.base import TimeRestriction

    restriction = TimeRestriction(earliest=logical_date, latest=None, catchup=True)
    info = dag.timetable.next_dagrun_info(
        last_automated_data_interval=None, restriction=restriction
    )
    if info is None or info.logical_date is None:
        return logical_date, logical_date, logical_date
    return info.logical_date, info.data_interval.start, info.data_interval.end


def _macros() -> Any:
    for name in ("airflow.sdk.execution_time.macros", "airflow.macros"):
        with contextlib.suppress(ImportError):
            return importlib.import_module(name)
    return _Placeholder("macros")  # pragma: no cover


def _params(dag: Any, task: Any) -> dict[str, Any]:
    """DAG params overridden by task params, resolved to their values."""
    merged: dict[str, Any] = {}
    for params in (dag.params, task.params):
        merged.update(params.dump() if hasattr(params, "dump") else dict(params or {}))
    return merged


def render(dagbag: Any, dag_id: str, task_id: str, when: str) -> dict[str, Any]:
    """Render a task's templated fields with Airflow's Jinja environment for one scheduled run."""
    import pendulum

    dag = dagbag.dags[dag_id]
    task = dag.get_task(task_id)
    logical_date, start, end = _data_interval(dag, pendulum.parse(when, tz="UTC"))
    logical_date = pendulum.instance(logical_date)
    run_id = f"scheduled__{logical_date.isoformat()}"
    ti = _TaskInstanceStub(dag_id, task_id, run_id, logical_date)
    context: dict[str, Any] = {
        "dag": dag,
        "task": task,
        "ti": ti,
        "task_instance": ti,
        "run_id": run_id,
        "dag_run": _Placeholder("dag_run"),
        "logical_date": logical_date,
        "data_interval_start": pendulum.instance(start),
        "data_interval_end": pendulum.instance(end),
        "ds": logical_date.strftime("%Y-%m-%d"),
        "ds_nodash": logical_date.strftime("%Y%m%d"),
        "ts": logical_date.isoformat(),
        "ts_nodash": logical_date.strftime("%Y%m%dT%H%M%S"),
        "ts_nodash_with_tz": logical_date.isoformat().replace("-", "").replace(":", ""),
        "params": _params(dag, task),
        "macros": _macros(),
        "var": _Placeholder("var"),
        "conn": _Placeholder("conn"),
        "inlets": [],
        "outlets": [],
        "test_mode": False,
    }
    task.render_template_fields(context)
    return {
        "dag_id": dag_id,
        "task_id": task_id,
        "logical_date": logical_date.isoformat(),
        "data_interval_start": context["data_interval_start"].isoformat(),
        "data_interval_end": context["data_interval_end"].isoformat(),
        "fields": {name: getattr(task, name) for name in task.template_fields},
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, fill the DagBag, optionally render one task, print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dags-folder", type=Path, required=True)
    parser.add_argument(
        "--render-templates",
        nargs=3,
        action="append",
        default=[],
        metavar=("DAG_ID", "TASK_ID", "LOGICAL_DATE"),
        help="render a task's templated fields for the scheduled run at LOGICAL_DATE (repeatable)",
    )
    parser.add_argument(
        "--wait",
        action="store_true",
        help="import Airflow, then load the folder once a line arrives on standard input, or "
        "the folders that line names as a JSON array, each in a forked process (end of input "
        "instead: exit without loading)",
    )
    args = parser.parse_args(argv)
    _prepare_environment()
    with _stdout_to_stderr() as out:
        startup = 0.0
        folders = None
        if args.wait:
            startup = import_airflow()
            line = sys.stdin.readline().strip()
            if not line:
                return 0  # the caller needs no DagBag after all
            folders = _folders(line)
        if folders is not None:
            out.write('{"reports": [' + ", ".join(fill_each(folders, startup)) + "]}\n")
        else:
            dagbag, report = fill(args.dags_folder.resolve(), startup)
            report["renders"] = []
            for dag_id, task_id, when in args.render_templates:
                try:
                    rendered = render(dagbag, dag_id, task_id, when)
                except Exception as error:
                    rendered = {"dag_id": dag_id, "task_id": task_id, "error": f"{error!r}"}
                report["renders"].append(rendered)
            json.dump(report, out, default=str, sort_keys=True)
            out.write("\n")
    # What is alive now lives until exit: frozen, the collections the interpreter runs while it
    # shuts down skip it (1.4 s of Airflow's modules, DAGs and operators otherwise).
    gc.freeze()
    return 0


if __name__ == "__main__":
    sys.exit(main())
