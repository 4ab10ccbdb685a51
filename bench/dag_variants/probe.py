"""Time how Airflow parses a folder of DAG files; run inside the benchmark's Airflow venv.

Uses only the standard library and Airflow (plus whatever the DAG files import), and prints one
JSON object on stdout. Three modes, all with Airflow's own code:

  describe   one DagBag over a whole folder, every DAG described as comparable data
  fill       a DagBag per file in this process, the folders (variants) alternating file by file
  scheduler  one forked process per file, as Airflow 3's DAG processor does it: the parent
             pre-imports the Airflow modules the file names (parsing_pre_import_modules), the
             child builds a DagBag of that one file and serializes its DAGs; several folders
             are parsed file by file in alternation

All first initialise Airflow's ProvidersManager (see _warm_up_providers).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

# Run as a script, this file's folder heads sys.path; the bench's own modules there must not
# shadow what DAG files import (dag-factory's `dagfactory`, for one).
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

# What the DAG processor has imported before it parses any file (see dagbag_probe.CORE_MODULES).
CORE_MODULES = (
    "pendulum",
    "airflow.models.dag",
    "airflow.models.baseoperator",
    "airflow.timetables.interval",
    "airflow.timetables.trigger",
    "airflow.sdk",
    "airflow.sdk.definitions.dag",
)
# Constructor arguments that are not template fields but change what a task does.
TASK_ATTRIBUTES = (
    "deferrable",
    "poke_interval",
    "timeout",
    "mode",
    "max_attempts",
    "wildcard_match",
    "execution_timeout",
    "wait_for_completion",
    "depends_on_past",
    "pool",
    "queue",
    "priority_weight",
    "email",
    "email_on_failure",
    "do_xcom_push",
)
PACKAGES = (
    "apache-airflow",
    "apache-airflow-core",
    "apache-airflow-task-sdk",
    "apache-airflow-providers-amazon",
    "apache-airflow-providers-smtp",
    "apache-airflow-providers-standard",
    "apache-airflow-providers-common-sql",
    "dag-factory",
    "pendulum",
    "PyYAML",
)


def _prepare_environment(folder: Path) -> None:
    """A throw-away Airflow home whose DAGs folder is `folder`, no examples, quiet logs."""
    home = tempfile.mkdtemp(prefix="bench-airflow-home-")
    os.environ["AIRFLOW_HOME"] = home
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(folder)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "ERROR"


def _load_dagbag_probe() -> Any:
    """mwaa-elt's own DagBag probe (stdlib + Airflow only), loaded from the source tree."""
    path = Path(__file__).resolve().parents[2] / "src" / "mwaa_elt" / "check" / "dagbag_probe.py"
    spec = importlib.util.spec_from_file_location("dagbag_probe", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_DAGBAG_PROBE = _load_dagbag_probe()
_stdout_to_stderr = _DAGBAG_PROBE._stdout_to_stderr
_seconds = _DAGBAG_PROBE._seconds


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def _import_all(modules: list[str]) -> list[str]:
    imported = []
    for name in dict.fromkeys(modules):
        try:
            importlib.import_module(name)
        except Exception:
            continue
        imported.append(name)
    return imported


def _warm_up_providers() -> float:
    """Initialise what every variant's first Asset would (ProvidersManager's URI handlers).

    It is the same one-time cost for every variant (a few hundred ms); paid before the clock
    starts, the numbers show what the files themselves cost.
    """
    started = time.perf_counter()
    from airflow.sdk import Asset

    Asset(name="bench.warm_up", uri="s3://bench/warm-up")
    return time.perf_counter() - started


def _airflow_imports(folder: Path) -> list[str]:
    """The Airflow modules the .py files of `folder` import (Airflow's own scan)."""
    from airflow.utils.file import iter_airflow_imports

    modules: list[str] = []
    for path in sorted(folder.rglob("*.py")):
        modules.extend(iter_airflow_imports(str(path)))
    return modules


# --- what a loaded DAG is, as comparable data ---------------------------------------------------


def plain(value: Any) -> Any:
    """`value` as JSON-ready data, precise enough to tell two differently built DAGs apart."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, timedelta):
        return {"timedelta_seconds": value.total_seconds()}
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [plain(v) for v in value]
        return sorted(items, key=json.dumps) if isinstance(value, set | frozenset) else items
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    if hasattr(value, "uri") and hasattr(value, "name"):  # Asset / Dataset
        return {"asset": kind, "name": value.name, "uri": value.uri}
    fields = getattr(value, "template_fields", None)
    if fields is not None and hasattr(value, "notify"):  # a notifier
        return {"notifier": kind, "fields": {f: plain(getattr(value, f, None)) for f in fields}}
    if callable(value):
        module, name = getattr(value, "__module__", "?"), getattr(value, "__qualname__", "?")
        return {"callable": f"{module}.{name}"}
    return {"object": kind}


def _callbacks(value: Any) -> list[Any]:
    """A callback setting as a list, however it was given (one callable or a list of them)."""
    if value is None:
        return []
    return [plain(v) for v in (value if isinstance(value, list | tuple) else [value])]


def describe_task(task: Any) -> dict[str, Any]:
    group = task.task_group
    return {
        "operator": f"{type(task).__module__}.{type(task).__qualname__}",
        "group": None if group is None or group.is_root else group.group_id,
        "upstream": sorted(task.upstream_task_ids),
        "owner": task.owner,
        "retries": task.retries,
        "retry_delay": plain(task.retry_delay),
        "trigger_rule": str(getattr(task.trigger_rule, "value", task.trigger_rule)),
        "is_setup": bool(getattr(task, "is_setup", False)),
        "is_teardown": bool(getattr(task, "is_teardown", False)),
        "on_failure_callback": _callbacks(task.on_failure_callback),
        "outlets": plain(list(task.outlets or [])),
        "fields": {name: plain(getattr(task, name, None)) for name in task.template_fields},
        "attributes": {
            name: plain(getattr(task, name)) for name in TASK_ATTRIBUTES if hasattr(task, name)
        },
    }


def describe_dag(dag: Any) -> dict[str, Any]:
    default_args = dict(dag.default_args or {})
    if "on_failure_callback" in default_args:
        default_args["on_failure_callback"] = _callbacks(default_args["on_failure_callback"])
    return {
        "dag_id": dag.dag_id,
        "description": dag.description,
        "doc_md": dag.doc_md,
        "schedule": dag.timetable.summary,
        "timetable": type(dag.timetable).__name__,
        "start_date": plain(dag.start_date),
        "end_date": plain(dag.end_date),
        "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs,
        "max_active_tasks": dag.max_active_tasks,
        "is_paused_upon_creation": dag.is_paused_upon_creation,
        "tags": sorted(dag.tags or []),
        "default_args": plain(default_args),
        "on_failure_callback": _callbacks(dag.on_failure_callback),
        "tasks": {task.task_id: describe_task(task) for task in dag.tasks},
    }


# --- the two ways of parsing ----------------------------------------------------------------------


def _prepare_airflow(pre_import_from: Path) -> dict[str, Any]:
    """Import Airflow, the core modules and what the files of `pre_import_from` import."""
    started = time.perf_counter()
    import airflow

    pre_imported = _import_all(list(CORE_MODULES) + _airflow_imports(pre_import_from))
    warm_up = _warm_up_providers()
    return {
        "airflow_version": airflow.__version__,
        "python_version": ".".join(map(str, sys.version_info[:3])),
        "versions": versions(),
        "pre_imported": len(pre_imported),
        "providers_warm_up_seconds": warm_up,
        "startup_seconds": time.perf_counter() - started,
    }


def describe_folder(folder: Path) -> dict[str, Any]:
    """Fill one DagBag from `folder` and describe its DAGs: the equivalence check's input."""
    report = _prepare_airflow(folder)
    from airflow.models.dagbag import DagBag

    bag = DagBag(dag_folder=str(folder), include_examples=False, load_op_links=False)
    return {
        **report,
        "dag_count": len(bag.dags),
        "task_count": sum(len(dag.tasks) for dag in bag.dags.values()),
        "import_errors": {Path(p).name: str(m)[-2000:] for p, m in bag.import_errors.items()},
        "dags": {dag_id: describe_dag(bag.dags[dag_id]) for dag_id in sorted(bag.dags)},
    }


def _fill_file(path: Path) -> dict[str, Any]:
    """A DagBag of one file, timed around and by Airflow itself (`dagbag_stats`)."""
    from airflow.models.dagbag import DagBag

    started, cpu_started = time.perf_counter(), time.process_time()
    bag = DagBag(dag_folder=str(path), include_examples=False, load_op_links=False)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    stats = bag.dagbag_stats
    return {
        "file": path.name,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "stat_seconds": _seconds(stats[0].duration) if stats else None,
        "dags": len(bag.dags),
        "tasks": sum(len(dag.tasks) for dag in bag.dags.values()),
        "import_errors": len(bag.import_errors),
    }


def fill(
    folders: list[Path], files: list[str], warm_up: list[str], pre_import_from: Path
) -> dict[str, Any]:
    """Fill a DagBag with each file of each folder, the folders alternating file by file.

    The files named by `warm_up` are parsed once per folder first, untimed: one-time costs (lazy
    imports, dag-factory's own import) are not any file's. Alternating makes every variant see
    the same moment's load on a shared machine.
    """
    report = _prepare_airflow(pre_import_from)
    for name in warm_up:
        for folder in folders:
            _fill_file(folder / name)
    results: dict[str, list[dict[str, Any]]] = {folder.name: [] for folder in folders}
    for index, name in enumerate(files):
        shift = index % len(folders)
        for folder in folders[shift:] + folders[:shift]:
            results[folder.name].append(_fill_file(folder / name))
    return {**report, "variants": results}


def _parse_in_child(path: Path, folder: Path, write_fd: int) -> None:
    """The forked child: what Airflow's DAG processor runs for one file (`_parse_file`)."""
    status = 0
    try:
        import structlog
        from airflow.dag_processing.processor import _serialize_dags
        from airflow.models.dagbag import DagBag

        started, cpu_started = time.perf_counter(), time.process_time()
        bag = DagBag(
            dag_folder=str(path), bundle_path=folder, include_examples=False, load_op_links=False
        )
        parsed, cpu_parsed = time.perf_counter(), time.process_time()
        serialized, errors = _serialize_dags(bag, structlog.get_logger())
        done = time.perf_counter()
        stats = bag.dagbag_stats
        result = {
            "file": path.name,
            "parse_seconds": parsed - started,
            "parse_cpu_seconds": cpu_parsed - cpu_started,
            "serialize_seconds": done - parsed,
            "stat_seconds": _seconds(stats[0].duration) if stats else None,
            "dags": len(bag.dags),
            "serialized": len(serialized),
            "import_errors": len(bag.import_errors) + len(errors),
        }
        os.write(write_fd, json.dumps(result).encode())
    except BaseException as error:  # the child must never return into the parent's code
        os.write(write_fd, json.dumps({"file": path.name, "error": repr(error)}).encode())
        status = 1
    finally:
        os.close(write_fd)
        os._exit(status)


def _parse_forked(path: Path, folder: Path) -> dict[str, Any]:
    """Fork a child that parses `path`; its report plus the parent's view of the process."""
    read_fd, write_fd = os.pipe()
    forked = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _parse_in_child(path, folder, write_fd)
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    wall = time.perf_counter() - forked
    result = json.loads(b"".join(chunks) or b"{}")
    result["process_seconds"] = wall
    result["exit_status"] = status
    return result


def scheduler(folders: list[Path], files: list[str]) -> dict[str, Any]:
    """Parse each file in a forked child of a process that looks like Airflow's DAG processor.

    With several folders (variants whose files import the same Airflow modules), each file name
    is parsed from every folder in turn, in an order that alternates, so that the variants are
    compared under the same moment's load.
    """
    started = time.perf_counter()
    import airflow
    import structlog
    from airflow.dag_processing import manager  # noqa: F401  what the processor's parent holds
    from airflow.dag_processing.processor import _pre_import_airflow_modules

    log = structlog.get_logger()
    warm_up = _warm_up_providers()
    startup = time.perf_counter() - started
    results: dict[str, list[dict[str, Any]]] = {folder.name: [] for folder in folders}
    for index, name in enumerate(files):
        shift = index % len(folders)
        for folder in folders[shift:] + folders[:shift]:
            path = folder / name
            _pre_import_airflow_modules(str(path), log)
            results[folder.name].append(_parse_forked(path, folder))
    return {
        "airflow_version": airflow.__version__,
        "startup_seconds": startup,
        "providers_warm_up_seconds": warm_up,
        "variants": results,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=("describe", "fill", "scheduler"))
    parser.add_argument(
        "--dags-folder", type=Path, action="append", required=True, help="fill, scheduler: 1+"
    )
    parser.add_argument("--files", nargs="*", default=[], help="fill, scheduler: files to parse")
    parser.add_argument("--warm-up", nargs="*", default=[], help="fill: files parsed untimed")
    parser.add_argument("--pre-import-from", type=Path, help="fill: import what these files do")
    args = parser.parse_args(argv)
    folders = [folder.resolve() for folder in args.dags_folder]
    if args.mode == "describe" and len(folders) != 1:
        parser.error("describe takes one --dags-folder")
    _prepare_environment(folders[0])
    try:
        with _stdout_to_stderr() as out:
            if args.mode == "describe":
                report = describe_folder(folders[0])
            elif args.mode == "fill":
                source = (args.pre_import_from or folders[0]).resolve()
                report = fill(folders, args.files, args.warm_up, source)
            else:
                report = scheduler(folders, args.files)
            json.dump(report, out)  # in Airflow's order: dicts keep their key order
            out.write("\n")
    finally:
        shutil.rmtree(os.environ["AIRFLOW_HOME"], ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
