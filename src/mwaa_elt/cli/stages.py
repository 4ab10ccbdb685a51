"""`mwaa-elt stage`: what a stage is, its names, ARNs and settings."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from mwaa_elt.cli.output import JsonFlag, ProjectDir, out, print_json, project_at, stage_at
from mwaa_elt.cli.stage_import import stage_import

stage_app = typer.Typer(help="What a stage is: its names, ARNs and settings.", no_args_is_help=True)


@stage_app.command("show")
def stage_show(
    stage: Annotated[str, typer.Argument(help="Stage name: dev, staging, prod.")],
    json_: JsonFlag = False,
    project_dir: ProjectDir = None,
) -> None:
    """Every name and ARN of a stage, derived from stacks/Pulumi.<stage>.yaml."""
    summary = stage_at(project_dir, stage).summary()
    if json_:
        print_json(summary)
        return
    table = Table(title=f"stage {stage}", show_header=False, title_justify="left")
    table.add_column("key", style="bold")
    table.add_column("value")
    for key, value in summary.items():
        shown = json.dumps(value) if isinstance(value, dict | list) else str(value)
        table.add_row(key, shown)
    out.print(table)


stage_app.command("import")(stage_import)


@stage_app.command("list")
def stage_list(json_: JsonFlag = False, project_dir: ProjectDir = None) -> None:
    """The project's stages in promotion order, validated."""
    from mwaa_elt.stage import load_all_stages

    stages = load_all_stages(project_at(project_dir).stacks_dir)
    rows = [
        {
            "stage": s.name,
            "region": s.region,
            "account_id": s.account_id,
            "airflow_version": s.airflow.version,
            "environment_class": s.config.environment_class,
            "promotes_from": s.promotes_from,
        }
        for s in stages.values()
    ]
    if json_:
        print_json(rows)
        return
    table = Table(title="stages")
    for column in rows[0] if rows else []:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(v) if v is not None else "-" for v in row.values()))
    out.print(table)
