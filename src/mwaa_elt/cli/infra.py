"""`mwaa-elt infra`: the Pulumi program offline, its IAM roles and its resources."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer
from rich.table import Table
from rich.tree import Tree

from mwaa_elt.cli.output import (
    JsonFlag,
    ProjectDir,
    StageOption,
    err,
    out,
    print_json,
    project_at,
    short,
    stage_at,
)
from mwaa_elt.stage import Stage

if TYPE_CHECKING:
    from mwaa_elt.infra.preview import PlannedResource

infra_app = typer.Typer(help="The Pulumi program, offline.", no_args_is_help=True)


@infra_app.command("policies")
def infra_policies(
    stage: StageOption, json_: JsonFlag = False, project_dir: ProjectDir = None
) -> None:
    """Every IAM role of the stage (execution, EMR, CI, release) exactly as Pulumi deploys it."""
    from mwaa_elt.infra.documents.iam_policies import stage_roles
    from mwaa_elt.stage import load_all_stages

    resolved = stage_at(project_dir, stage)
    roles = stage_roles(resolved, load_all_stages(project_at(project_dir).stacks_dir))
    data = {
        # The execution role first and on its own, as before, for scripts reading it.
        "role": roles[0].name,
        "policies": [{"name": p.name, "document": p.document} for p in roles[0].policies],
        "roles": [
            {
                "name": role.name,
                "trust": role.trust,
                "policies": [{"name": p.name, "document": p.document} for p in role.policies],
            }
            for role in roles
        ],
    }
    if json_:
        print_json(data)
        return
    for role in roles:
        out.print(f"[bold]role[/bold] {role.name}")
        trust = [
            (s.get("Sid", ""), s["Effect"], s["Action"], s.get("Principal"), s.get("Condition"))
            for s in role.trust["Statement"]
        ]
        for sid, effect, action, principal, condition in trust:
            out.print(
                f"  trust {sid} {effect} {action} {json.dumps(principal)}"
                + (f" if {json.dumps(condition)}" if condition else "")
            )
        for policy in role.policies:
            table = Table(title=f"policy {policy.name}", title_justify="left")
            for column in ("sid", "effect", "actions", "resources", "condition"):
                table.add_column(column, overflow="fold")
            for statement in policy.document["Statement"]:
                actions = statement.get("Action")
                resources = statement.get("Resource", statement.get("NotResource"))
                prefix = "NOT " if "NotResource" in statement else ""
                table.add_row(
                    statement.get("Sid", ""),
                    statement["Effect"],
                    "\n".join(actions) if isinstance(actions, list) else str(actions),
                    prefix
                    + ("\n".join(resources) if isinstance(resources, list) else str(resources)),
                    json.dumps(statement["Condition"]) if "Condition" in statement else "",
                )
            out.print(table)


@infra_app.command("preview")
def infra_preview(
    stage: StageOption, json_: JsonFlag = False, project_dir: ProjectDir = None
) -> None:
    """What `pulumi up --stack <stage>` would create: the program run under Pulumi's mocks."""
    from mwaa_elt.infra.preview import preview_stage

    resolved = stage_at(project_dir, stage)
    with err.status(f"running the Pulumi program for {stage} under mocks…"):
        resources = preview_stage(resolved)
    if json_:
        print_json([resource.as_dict() for resource in resources])
        return
    out.print(_resource_tree(resolved, resources))
    protected = sum(1 for r in resources if r.protected)
    out.print(f"{len(resources)} resources, {protected} protected against deletion")


def _resource_tree(stage: Stage, resources: list[PlannedResource]) -> Tree:
    root = Tree(f"[bold]stack {stage.name}[/bold] ({stage.account_id}, {stage.region})")
    nodes: dict[str, Tree] = {}
    for resource in resources:
        parent = nodes.get(resource.parent or "", root)
        label = f"[cyan]{resource.type}[/cyan] {resource.name}"
        if resource.protected:
            label += " [red](protected)[/red]"
        node = parent.add(label)
        for key, value in resource.settings.items():
            node.add(f"[dim]{key}[/dim] = {short(value)}")
        nodes[resource.name] = node
    return root
