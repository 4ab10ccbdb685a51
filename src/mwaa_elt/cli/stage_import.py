"""`mwaa-elt stage import`: adopt an existing MWAA environment as a stage (issue #12, part 5).

Parses the options, calls `mwaa_elt.lifecycle.stage_import`, formats what it returns. Registered
on `stage_app` by `mwaa_elt.cli`; this module does not import that one (which imports this).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mwaa_elt.errors import EXIT_INVALID, ConfigError
from mwaa_elt.lifecycle.adopt import kms_key_id
from mwaa_elt.lifecycle.stage_import import (
    DEFAULT_GLUE_DATABASES,
    ImportRequest,
    StageImport,
    plan_import,
    read_environment,
    read_key,
    write_stack,
)
from mwaa_elt.project import find_project
from mwaa_elt.stage import stack_file

out = Console(highlight=False, soft_wrap=True, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def stage_import(
    environment: Annotated[
        str, typer.Option("--environment", "-e", help="The MWAA environment's name.")
    ],
    region: Annotated[str, typer.Option("--region", help="The environment's AWS region.")],
    as_: Annotated[
        str, typer.Option("--as", help="The stage it becomes: stacks/Pulumi.<stage>.yaml.")
    ],
    profile: Annotated[
        str | None, typer.Option("--profile", help="AWS profile (default: the credential chain).")
    ] = None,
    owner: Annotated[
        str | None,
        typer.Option("--owner", help="The stage's owner (default: the environment's owner tag)."),
    ] = None,
    glue_database: Annotated[
        list[str] | None,
        typer.Option(
            "--glue-database",
            help=f"A Glue database of the stage; repeat for more (default: "
            f"{', '.join(DEFAULT_GLUE_DATABASES)}).",
        ),
    ] = None,
    promotes_from: Annotated[
        str | None,
        typer.Option("--promotes-from", help="The stage promotion takes pipelines from."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Write without asking.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the stack file; write nothing.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing stack file.")
    ] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
    project_dir: Annotated[
        Path | None,
        typer.Option("--project-dir", "-C", help="Project folder (default: found from the cwd)."),
    ] = None,
) -> None:
    """Write stacks/Pulumi.<stage>.yaml reproducing an existing MWAA environment, with the
    import ids that make `pulumi up` adopt it; settings the stack config cannot express are
    refused by name."""
    if yes and dry_run:
        raise typer.BadParameter("--yes writes, --dry-run does not: pass one of them")
    stacks_dir = find_project(project_dir).stacks_dir
    target = stack_file(stacks_dir, as_)
    if target.exists() and not (force or dry_run):
        raise ConfigError(
            f"{_relative(target)}: exists; pass --force to overwrite it, or --dry-run to "
            "print the import (nothing was read or written)"
        )
    request = ImportRequest(
        environment=environment,
        region=region,
        stage=as_,
        owner=owner,
        glue_databases=tuple(glue_database or DEFAULT_GLUE_DATABASES),
        promotes_from=promotes_from,
    )
    with err.status(f"reading MWAA environment {environment} in {region}"):
        found, subnet_vpcs = read_environment(environment, region, profile=profile)
        # A customer-managed key: what KMS says of it decides whether it can be adopted.
        key = read_key(found["KmsKey"], region, profile=profile) if found.get("KmsKey") else None
    result = plan_import(found, subnet_vpcs, request, stacks_dir, key)

    if json_:
        report = result.as_dict()
        report["path"] = _relative(target)
        report["yaml"] = result.text
        report["written"] = False
        if result.ok and not dry_run:
            _confirm(target, yes)
            write_stack(result, stacks_dir, force=force)
            report["written"] = True
        print(json.dumps(report, indent=2))
        if not result.ok:
            raise typer.Exit(EXIT_INVALID)
        return

    # A dry run prints the stack file on stdout, so `> file` keeps only it.
    _print_summary(result, target, err if dry_run else out)
    if not result.ok:
        raise ConfigError(
            [f"{environment}: {refusal}" for refusal in result.refusals]
            + [f"{_relative(target)}: not written: the stack config cannot express the above"]
        )
    if dry_run:
        print(result.text, end="")
        return
    _confirm(target, yes)
    path = write_stack(result, stacks_dir, force=force)
    out.print(
        f"wrote {escape(_relative(path))}; next: pulumi preview --stack {as_} "
        "(imports, changes nothing), pulumi up, then remove adopt: and pulumi up again"
    )


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _confirm(target: Path, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise ConfigError(
            f"{_relative(target)}: pass --yes to write it without a prompt (nothing was written)"
        )
    if not typer.confirm(f"Write {_relative(target)}?", default=False):
        err.print("nothing was written")
        raise typer.Exit(EXIT_INVALID)


def _print_summary(result: StageImport, target: Path, console: Console) -> None:
    request = result.request
    console.print(
        f"[bold]{escape(request.environment)}[/bold] ({escape(request.region)}) → stage "
        f"[bold]{escape(request.stage)}[/bold], {escape(_relative(target))}"
    )
    if result.adopt is not None:
        adopted = Table("adopted by pulumi up", "import id", title_justify="left")
        adopted.add_row("MWAA environment", escape(result.adopt.environment))
        adopted.add_row("source bucket", escape(result.adopt.bucket))
        adopted.add_row("execution role", escape(result.adopt.execution_role))
        for log_type in result.adopt.log_groups:
            adopted.add_row("log group", escape(f"airflow-{result.adopt.environment}-{log_type}"))
        if result.adopt.kms_key is not None:
            adopted.add_row("KMS key", escape(kms_key_id(result.adopt.kms_key)))
            if result.adopt.kms_key_alias:
                alias = f"alias/{result.adopt.environment}"  # <namePrefix>-<stage>
                adopted.add_row("KMS alias", escape(alias))
        console.print(adopted)
    if result.changes:
        changes = Table(
            "setting",
            "after adoption (remove adopt:, pulumi up)",
            title="changes",
            title_justify="left",
        )
        for change in result.changes:
            changes.add_row(escape(change.setting), escape(change.detail))
        console.print(changes)
    if result.refusals:
        refused = Table("setting", "value", "why", title="[red]refused[/red]", title_justify="left")
        for refusal in result.refusals:
            refused.add_row(escape(refusal.setting), escape(refusal.value), escape(refusal.reason))
        console.print(refused)
