"""Runs inside an Airflow venv: fills a DagBag the way mwaa-elt's probe does and prints, as one
JSON object, what each DAG carries from its spec, before Airflow's run-time templating.

Usage: <airflow venv>/bin/python fuzz_probe.py <path to mwaa_elt/check/dagbag_probe.py> <dags folder>
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any


def _load(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location("dagbag_probe", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _task(task: Any) -> dict[str, Any]:
    callbacks = task.on_failure_callback or []
    if not isinstance(callbacks, list | tuple):
        callbacks = [callbacks]
    return {
        "operator": type(task).__name__,
        "fields": {name: getattr(task, name, None) for name in task.template_fields},
        "email": task.email,
        "notify_to": [getattr(callback, "to", None) for callback in callbacks],
    }


def main() -> int:
    probe = _load(Path(sys.argv[1]))
    probe._prepare_environment()
    with probe._stdout_to_stderr() as out:
        dagbag, report = probe.fill(Path(sys.argv[2]).resolve())
        dags = {
            dag_id: {
                "description": dag.description,
                "doc_md": dag.doc_md,
                "tags": sorted(dag.tags or []),
                "tasks": {task.task_id: _task(task) for task in dag.tasks},
            }
            for dag_id, dag in dagbag.dags.items()
        }
        result = {
            "airflow_version": report["airflow_version"],
            "import_errors": report["import_errors"],
            "files": len(report["files"]),
            "dags": dags,
        }
        json.dump(result, out, default=repr, sort_keys=True)
        out.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
