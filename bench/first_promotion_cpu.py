"""The CPU a first promotion from a fresh clone spends before it may write anything.

Such a promotion validates every spec, renders every DAG and loads every DAG file with the
stage's Airflow (the DagBag gate) before its first request that writes: the plan is gated,
then applied. This measures that work once, each part in one process (no workers, so nothing
is spent on forking or on sending results back): validation and rendering in this process
(ruff, which formats the DAGs, in a child), then the gate's Airflow probe in a child, from its
start (importing Airflow) to the last file loaded. Spread perfectly over the machine's cores,
the two cannot take less than their CPU time divided by the cores: the floor under the
promotion's time before its first write, whatever it overlaps.

Run by bench.promotion as a script in the benchmark's project (its frozen code, its Airflow
environments): .venv/bin/python bench/first_promotion_cpu.py PROJECT STAGE  (prints JSON)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def cpu_seconds() -> float:
    """User and system time of this process and of every child it has waited for."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def measure(project: Path, stage_name: str) -> dict[str, float | int]:
    """CPU seconds of validating and rendering every pipeline of `project` for `stage_name`,
    and of the DagBag gate over every DAG rendered, and the cores a promotion here spreads
    them over; ValueError when validation fails."""
    os.environ["MWAA_ELT_WORKERS"] = "1"  # one process each: the least CPU the work takes
    from mwaa_elt.parallel import cores
    from mwaa_elt.promote.gates import dagbag_gate
    from mwaa_elt.render.generate import render_pipelines
    from mwaa_elt.spec.folder import discover_specs
    from mwaa_elt.spec.validate import validate_paths
    from mwaa_elt.stage import load_all_stages

    stages = load_all_stages(project / "stacks")
    stage = stages[stage_name]
    started = cpu_seconds()
    report = validate_paths(discover_specs(project / "pipelines"), stages)
    if not report.ok:
        raise ValueError(f"the benchmark's project does not validate: {report.problems[:3]}")
    render = render_pipelines(
        report.pipelines, stage, project / "dag_templates", project_root=project
    )
    rendered = cpu_seconds()
    dagbag_gate(render, stage, project, list(render.pipelines))
    gated = cpu_seconds()
    return {
        "pipelines": len(render.pipelines),
        "validate_render_cpu_s": round(rendered - started, 3),
        "dagbag_gate_cpu_s": round(gated - rendered, 3),
        "cores": cores(),
    }


def main() -> None:
    project, stage = Path(sys.argv[1]), sys.argv[2]
    print(json.dumps(measure(project, stage)))


if __name__ == "__main__":
    main()
