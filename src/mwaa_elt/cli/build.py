"""Build commands: render a stage's DAG files, check them with DagBag, run one locally."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from mwaa_elt.cli.output import (
    JsonFlag,
    ProjectDir,
    StageOption,
    err,
    out,
    print_json,
    project_at,
    relative,
    short,
)
from mwaa_elt.errors import EXIT_INVALID

if TYPE_CHECKING:
    from mwaa_elt.run.execute import RunReport


def render(
    stage: StageOption,
    pipelines: Annotated[
        list[str] | None, typer.Argument(help="Pipeline names (default: all).")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default: build/<stage>/).")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Validate and render every spec anew, trusting no earlier render."
        ),
    ] = False,
    json_: JsonFlag = False,
    project_dir: ProjectDir = None,
) -> None:
    """Render specs into Airflow DAG files for a stage: all or nothing, stale DAGs removed.

    Pipelines whose spec, files, stage, templates and mwaa-elt are unchanged since the last
    render into the same folder keep their files; the checks across specs always run.
    """
    from mwaa_elt.render.workflow import render_to_folder

    project = project_at(project_dir)
    target = out_dir or project.build_dir(stage)
    # No spinner here: validating and rendering fork worker processes, and a fork must not
    # copy a thread (the spinner's) that may hold the terminal's lock.
    outcome = render_to_folder(project, stage, pipelines, target, force=force)
    result, summary = outcome.result, outcome.summary
    if outcome.record_error is not None:
        err.print(f"[yellow]warning:[/yellow] {outcome.record_error}")
    data = {
        "stage": stage,
        "airflow_version": result.airflow_version,
        "out": relative(target),
        "written": list(summary.written),
        "unchanged": list(summary.unchanged),
        "removed": list(summary.removed),
        "rendered": list(outcome.rendered),
        "reused": list(outcome.reused),
        "pipelines": [
            {"pipeline": p.name, "dag": p.dag_path, "content_hash": p.content_hash}
            for p in result.pipelines.values()
        ],
    }
    if json_:
        print_json(data)
        return
    # Rows only for what changed: with hundreds of pipelines the unchanged ones are a count.
    title = f"render {stage} (Airflow {result.airflow_version}) → {data['out']}"
    table = Table(title=title)
    for column in ("pipeline", "dag file", "inputs hash", "status"):
        table.add_column(column)
    written = set(summary.written)
    for p in result.pipelines.values():
        if p.dag_path in written:
            table.add_row(p.name, p.dag_path, p.content_hash[:12], "written")
    for path in summary.removed:
        if path.startswith("dags/"):
            table.add_row(Path(path).stem, path, "", "removed")
    if table.row_count:
        out.print(table)
    else:
        out.print(f"{title}: nothing changed")
    out.print(
        f"{len(summary.written)} written, {len(summary.unchanged)} unchanged, "
        f"{len(summary.removed)} removed; {len(outcome.rendered)} rendered, "
        f"{len(outcome.reused)} kept from the last render"
    )


def check(
    stage: StageOption,
    budget: Annotated[
        float, typer.Option("--budget", help="Parse-time budget per DAG file, in seconds.")
    ] = 1.0,
    json_: JsonFlag = False,
    project_dir: ProjectDir = None,
) -> None:
    """Render every DAG for a stage and load it with Airflow's DagBag under its Airflow version."""
    from mwaa_elt.check.stage import check_render
    from mwaa_elt.render.workflow import render_stage

    project = project_at(project_dir)
    result = render_stage(project, stage, None)
    with err.status(f"loading DAGs with DagBag under Airflow {result.airflow_version}…"):
        report = check_render(result, budget_seconds=budget, project_root=project.root)
    rows: list[dict[str, object]] = []
    for file in report.files:
        failed = [f for f in file.findings if f.blocking]
        warned = [f for f in file.findings if f.warning and not f.ok]
        rows.append(
            {
                "file": file.path.name,
                "dag_ids": list(file.dag_ids),
                "parse_seconds": round(file.parse_seconds, 4),
                "ok": file.ok,
                "failures": [{"rule": f.rule, "message": f.message} for f in failed],
                "warnings": [{"rule": f.rule, "message": f.message} for f in warned],
            }
        )
    data = {
        "stage": stage,
        "airflow_version": report.airflow_version,
        "budget_seconds": budget,
        "ok": report.ok,
        "dags": rows,
    }
    if json_:
        print_json(data)
    else:
        table = Table(
            title=f"check {stage}: DagBag under Airflow {report.airflow_version}, "
            f"budget {budget:g}s per file"
        )
        for column in ("DAG file", "parse", "result", "details"):
            table.add_column(column, overflow="fold")
        for file in report.files:
            details = [f"{f.rule}: {f.message}" for f in file.findings if f.blocking]
            details += [
                f"(warning) {f.rule}: {f.message}" for f in file.findings if f.warning and not f.ok
            ]
            table.add_row(
                file.path.name,
                f"{round(file.parse_seconds, 4) * 1000:.0f} ms",
                "[green]ok[/green]" if file.ok else "[red]FAILED[/red]",
                escape("\n".join(details)) or "all gates pass",
            )
        out.print(table)
    if not report.ok:
        raise typer.Exit(EXIT_INVALID)


def run(
    pipeline: Annotated[str, typer.Argument(help="The pipeline to run (after its upstream ones).")],
    stage: StageOption,
    date: Annotated[
        str | None, typer.Option("--date", help="Logical date, YYYY-MM-DD (default: today, UTC).")
    ] = None,
    rerun: Annotated[
        bool, typer.Option("--rerun", help="Run it again for the same date, as a clear does.")
    ] = False,
    json_: JsonFlag = False,
    project_dir: ProjectDir = None,
) -> None:
    """Run a pipeline locally with Airflow against the sandbox; Athena SQL runs on DuckDB."""
    from datetime import UTC, datetime

    from mwaa_elt.run import run_pipeline

    try:
        logical_date = (
            datetime.strptime(date, "%Y-%m-%d").date() if date else datetime.now(UTC).date()
        )
    except ValueError:
        raise typer.BadParameter(f"{date!r} is not a date; expected YYYY-MM-DD") from None
    report = run_pipeline(project_at(project_dir), stage, pipeline, logical_date, rerun=rerun)
    if json_:
        print_json(report.to_json())
    else:
        _print_run(report)
    if not report.ok:
        raise typer.Exit(EXIT_INVALID)


_STATE_STYLE = {"success": "green", "skipped": "dim", "failed": "red", "upstream_failed": "yellow"}


def _print_run(report: RunReport) -> None:
    table = Table(
        title=f"{report.stage} · Airflow {report.airflow_version} · {report.logical_date}"
    )
    # Task, state, time and rows keep their width; the statement is cut to what fits.
    table.add_column("task", min_width=24, overflow="fold")
    table.add_column("state", min_width=15, no_wrap=True)
    table.add_column("s", justify="right", min_width=5, no_wrap=True)
    table.add_column("ran", no_wrap=True, overflow="ellipsis", ratio=1)
    table.add_column("rows", justify="right", min_width=4, no_wrap=True)
    for dag in report.dags:
        for task in dag.tasks:
            style = _STATE_STYLE.get(task.state, "yellow")
            again = " (re-run)" if dag.run_pass > 1 else ""
            table.add_row(
                escape(f"{dag.dag_id}.{task.task_id}{again}"),
                f"[{style}]{task.state}[/{style}]",
                "" if task.seconds is None else f"{task.seconds:.1f}",
                escape(short(" ".join((task.ran or "").split()), 60)),
                "" if task.rows_written is None else str(task.rows_written),
            )
    out.print(table)
    for dag in report.dags:
        for task in dag.tasks:
            if task.error and not task.ok:
                where = escape(f"{dag.dag_id}.{task.task_id}")
                out.print(f"[red]{where}:[/red] {escape(task.error)}")
    for cluster in report.clusters_left:
        out.print(f"[red]EMR cluster {escape(cluster)} was left running[/red]")
    verdict = "[green]ok[/green]" if report.ok else "[red]failed[/red]"
    tasks = sum(len(d.tasks) for d in report.dags)
    err.print(
        f"{verdict}: {tasks} task(s) in {len(report.dags)} DAG run(s), {report.seconds:.1f} s"
    )
