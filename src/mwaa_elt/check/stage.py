"""`mwaa-elt check` as a workflow: a stage's render written to a scratch folder and loaded with
Airflow's DagBag under the stage's Airflow version."""

from __future__ import annotations

import tempfile
from pathlib import Path

from mwaa_elt.check import CheckReport, run_dagbag
from mwaa_elt.render import RenderResult, write_render


def check_render(result: RenderResult, *, budget_seconds: float, project_root: Path) -> CheckReport:
    """Load every DAG file of `result` with the DagBag of its Airflow version; nothing is kept."""
    with tempfile.TemporaryDirectory(prefix="mwaa-elt-check-") as scratch:
        folder = Path(scratch) / "out"
        write_render(result, folder)
        return run_dagbag(
            folder / "dags",
            result.airflow_version,
            budget_seconds=budget_seconds,
            project_root=project_root,
        )
