"""Run DAG files with Airflow's own test runner (`dag.test()`); write what happened as JSON.

Runs inside an Airflow environment (not the tool's venv), so it imports nothing from mwaa_elt:
`python dagrun_probe.py --dag-file F --dag-id D --logical-date 2024-01-01 --out result.json`
(`--dag-file/--dag-id` repeat to run several DAGs in order). AWS settings come from the
environment the tool passes (the sandbox's endpoint and credentials).

A local run changes three things in each DAG, and only here: tasks do not retry (the sandbox is
deterministic, and Airflow would wait out the retry delay), sensors poke every second and give up
after --sensor-timeout seconds instead of waiting hours, and deferred tasks run their trigger in
line (what `dag.test()` does).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ERRORS: dict[tuple[str, str], str] = {}
RENDERED: dict[tuple[str, str], dict[str, Any]] = {}
# When each task ran (epoch seconds): the tool files the sandbox's records under the task.
WINDOWS: dict[tuple[str, str], list[tuple[float, float]]] = {}
TRIGGER_ERROR: list[str] = []

# The templated fields worth showing per operator: what a task ran.
SHOWN_FIELDS = (
    "query",
    "steps",
    "bucket_key",
    "bucket",
    "prefix",
    "job_flow_id",
    "step_id",
    "op_kwargs",
)


def _plain(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except TypeError:
        return repr(value)


def _remember(task_instance: Any) -> None:
    task = getattr(task_instance, "task", None)
    if task is None:
        return
    fields = {name: _plain(getattr(task, name)) for name in SHOWN_FIELDS if hasattr(task, name)}
    RENDERED[(task_instance.dag_id, task_instance.task_id)] = fields


class Listener:
    """Airflow listener (pluggy hooks): keeps each failed task's error and rendered fields."""

    def __init__(self) -> None:
        from airflow.listeners import hookimpl

        # pluggy accepts implementations with fewer arguments than the spec, so one signature
        # serves Airflow 2 (which also passes `session`) and Airflow 3.
        @hookimpl
        def on_task_instance_failed(previous_state: Any, task_instance: Any, error: Any) -> None:
            key = (task_instance.dag_id, task_instance.task_id)
            ERRORS[key] = _message(error)
            _remember(task_instance)

        @hookimpl
        def on_task_instance_success(previous_state: Any, task_instance: Any) -> None:
            _remember(task_instance)

        self.on_task_instance_failed = on_task_instance_failed
        self.on_task_instance_success = on_task_instance_success


def _message(error: Any) -> str:
    if error is None:
        return "failed (no error was reported)"
    if isinstance(error, BaseException):
        text = str(error).strip()
        return f"{type(error).__name__}: {text}" if text else type(error).__name__
    return str(error)


def _watch_task_runs() -> None:
    """Wrap `dag.test()`'s task and in-line trigger runners to note each task's time and error.

    A trigger that raises (an Athena query that FAILED, an EMR step that failed) fails its task
    without calling listeners, so its error is taken here.
    """
    import airflow

    if airflow.__version__.startswith("2."):
        from airflow.models import dag as module
    else:
        from airflow.sdk.definitions import dag as module
    run_task, run_trigger = module._run_task, module._run_inline_trigger

    def run_inline_trigger(trigger: Any) -> Any:
        try:
            return run_trigger(trigger)
        except Exception as error:
            TRIGGER_ERROR.append(_message(error))
            raise

    def watched_run_task(*args: Any, **kwargs: Any) -> Any:
        ti = kwargs["ti"]
        key = (ti.dag_id, ti.task_id)
        began = time.time()
        TRIGGER_ERROR.clear()
        try:
            return run_task(*args, **kwargs)
        except Exception as error:
            ERRORS.setdefault(key, _message(error))
            if "session" in kwargs and ti.state not in ("success", "failed", "skipped"):
                # Airflow 2 leaves a task whose trigger raised unfinished, and dag.test() would
                # wait for it forever; its triggerer would fail the task, so fail it here.
                ti.handle_failure(error, session=kwargs["session"])
                kwargs["session"].commit()
            raise
        finally:
            WINDOWS.setdefault(key, []).append((began, time.time()))
            if TRIGGER_ERROR:
                ERRORS.setdefault(key, TRIGGER_ERROR[-1])

    module._run_task = watched_run_task
    module._run_inline_trigger = run_inline_trigger


def _prepare(dag: Any, sensor_timeout: float) -> None:
    """Local-run settings: no retries; sensors poke each second and time out fast."""
    from airflow.sensors.base import BaseSensorOperator

    for task in dag.tasks:
        task.retries = 0
        if isinstance(task, BaseSensorOperator) and type(task).__name__ != "EmrStepSensor":
            if hasattr(task, "deferrable"):
                task.deferrable = False
            task.mode = "poke"
            task.poke_interval = 1.0
            task.timeout = sensor_timeout


def _load(dag_file: str, dag_id: str) -> Any:
    import airflow
    from airflow.models.dagbag import DagBag

    bag = DagBag(dag_folder=dag_file, include_examples=False, safe_mode=False)
    if dag_file in bag.import_errors:
        raise RuntimeError(f"{dag_file} does not import: {bag.import_errors[dag_file]}")
    dag = bag.dags.get(dag_id)
    if dag is None:
        raise RuntimeError(f"{dag_file} defines no DAG {dag_id!r}")
    if not airflow.__version__.startswith("2."):
        # What Airflow 3's DAG processor does before any run: record the DAG and activate its
        # assets (a task whose outlets are inactive assets fails).
        from airflow.dag_processing.bundles.manager import DagBundlesManager

        DagBundlesManager().sync_bundles_to_db()
        bag.sync_to_db(bundle_name="dags-folder", bundle_version=None)
    return dag


def _reuse_execution_api() -> None:
    """Build Airflow 3's in-process Execution API once, not once per task run: speed only.

    `dag.test()` creates the FastAPI app anew for every task (and again after a deferral);
    the app holds no state of a run, so one instance serves them all.
    """
    import functools

    from airflow.sdk.execution_time import supervisor

    supervisor.in_process_api_server = functools.cache(supervisor.in_process_api_server)


def _run(dag: Any, logical_date: datetime) -> tuple[Any, float]:
    import airflow

    started = time.monotonic()
    if airflow.__version__.startswith("2."):
        run = dag.test(execution_date=logical_date)
    else:
        run = dag.test(logical_date=logical_date)
    return run, time.monotonic() - started


def _seconds(ti: Any) -> float | None:
    if ti.start_date and ti.end_date:
        return (ti.end_date - ti.start_date).total_seconds()
    return None


def _report(dag: Any, run: Any, seconds: float) -> dict[str, Any]:
    from airflow.utils.session import create_session

    tasks = []
    with create_session() as session:
        for ti in sorted(
            run.get_task_instances(session=session),
            key=lambda t: (t.start_date or datetime.max.replace(tzinfo=UTC), t.task_id),
        ):
            key = (dag.dag_id, ti.task_id)
            task = dag.task_dict.get(ti.task_id)
            tasks.append(
                {
                    "task_id": ti.task_id,
                    "operator": type(task).__name__ if task is not None else None,
                    "state": str(ti.state.value if hasattr(ti.state, "value") else ti.state),
                    "seconds": _seconds(ti),
                    "error": ERRORS.get(key),
                    "windows": WINDOWS.get(key, []),
                    "fields": RENDERED.get(key, {}),
                    "is_teardown": bool(getattr(task, "is_teardown", False)),
                }
            )
        state = run.state.value if hasattr(run.state, "value") else run.state
    return {"dag_id": dag.dag_id, "state": str(state), "seconds": seconds, "tasks": tasks}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dag-file", action="append", required=True)
    parser.add_argument("--dag-id", action="append", required=True)
    parser.add_argument("--logical-date", required=True)
    parser.add_argument("--sensor-timeout", type=float, default=10.0)
    # Run every DAG again for the same date, as Airflow's "clear" does: proves a re-run works.
    parser.add_argument("--passes", type=int, default=1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    out = Path(args.out)
    try:
        import airflow
        from airflow.listeners.listener import get_listener_manager

        get_listener_manager().add_listener(Listener())
        if not airflow.__version__.startswith("2."):
            _reuse_execution_api()
        _watch_task_runs()
        logical_date = datetime.fromisoformat(args.logical_date).replace(tzinfo=UTC)
        dags = []
        for dag_file, dag_id in zip(args.dag_file, args.dag_id, strict=True):
            dag = _load(dag_file, dag_id)
            _prepare(dag, args.sensor_timeout)
            dags.append(dag)
        runs = []
        for number in range(1, args.passes + 1):
            for dag in dags:
                ERRORS.clear()
                RENDERED.clear()
                WINDOWS.clear()
                began = time.time()
                run, seconds = _run(dag, logical_date)
                window = {"pass": number, "began": began, "ended": time.time()}
                runs.append(_report(dag, run, seconds) | window)
        result = {"airflow_version": airflow.__version__, "runs": runs}
    except Exception as error:  # reported as data; the tool shows the message, not a traceback
        result = {
            "error": _message(error),
            "traceback": traceback.format_exc(),
        }
    out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
