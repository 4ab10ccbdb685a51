"""`mwaa-elt run`: render a pipeline for a stage and run it with Airflow against the sandbox.

`plan.py` says what a run seeds and runs (pure), `execute.py` does it, `emulation.py` makes the
sandbox's Athena and EMR do real work, and `dagrun_probe.py` is what runs inside Airflow.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from mwaa_elt.errors import ConfigError

if TYPE_CHECKING:
    from mwaa_elt.project import Project
    from mwaa_elt.run.execute import RunReport
    from mwaa_elt.run.plan import RunPlan


def plan_pipeline_run(
    project: Project, stage_name: str, pipeline: str, logical_date: date
) -> RunPlan:
    """Validate every spec, render `pipeline` and its upstream pipelines for the stage, plan."""
    from mwaa_elt.render import render_pipelines
    from mwaa_elt.run.plan import plan_run, run_order
    from mwaa_elt.spec import discover_specs, validate_paths
    from mwaa_elt.stage import load_all_stages

    stages = load_all_stages(project.stacks_dir)
    if stage_name not in stages:
        raise ConfigError(f"no stage '{stage_name}'; known: {', '.join(stages)}")
    stage = stages[stage_name]
    specs = discover_specs(project.pipelines_dir) if project.pipelines_dir.is_dir() else []
    report = validate_paths(specs, stages)
    if not report.ok:
        raise ConfigError(
            [f"{p.path}:{p.line}:{p.col}: {p.message}" for p in report.problems]
            + ["nothing was run: fix the problems above (mwaa-elt validate)"]
        )
    order = run_order(report.pipelines, stage, pipeline)
    render = render_pipelines(
        {name: report.pipelines[name] for name in order},
        stage,
        project.templates_dir,
        project_root=project.root,
    )
    return plan_run(report.pipelines, stage, render, pipeline, logical_date)


def run_pipeline(
    project: Project,
    stage_name: str,
    pipeline: str,
    logical_date: date,
    *,
    python: Path | None = None,
    rerun: bool = False,
) -> RunReport:
    """Run `pipeline` (after its upstream pipelines) for `logical_date` in a sandboxed stage."""
    from mwaa_elt.run.execute import airflow_python, run_plan

    plan = plan_pipeline_run(project, stage_name, pipeline, logical_date)
    return run_plan(plan, python or airflow_python(plan.stage, project.root), rerun=rerun)
