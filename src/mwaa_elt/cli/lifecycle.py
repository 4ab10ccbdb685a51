"""`mwaa-elt backup`, `restore`, `upgrade apply` and `cutover switch/finish`: parse, call the
lifecycle library, format what it returns. Registered on the main app by `register`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mwaa_elt.cli.upgrade import upgrade_app
from mwaa_elt.errors import EXIT_INVALID, ConfigError
from mwaa_elt.project import Project, find_project

if TYPE_CHECKING:  # the stage model brings pydantic: loaded when a command runs
    from mwaa_elt.stage import Stage

if TYPE_CHECKING:
    from mwaa_elt.lifecycle.metadata import BackupBucket, BackupManifest

out = Console(highlight=False, soft_wrap=True, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

ProjectDir = Annotated[
    Path | None,
    typer.Option("--project-dir", "-C", help="Project folder (default: found from the cwd)."),
]
StageOption = Annotated[str, typer.Option("--stage", "-s", help="Stage name: dev, staging, prod.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
YesFlag = Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking.")]
PlanFlag = Annotated[bool, typer.Option("--plan", help="Print the plan and change nothing.")]

cutover_app = typer.Typer(
    help=(
        "Switch a stage's pipelines to its second environment; "
        "`finish` prints the stack change that retires the old one."
    ),
    no_args_is_help=True,
)
dr_app = typer.Typer(
    help="mwaa-dr's backup and restore DAGs on Airflow 2 stages (run history).",
    no_args_is_help=True,
)
TimeoutOption = Annotated[
    float,
    typer.Option("--timeout", help="Seconds to wait for mwaa-dr's DAG run (default 1 h)."),
]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("backup")(backup)
    app.command("restore")(restore)
    app.add_typer(cutover_app, name="cutover")
    app.add_typer(dr_app, name="dr")


def _stage(project_dir: Path | None, name: str) -> tuple[Project, dict[str, Stage], Stage]:
    from mwaa_elt.stage import load_all_stages

    project = find_project(project_dir)
    stages = load_all_stages(project.stacks_dir)
    if name not in stages:
        raise ConfigError(f"no stage '{name}'; known: {', '.join(stages)}")
    return project, stages, stages[name]


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2))


def _lines(lines: list[str]) -> None:
    for line in lines:
        out.print(escape(line))


def _confirm(question: str, yes: bool) -> None:
    """Go on with --yes or a confirmed prompt; refuse without a terminal to ask on."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise ConfigError(f"{question} needs confirmation: pass --yes (nothing was changed)")
    if not typer.confirm(question, default=False):
        err.print("nothing was changed")
        raise typer.Exit(EXIT_INVALID)


def _progress(index: int, total: int, what: str) -> None:
    err.print(f"[{index}/{total}] {escape(what)}…")


def _clients(stage: Stage) -> tuple[object, object]:
    from mwaa_elt.promote.store import make_client

    return make_client("mwaa", stage.region), make_client("s3", stage.region)


# -- backup / restore --------------------------------------------------------------------------


def backup(
    stage: StageOption,
    list_: Annotated[bool, typer.Option("--list", help="List the stage's backups.")] = False,
    rest: Annotated[
        bool,
        typer.Option("--rest", help="On Airflow 2, use the REST API even when mwaa-dr is live."),
    ] = False,
    timeout: TimeoutOption = 3600.0,
    json_: JsonFlag = False,
    project_dir: ProjectDir = None,
) -> None:
    """Back up the Airflow metadata of a stage's environment into its bucket.

    On Airflow 2 with mwaa-dr's DAGs live (`mwaa-elt dr install`), its backup DAG copies the
    metadata database tables, run history included; otherwise Airflow's REST API is read."""
    from mwaa_elt.lifecycle import mwaa_dr
    from mwaa_elt.lifecycle.airflow_api import AirflowApi, live_target
    from mwaa_elt.lifecycle.metadata import (
        BackupBucket,
        execute_backup,
        explain_backup,
        new_backup_id,
        plan_backup,
    )
    from mwaa_elt.promote.identity import caller_arn

    _, _, target = _stage(project_dir, stage)
    mwaa, s3 = _clients(target)
    bucket = BackupBucket(target, s3)
    if list_:
        manifests = bucket.listing()
        if json_:
            fields = ("backup_id", "kind", "environment", "airflow_version", "created_at")
            listed = [{name: getattr(m, name) for name in fields} for m in manifests]
            _print_json({"stage": target.name, "backups": listed})
        elif not manifests:
            out.print(f"no backup of {escape(target.name)} yet")
        else:
            table = Table(box=None, show_header=False, pad_edge=False)
            for m in manifests:
                table.add_row(m.backup_id, m.kind, m.environment, m.airflow_version, m.created_at)
            out.print(table)
        return
    api_target, running = live_target(target.environment_name, target.region, mwaa)
    api = AirflowApi(api_target, mwaa)
    backup_id = new_backup_id()
    route = mwaa_dr.backup_route(
        target, api, backup_id, airflow_version=running, rest=rest, timeout_seconds=timeout
    )
    note = route.note
    if route.dr_plan is not None:
        if not json_:
            _lines(mwaa_dr.explain_backup(route.dr_plan))
        watcher = mwaa_dr.RunWatcher(api, progress=None if json_ else _run_progress)
        record = mwaa_dr.execute_backup(
            route.dr_plan, watcher, bucket, created_by=caller_arn(target)
        )
        if json_:
            _print_json(record.to_dict())
            return
        size = sum(record.manifest.sizes.values())
        out.print(
            f"[green]backed up[/green] {record.backup_id} (mwaa-dr): {escape(record.uri)} "
            f"({len(record.manifest.parts)} tables, {size} bytes)"
        )
        return
    plan = plan_backup(target, backup_id, target=api_target, airflow_version=running)
    if not json_:
        if note:
            err.print(f"note: {escape(note)}; backing up through the REST API instead")
        _lines(explain_backup(plan))
    record = execute_backup(plan, api, bucket, created_by=caller_arn(target))
    if json_:
        _print_json({**record.to_dict(), **({"note": note} if note else {})})
        return
    counts = ", ".join(f"{n} {part}" for part, n in record.manifest.counts.items())
    out.print(f"[green]backed up[/green] {record.backup_id}: {escape(record.uri)} ({counts})")
    for line in record.manifest.not_carried:
        out.print(f"not carried: {escape(line)}")


def _run_progress(what: str) -> None:
    err.print(f"  {escape(what)}")


def restore(
    stage: StageOption,
    from_: Annotated[str, typer.Option("--from", help="The backup id (backup --list).")],
    plan_only: PlanFlag = False,
    yes: YesFlag = False,
    timeout: TimeoutOption = 3600.0,
    json_: JsonFlag = False,
    project_dir: ProjectDir = None,
) -> None:
    """Restore a backup into a stage's environment: the plan first, then what changed."""
    from mwaa_elt.lifecycle.airflow_api import AirflowApi, live_target
    from mwaa_elt.lifecycle.metadata import (
        BackupBucket,
        execute_restore,
        explain_restore,
        load_backup,
        plan_restore,
        read_manifest,
        read_snapshot,
    )

    _, _, target = _stage(project_dir, stage)
    mwaa, s3 = _clients(target)
    bucket = BackupBucket(target, s3)
    found = read_manifest(bucket, from_)
    if found.kind == "mwaa-dr":
        _restore_mwaa_dr(target, bucket, mwaa, found, plan_only, yes, timeout, json_)
        return
    manifest, snapshot = load_backup(bucket, from_)
    api_target, _ = live_target(target.environment_name, target.region, mwaa)
    api = AirflowApi(api_target, mwaa)
    plan = plan_restore(target.name, api_target.environment, from_, snapshot, read_snapshot(api))
    if not json_ or plan_only:
        _lines(explain_restore(plan))
    if plan_only or not plan.steps:
        if not plan.steps:
            out.print(f"{api_target.environment} already holds backup {from_}: nothing to do")
        return
    _confirm(f"Restore backup {manifest.backup_id} into {api_target.environment}?", yes)
    result = execute_restore(plan, api, progress=None if json_ else _restore_progress)
    if json_:
        _print_json(result.to_dict())
    else:
        out.print(f"[green]restored[/green] {len(result.applied)} change(s) from {from_}")


def _restore_progress(index: int, total: int, what: str) -> None:
    _progress(index + 1, total, what)


def _restore_mwaa_dr(
    target: Stage,
    bucket: BackupBucket,
    mwaa: object,
    manifest: BackupManifest,
    plan_only: bool,
    yes: bool,
    timeout: float,
    json_: bool,
) -> None:
    from mwaa_elt.lifecycle import mwaa_dr
    from mwaa_elt.lifecycle.airflow_api import AirflowApi, live_target
    from mwaa_elt.lifecycle.metadata import new_backup_id

    backup_id = manifest.backup_id
    api_target, running = live_target(target.environment_name, target.region, mwaa)
    api = AirflowApi(api_target, mwaa)
    plan = mwaa_dr.plan_restore(
        target,
        manifest,
        mwaa_dr.read_dr_dags(api),
        environment=api_target.environment,
        airflow_version=running,
        run_id=new_backup_id(),
        timeout_seconds=timeout,
    )
    if not json_ or plan_only:
        _lines(mwaa_dr.explain_restore(plan))
    if plan_only:
        return
    mwaa_dr.check_backup(bucket, manifest)
    _confirm(f"Restore mwaa-dr backup {backup_id} into {api_target.environment}?", yes)
    watcher = mwaa_dr.RunWatcher(api, progress=None if json_ else _run_progress)
    result = mwaa_dr.execute_restore(plan, watcher, bucket)
    if json_:
        _print_json(result.to_dict())
    else:
        out.print(
            f"[green]restored[/green] mwaa-dr backup {escape(backup_id)} into "
            f"{escape(api_target.environment)} ({len(mwaa_dr.TABLES)} tables)"
        )


# -- dr install -------------------------------------------------------------------------------


@dr_app.command("install")
def dr_install(
    stage: StageOption,
    plan_only: PlanFlag = False,
    yes: YesFlag = False,
    json_: JsonFlag = False,
    project_dir: ProjectDir = None,
) -> None:
    """Write mwaa-dr's backup and restore DAGs into a 2.x stage's DAG folder."""
    from mwaa_elt.lifecycle import mwaa_dr
    from mwaa_elt.lifecycle.metadata import BackupBucket

    project, _, target = _stage(project_dir, stage)
    files = mwaa_dr.render_dags(target, project.templates_dir)
    _, s3 = _clients(target)
    bucket = BackupBucket(target, s3)
    plan = mwaa_dr.plan_install(target, files, mwaa_dr.live_dag_files(bucket, list(files)))
    if not json_ or plan_only:
        _lines(mwaa_dr.explain_install(plan))
    if plan_only:
        return
    if plan.changes:
        _confirm(f"Write {len(plan.changes)} DAG file(s) to s3://{target.source_bucket}/?", yes)
    written = mwaa_dr.execute_install(plan, files, s3)
    if json_:
        _print_json({"stage": target.name, "written": written, "files": sorted(files)})
    else:
        out.print(
            f"[green]installed[/green] {len(written)} file(s); MWAA parses them within its "
            "DAG-folder refresh interval — `mwaa-elt backup` uses them from then on"
        )


# -- upgrade apply ------------------------------------------------------------------------------


@upgrade_app.command("apply")
def upgrade_apply_command(
    stage: StageOption,
    to: Annotated[str, typer.Option("--to", help="The Airflow version the stack file names.")],
    timeout: Annotated[
        float,
        typer.Option("--timeout", help="Seconds to wait for MWAA's update (default 90 min)."),
    ] = 5400.0,
    yes: YesFlag = False,
    json_: JsonFlag = False,
    project_dir: ProjectDir = None,
) -> None:
    """Upgrade in place: back up, wait for MWAA on the new version, re-promote, check."""
    from mwaa_elt.lifecycle.airflow_api import EnvironmentState
    from mwaa_elt.lifecycle.metadata import new_backup_id
    from mwaa_elt.lifecycle.upgrade import (
        LiveUpgrade,
        execute_upgrade,
        explain_upgrade,
        plan_upgrade,
    )
    from mwaa_elt.promote.identity import caller_arn, identity_now
    from mwaa_elt.promote.store import StageStore

    project, stages, target = _stage(project_dir, stage)
    mwaa, s3 = _clients(target)
    manifest, _ = StageStore(target, s3).load_manifest()
    plan = plan_upgrade(target, to, manifest, new_backup_id(), timeout_seconds=timeout)
    if not json_:
        _lines(explain_upgrade(plan))
    _confirm(f"Upgrade {target.name} to Airflow {to}?", yes)

    def waited(state: EnvironmentState, seconds: float) -> None:
        if not json_:
            where = f"{target.environment_name}: {state.status} on {state.version}"
            err.print(f"  {where} ({seconds:.0f} s)")

    actions = LiveUpgrade(
        project_root=project.root,
        stacks_dir=project.stacks_dir,
        environment_dir=project.environment_dir,
        stages=stages,
        stage=target,
        mwaa=mwaa,
        s3=s3,
        identity=identity_now(caller_arn(target)),
        on_wait=waited,
    )
    result = execute_upgrade(plan, actions, progress=None if json_ else _progress)
    if json_:
        _print_json(result.to_dict())
        return
    for step, said in result.done:
        out.print(f"[green]done[/green] {escape(step)}: {escape(said)}")


# -- cutover ----------------------------------------------------------------------------------


@cutover_app.command("switch")
def cutover_switch(
    stage: StageOption,
    plan_only: PlanFlag = False,
    yes: YesFlag = False,
    json_: JsonFlag = False,
    project_dir: ProjectDir = None,
) -> None:
    """Pause the pipelines in the old environment, restore its metadata into the new one,
    unpause them there and verify."""
    from mwaa_elt.lifecycle.airflow_api import AirflowApi, live_target
    from mwaa_elt.lifecycle.cutover import (
        execute_switch,
        explain_switch,
        green_environment,
        plan_switch,
    )
    from mwaa_elt.lifecycle.metadata import BackupBucket, new_backup_id, pause_states
    from mwaa_elt.promote.identity import caller_arn
    from mwaa_elt.promote.store import StageStore

    _, _, target = _stage(project_dir, stage)
    green = green_environment(target)
    mwaa, s3 = _clients(target)
    manifest, _ = StageStore(target, s3).load_manifest()
    old, _ = live_target(target.environment_name, target.region, mwaa)
    live_target(green.name, target.region, mwaa)
    plan = plan_switch(
        target,
        green,
        sorted(manifest.pipelines),
        pause_states(AirflowApi(old, mwaa)),
        new_backup_id(environment=target.environment_name),
        old_major=old.major,
    )
    if not json_ or plan_only:
        _lines(explain_switch(plan))
    if plan_only:
        return
    _confirm(f"Switch {target.name} to {green.name}?", yes)
    result = execute_switch(
        plan,
        mwaa,
        BackupBucket(target, s3),
        stage=target,
        created_by=caller_arn(target),
        progress=None if json_ else _progress,
    )
    if json_:
        _print_json(result.to_dict())
    else:
        out.print(f"[green]switched[/green] {target.name} to {green.name}")
        out.print(f"next: mwaa-elt cutover finish --stage {target.name}")


@cutover_app.command("finish")
def cutover_finish(
    stage: StageOption, json_: JsonFlag = False, project_dir: ProjectDir = None
) -> None:
    """Print the stack config change that retires the old environment (after `switch`); say
    "done" once the stack serves from the new one and the old one is gone."""
    from mwaa_elt.diagnostics import display_path, read_text
    from mwaa_elt.lifecycle.airflow_api import environment_status
    from mwaa_elt.lifecycle.cutover import finish_cutover, load_switch
    from mwaa_elt.lifecycle.metadata import BackupBucket

    _, _, target = _stage(project_dir, stage)
    mwaa, s3 = _clients(target)
    record = load_switch(BackupBucket(target, s3))
    shown = display_path(target.source_file)
    status = (
        environment_status(mwaa, record.old_environment, target.region)
        if record is not None and target.config.cutover is None
        else None
    )
    report = finish_cutover(target, record, read_text(target.source_file, shown), shown, status)
    if json_:
        _print_json(report.to_dict())
        return
    _lines(list(report.lines))
    if report.change is not None:
        out.print(escape(report.change.diff), end="")
