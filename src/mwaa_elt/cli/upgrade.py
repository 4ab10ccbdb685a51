"""`mwaa-elt upgrade ...`: rehearse a change of a stage's Airflow version before it happens.

Parses and formats only: the route rules, the rehearsal and its report live in
`mwaa_elt.lifecycle`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mwaa_elt.errors import EXIT_INVALID
from mwaa_elt.project import find_project

if TYPE_CHECKING:  # the rehearsal brings boto3, Jinja and the DagBag probe: import it when run
    from mwaa_elt.lifecycle.rehearsal import RehearsalReport

upgrade_app = typer.Typer(
    help="Change a stage's Airflow version: rehearse it first (upgrade plan).",
    no_args_is_help=True,
)

# No emoji codes: a message quoting ':smile:' from a spec must print it as written.
out = Console(highlight=False, soft_wrap=True, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

_ROUTE_STYLE = {"in-place": "green", "unchanged": "green", "new-environment": "yellow"}
_STATUS_STYLE = {"passed": "green", "failed": "red", "not run": "yellow"}


@upgrade_app.command("plan")
def upgrade_plan(
    stage: Annotated[str, typer.Option("--stage", "-s", help="Stage name: dev, staging, prod.")],
    to: Annotated[str, typer.Option("--to", help="The Airflow version to rehearse, e.g. 3.0.6.")],
    json_: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Where to write the JSON report (default build/upgrade/<stage>-<to>.json).",
        ),
    ] = None,
    profile: Annotated[
        str | None, typer.Option("--profile", help="AWS profile (default: the credential chain).")
    ] = None,
    project_dir: Annotated[
        Path | None,
        typer.Option("--project-dir", "-C", help="Project folder (default: found from the cwd)."),
    ] = None,
) -> None:
    """Rehearse the stage on another Airflow version: MWAA's route, every live pipeline rendered
    and gated for it, requirements vs its constraints, Airflow 3 lint, run-time differences."""
    from mwaa_elt.lifecycle.rehearsal import (
        default_report_path,
        explain,
        prepare,
        run,
        write_report,
    )
    from mwaa_elt.promote.store import StageStore, store_client

    project = find_project(project_dir)
    rehearsal = prepare(
        project,
        stage,
        to,
        lambda current: StageStore(current, store_client(current.region, profile=profile)),
    )
    plan, route = rehearsal.plan, rehearsal.plan.route
    shown = err if json_ else out
    shown.print(
        f"[bold]upgrade plan {stage}[/bold]: Airflow {route.from_version} → {route.to_version}, "
        f"route [{_ROUTE_STYLE[route.kind]}]{route.kind}[/]"
    )
    shown.print(f"  {escape(route.reason)}\n  ({route.documentation})")
    shown.print(f"rehearsal of {len(plan.pipelines)} live pipeline(s) from {plan.manifest_uri}:")
    for line in explain(plan):
        shown.print(f"  - {escape(line)}")
    with err.status("rehearsing…") as status:
        result = run(rehearsal, lambda message: status.update(escape(message) + "…"))
    target = report or default_report_path(project, stage, to)
    write_report(target, result)
    if json_:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        _print_report(result)
        out.print(f"report: {_display(target)}")
    if not result.ok:
        raise typer.Exit(EXIT_INVALID)


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _print_report(result: RehearsalReport) -> None:
    if result.pipelines:
        table = Table(
            title=f"live pipelines of {result.stage} under Airflow {result.route.to_version}"
        )
        table.add_column("pipeline")
        table.add_column("version")
        for gate in ("validate", "render", "dagbag", "packages"):
            table.add_column(gate)
        table.add_column("details", overflow="fold")
        for pipeline in result.pipelines:
            cells = [f"[{_STATUS_STYLE[gate.status]}]{gate.status}[/]" for gate in pipeline.gates]
            details = [
                m for gate in pipeline.gates if gate.status == "failed" for m in gate.messages
            ]
            table.add_row(
                pipeline.pipeline.name,
                pipeline.pipeline.source_hash[:12],
                *cells,
                escape("\n".join(details)),
            )
        out.print(table)
    else:
        out.print(f"nothing is live in {result.stage}: no pipelines to rehearse")
    if result.requirements:
        out.print("[bold]requirements.txt under the target's constraints[/bold]")
        for finding in result.requirements:
            mark = "[red]conflict[/red]" if finding.blocking else "[yellow]note[/yellow]"
            out.print(
                f"  {mark} {escape(finding.path)}:{finding.line}:{finding.col}: "
                f"{escape(finding.message)}"
            )
    else:
        out.print("requirements.txt: no conflict with the target's constraints")
    if result.linted:
        if result.lint:
            out.print("[bold]Airflow 3 lint (ruff AIR3)[/bold]")
            for lint in result.lint:
                mark = "[red]error[/red]" if lint.blocking else "[yellow]deprecated[/yellow]"
                out.print(
                    f"  {mark} {escape(lint.path)}:{lint.line}:{lint.col}: {lint.rule} "
                    f"{escape(lint.message)}"
                )
        else:
            out.print("Airflow 3 lint (ruff AIR3): no findings")
    if result.differences:
        out.print("[bold]run-time differences for these pipelines[/bold]")
        for difference in result.differences:
            out.print(
                f"  {difference.pipeline}: {escape(difference.path)}:{difference.line}:"
                f"{difference.col}: {difference.topic}: {escape(difference.message)}"
            )
    verdict = "[green]rehearsal passed[/green]" if result.ok else "[red]rehearsal FAILED[/red]"
    out.print(f"{verdict} — route: {result.route.kind}")
