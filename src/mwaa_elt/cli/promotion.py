"""Promotion commands: promote, status, rollback, and the sandbox they run against locally.

The workflow (prepare → plan with its gates → execute) is `mwaa_elt.promote.workflow`, its
explainer `mwaa_elt.promote.explain`; this module parses options, asks, and formats.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from mwaa_elt.cli.output import (
    JsonFlag,
    JsonObject,
    ProjectDir,
    StageOption,
    err,
    out,
    print_json,
    project_at,
    stage_at,
)
from mwaa_elt.errors import EXIT_EXTERNAL, EXIT_INVALID, ConfigError, MwaaEltError

if TYPE_CHECKING:
    from mwaa_elt.promote.cutover import Leftovers as GreenLeftovers
    from mwaa_elt.promote.execute import Outcome
    from mwaa_elt.promote.health import HealthReport
    from mwaa_elt.promote.plan import Step
    from mwaa_elt.promote.status import StageStatus
    from mwaa_elt.promote.store import StageStore
    from mwaa_elt.promote.workflow import Promotion
    from mwaa_elt.stage import Stage

FromOption = Annotated[
    str | None,
    typer.Option(
        "--from", help="Promote the versions live in this stage (default: the working tree)."
    ),
]
YesFlag = Annotated[
    bool, typer.Option("--yes", "-y", help="Apply without asking (prod asks otherwise).")
]
SkipMwaaFlag = Annotated[
    bool,
    typer.Option(
        "--skip-mwaa-checks",
        help="Skip the MWAA gates, for stages without a reachable MWAA API (the sandbox).",
    ),
]
ForceUnlockFlag = Annotated[
    bool, typer.Option("--force-unlock", help="Break the stage's lock first (its holder died).")
]


def short_commit(value: str | None) -> str:
    """A commit cut to 12 hex digits, keeping a suffix such as `-dirty` that says what it was."""
    if not value:
        return "-"
    commit, dash, suffix = value.partition("-")
    return commit[:12] + dash + suffix


def promote(
    to: Annotated[str, typer.Option("--to", help="The stage to promote into.")],
    from_: FromOption = None,
    pipelines: Annotated[
        list[str] | None, typer.Argument(help="Pipeline names (default: all).")
    ] = None,
    plan_only: Annotated[
        bool, typer.Option("--plan", help="Print the plan and change nothing.")
    ] = False,
    yes: YesFlag = False,
    json_: JsonFlag = False,
    prune: Annotated[
        bool,
        typer.Option("--prune", help="Also remove pipelines the source no longer has."),
    ] = False,
    skip_mwaa_checks: SkipMwaaFlag = False,
    force_unlock: ForceUnlockFlag = False,
    rollback_on_error: Annotated[
        bool,
        typer.Option("--rollback-on-error", help="Roll back DAGs Airflow fails to import."),
    ] = False,
    diff: Annotated[
        bool | None,
        typer.Option("--diff/--no-diff", help="Show DAG diffs (default: with a prompt or --plan)."),
    ] = None,
    source_profile: Annotated[
        str | None,
        typer.Option("--source-profile", help="AWS profile to read the source stage with."),
    ] = None,
    project_dir: ProjectDir = None,
) -> None:
    """Promote pipelines into a stage: plan, gates, ordered uploads, manifest; `--plan` first."""
    from mwaa_elt.promote.gates import start_gates_of

    if prune and pipelines:
        raise typer.BadParameter(
            "--prune removes pipelines missing from the source, so it needs all of them; "
            "drop the pipeline names",
            param_hint="--prune",
        )
    project = project_at(project_dir)
    # Airflow takes longer to import than anything before the gates: it starts before the
    # modules that talk to AWS are imported.
    start_gates_of(to, project.stacks_dir, project.root)
    from mwaa_elt.promote.opening import PromoteRequest, open_promotion

    show_diffs = diff if diff is not None else (plan_only or not (yes or json_))
    request = PromoteRequest(
        to=to,
        source=from_,
        names=tuple(pipelines or ()),
        prune=prune,
        plan_only=plan_only,
        diffs=show_diffs or plan_only,
        skip_mwaa_checks=skip_mwaa_checks,
        rollback_on_error=rollback_on_error,
        source_profile=source_profile,
    )
    # The target's first reads were sent before the command line was imported (`mwaa-elt`
    # opens the promotion first: `opening.open_ahead`), or are sent now, before the rest of the
    # promotion is imported: a promotion that finds nothing to do mostly waits for them.
    opening = open_promotion(project, request)
    from mwaa_elt.promote.explain import plan_json
    from mwaa_elt.promote.gates import cancel_started_gates
    from mwaa_elt.promote.workflow import prepare_promotions

    # No spinner while preparing: its thread would keep validation and rendering from forking
    # workers; progress lines go to standard error.
    promotions = prepare_promotions(project, request, notify=err.print, opening=opening)
    # Every environment of the stage (its own, and a cutover's green one) is gated before any
    # is written: a DAG that fails the green environment's gates leaves both as they were.
    try:
        for promotion in promotions:
            if not promotion.up_to_date:
                _run_gates(promotion)
    finally:
        cancel_started_gates()
    results: list[JsonObject] = []
    for promotion in promotions:
        _announce(promotion, json_)
        if promotion.up_to_date:
            results.append(_settle(promotion, plan_only=plan_only, json_=json_))
        elif plan_only:
            if not json_:
                _print_plan(promotion, diffs=show_diffs)
            results.append(plan_json(promotion.plan, promotion.gates))
        else:
            results.append(
                _apply_confirmed(
                    promotion, yes=yes, json_=json_, diffs=show_diffs, force_unlock=force_unlock
                )
            )
    leftovers = None if plan_only else _green_leftovers(promotions[0])
    if leftovers is not None and not json_:
        err.print(f"[yellow]note:[/yellow] {escape(leftovers.advice())}")
    if json_:
        data = results[0]
        if len(results) > 1:
            data["cutover"] = {"environment": promotions[1].target.environment_name, **results[1]}
        if leftovers is not None:
            data["cutover_leftovers"] = leftovers.to_dict()
        print_json(data)


def _announce(promotion: Promotion, json_: bool) -> None:
    from mwaa_elt.stage.green import GreenStage

    green = promotion.target
    if isinstance(green, GreenStage) and not json_:
        out.print(
            f"cutover: promoting into the green environment {green.environment_name} "
            f"(Airflow {green.airflow.version}, s3://{green.source_bucket}/"
            f"{green.dags_prefix}, DAGs paused on creation)"
        )


def _settle(promotion: Promotion, *, plan_only: bool, json_: bool) -> JsonObject:
    """An up-to-date environment: its digests recorded, a stale lock cleared, said so."""
    from mwaa_elt.promote.explain import up_to_date_json
    from mwaa_elt.promote.workflow import settle_up_to_date

    settled = settle_up_to_date(promotion, plan_only=plan_only)
    if settled.warning is not None:
        err.print(
            "[yellow]warning:[/yellow] the input digests were not recorded "
            f"({escape(settled.warning)}); the next promotion renders these pipelines again"
        )
    if settled.cleared is not None:
        cleared = settled.cleared
        err.print(f"cleared a stale lock of {cleared.owner} (since {cleared.acquired_at})")
    if not json_:
        _print_plan(promotion, diffs=False)
        out.print(f"{_where(promotion.target)} is up to date: nothing to promote")
    return up_to_date_json(promotion.plan, plan_only=plan_only)


def _where(stage: Stage) -> str:
    """The stage, or the green environment of its cutover, as messages name it."""
    from mwaa_elt.stage.green import GreenStage

    if isinstance(stage, GreenStage):
        return f"{stage.name} (green environment {stage.environment_name})"
    return stage.name


def _green_leftovers(promotion: Promotion) -> GreenLeftovers | None:
    """What a removed cutover left in the stage's bucket, or None."""
    from mwaa_elt.promote.cutover import green_leftovers

    try:  # a note only: reading it never fails a promotion that succeeded
        return green_leftovers(promotion.target, promotion.store.client)
    except MwaaEltError:
        return None


def _run_gates(promotion: Promotion) -> None:
    """Each gate of the plan, in order, with a progress line; the first refusal stops."""
    from mwaa_elt.promote.explain import gate_title
    from mwaa_elt.promote.workflow import run_gate

    for gate in promotion.gates:
        with err.status(gate_title(gate)):
            run_gate(promotion, gate)


def _print_plan(promotion: Promotion, *, diffs: bool) -> None:
    from rich.syntax import Syntax

    from mwaa_elt.promote.explain import kept_line, plan_diffs, plan_rows, plan_summary, plan_title

    plan = promotion.plan
    # Like `terraform plan`, the table lists what changes; the summary counts the unchanged, and
    # `--json` and `status` list every pipeline. A one-line edit among 1,000 is one row.
    changing = [row for row in plan_rows(plan) if row.action != "unchanged"]
    if changing:
        table = Table(title=plan_title(plan), title_justify="left")
        for column in ("pipeline", "action", "version (live → planned)", "DAG"):
            table.add_column(column)
        for row in changing:
            colour = _ACTION_COLOURS.get(row.action)
            action = f"[{colour}]{row.action}[/{colour}]" if colour else row.action
            table.add_row(row.pipeline, action, row.versions, row.dag_key)
        out.print(table)
    else:
        out.print(plan_title(plan))
    out.print(plan_summary(plan))
    if diffs:
        for diff in plan_diffs(plan):
            out.print(Syntax(diff, "diff", theme="ansi_dark", word_wrap=True))
    kept = kept_line(promotion.kept)
    if kept is not None and not promotion.up_to_date:
        out.print(kept)


_ACTION_COLOURS = {
    "added": "green",
    "updated": "yellow",
    "removed": "red",
    "rolled_back": "magenta",
    "repaired": "yellow",
}


def _apply_confirmed(
    promotion: Promotion, *, yes: bool, json_: bool, diffs: bool, force_unlock: bool
) -> JsonObject:
    """The plan shown and confirmed, then applied under the lock and reported."""
    if not json_:
        _print_plan(promotion, diffs=diffs)
    force_token = _confirm_force_unlock(promotion.store, yes) if force_unlock else None
    _confirm(promotion.target, yes)
    outcome = _execute(promotion, force_unlock=force_unlock, force_token=force_token, quiet=json_)
    return _report_outcome(outcome, json_)


def _execute(
    promotion: Promotion, *, force_unlock: bool, force_token: str | None, quiet: bool
) -> Outcome:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from mwaa_elt.promote.workflow import execute_promotion

    plan = promotion.plan
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[step]}"),
        console=err,
        transient=True,
        disable=quiet,
    ) as bar:
        task = bar.add_task(f"apply to {plan.stage}", total=len(plan.steps), step="")

        def progress(index: int, total: int, step: Step) -> None:
            bar.update(task, completed=index, step=getattr(step, "key", "manifest"))

        verify = promotion.verify
        if verify is not None:
            bar.console.print(
                f"verifying with Airflow on {verify.environment_name} "
                f"(up to {verify.timeout_seconds:g} s)…"
            )
        return execute_promotion(
            promotion, force_unlock=force_unlock, force_token=force_token, progress=progress
        )


def _confirm(stage: Stage, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        if stage.production:
            raise ConfigError(
                f"stage {stage.name} is production: pass --yes to promote without a prompt "
                "(nothing was changed)"
            )
        return
    if not typer.confirm(f"Apply this plan to {stage.name}?", default=False):
        err.print("nothing was changed")
        raise typer.Exit(EXIT_INVALID)


def _confirm_force_unlock(store: StageStore, yes: bool) -> str | None:
    """Ask before breaking a lock whose holder is alive; the token of the lock to break."""
    from mwaa_elt.promote.lock import breaking_live_lock, read_lock

    live = breaking_live_lock(store)
    if live is None:
        held = read_lock(store)
        return None if held is None else held.token
    held, consequence = live
    if yes:
        err.print(f"[yellow]warning:[/yellow] --force-unlock: {escape(consequence)}")
        return held.token
    if not sys.stdin.isatty():
        raise ConfigError(f"{consequence}; pass --yes to break it anyway — nothing was changed")
    err.print(escape(consequence))
    if not typer.confirm("Break this live lock?", default=False):
        err.print("nothing was changed")
        raise typer.Exit(EXIT_INVALID)
    return held.token


def _report_outcome(outcome: Outcome, json_: bool) -> JsonObject:
    """Print what applying did; with `json_`, return it for the caller to print."""
    if outcome.lock_warning is not None:
        warning = escape(outcome.lock_warning)
        err.print(f"[yellow]warning:[/yellow] could not release the stage lock: {warning}")
    if outcome.took_over is not None:
        err.print(
            f"took over a stale lock of {outcome.took_over.owner} "
            f"(since {outcome.took_over.acquired_at})"
        )
    data = outcome.to_dict() if json_ else {}
    if not json_:
        applied = outcome.applied
        out.print(
            f"[green]applied[/green] to {applied.plan.stage}: {applied.uploaded} uploaded, "
            f"{applied.deleted} deleted, {applied.unchanged} unchanged"
            + (f", {applied.skipped} already present" if applied.skipped else "")
        )
        verification = outcome.verification
        if verification is not None:
            if verification.parsed:
                out.print(f"parsed by Airflow: {', '.join(sorted(verification.parsed))}")
            if verification.pending:
                out.print(
                    f"[yellow]not yet parsed after {verification.waited_seconds:.0f} s[/yellow]: "
                    f"{', '.join(verification.pending)} (check the Airflow UI)"
                )
            for name, trace in sorted(verification.import_errors.items()):
                err.print(f"[red]import error[/red] in {name}:\n{escape(trace)}")
        if outcome.rollback is not None:
            names = ", ".join(c.pipeline for c in outcome.rollback.plan.changes)
            out.print(f"[magenta]rolled back[/magenta]: {names}")
    if not outcome.ok:
        if json_:
            print_json(data)
        raise typer.Exit(EXIT_INVALID)
    return data


def status(stage: StageOption, json_: JsonFlag = False, project_dir: ProjectDir = None) -> None:
    """What is live in a stage (per pipeline its version, when, by whom, from where; drift) and
    how it is doing: the environment, import errors, last runs, alarms in ALARM."""
    from mwaa_elt.promote.health import status_report
    from mwaa_elt.promote.store import StageStore, make_client, store_client
    from mwaa_elt.stage.green import environments

    resolved = stage_at(project_dir, stage)
    # With a cutover, the green environment's pipelines and health follow the stage's own.
    environments_of = environments(resolved)
    overviews = [
        status_report(
            environment,
            StageStore(environment, store_client(environment.region)),
            make_client("mwaa", environment.region),
            make_client("cloudwatch", environment.region),
        )
        for environment in environments_of
    ]
    if json_:
        data = overviews[0].to_dict()
        if len(overviews) > 1:
            green = environments_of[1].environment_name
            data["cutover"] = {"environment": green, **overviews[1].to_dict()}
        print_json(data)
    else:
        for environment, overview in zip(environments_of, overviews, strict=True):
            if overview.offline:
                out.print(f"[yellow]{escape(overview.offline)}[/yellow]")
            if overview.live is not None:
                _print_live(overview.live, _where(environment))
            elif overview.live_problem:
                out.print(f"[red]live pipelines: {escape(overview.live_problem)}[/red]")
            _print_health(overview.health)
    if any(overview.live is None for overview in overviews):
        raise typer.Exit(EXIT_EXTERNAL)  # nothing live could be read: AWS failed


def _print_live(report: StageStatus, stage: str) -> None:
    from mwaa_elt.promote.explain import short_hash

    table = Table(title=f"status {stage} (s3://{report.bucket})", title_justify="left")
    for column in ("pipeline", "version", "from", "promoted at", "by", "commit", "DAG object"):
        table.add_column(column, overflow="fold")
    for item in report.pipelines:
        record = item.record
        colour = {"in sync": "green", "unfinished promotion": "yellow"}.get(item.drift, "red")
        drift = f"[{colour}]{item.drift}[/{colour}]"
        table.add_row(
            item.name,
            short_hash(record.source_hash),
            record.promoted_from,
            record.promoted_at.replace("T", " ").replace("+00:00", "Z"),
            record.promoted_by,
            short_commit(record.git_commit),
            drift,
        )
    out.print(table)
    if not report.pipelines:
        out.print(f"nothing promoted into {stage} yet")
    if report.unmanaged:
        out.print(f"DAG files not written by mwaa-elt (left alone): {', '.join(report.unmanaged)}")
    drifts = {item.drift for item in report.pipelines}
    if report.unfinished or "unfinished promotion" in drifts:
        added = f" (it added {', '.join(report.unfinished)})" if report.unfinished else ""
        out.print(
            f"[yellow]a promotion into {stage} stopped before writing the manifest{added}[/yellow]"
            "; run the same promote command again to complete it, or roll back"
        )
    if drifts & {"changed outside mwaa-elt", "missing"}:
        out.print(
            "drift: a DAG object changed outside mwaa-elt; restore the recorded version with "
            f"`mwaa-elt rollback <pipeline> --stage {stage} --to <version>`"
        )
    if report.lock is not None:
        from datetime import UTC, datetime

        stale = report.lock.stale_reason(datetime.now(UTC))
        note = f" — stale ({stale}): the next promotion takes it over" if stale else ""
        out.print(f"locked by {report.lock.owner} since {report.lock.acquired_at}{note}")


def _print_health(health: HealthReport) -> None:
    env = health.environment
    if env is not None:
        colour = "green" if env.status == "AVAILABLE" else "red"
        status = f"[{colour}]{env.status}[/{colour}]"
        line = f"environment {env.name}: {status}, Airflow {env.airflow_version}"
        if env.last_update_status and env.last_update_status != "SUCCESS":
            line += f"; last update {env.last_update_status}"
            line += f": {escape(env.last_update_error)}" if env.last_update_error else ""
        out.print(line)
    if health.import_errors:
        out.print(f"[red]{len(health.import_errors)} import error(s) in Airflow:[/red]")
        for entry in health.import_errors:
            last = entry.stack_trace.strip().splitlines()[-1:] or [""]
            out.print(f"  {escape(entry.filename)}: {escape(last[0])}")
    elif health.import_errors is not None:
        out.print("no import errors in Airflow")
    if health.last_runs:
        table = Table(title="last runs", title_justify="left")
        for column in ("pipeline", "state", "run", "started", "ended"):
            table.add_column(column, overflow="fold")
        for run in health.last_runs:
            colour = {"success": "green", "failed": "red"}.get(run.state or "", "yellow")
            state = f"[{colour}]{run.state}[/{colour}]" if run.state else "never ran"
            state = escape(run.note) if run.note else state
            table.add_row(
                run.pipeline, state, run.run_id or "-", run.started_at or "-", run.ended_at or "-"
            )
        out.print(table)
    if health.alarms:
        out.print(f"[red]{len(health.alarms)} alarm(s) in ALARM:[/red]")
        for alarm in health.alarms:
            out.print(f"  {alarm.name} since {alarm.since}: {escape(alarm.reason)}")
    elif health.alarms is not None:
        out.print(f"no alarm in ALARM (of {len(health.defined_alarms)} defined)")
    elif health.offline:
        out.print(f"alarms defined for the stage: {', '.join(health.defined_alarms) or 'none'}")
    for line in health.unavailable:
        out.print(f"[yellow]{escape(line)}[/yellow]")


def rollback(
    pipeline: Annotated[str, typer.Argument(help="The pipeline to roll back.")],
    stage: StageOption,
    to: Annotated[
        str | None,
        typer.Option("--to", help="Version (source hash or prefix) to restore; default: previous."),
    ] = None,
    yes: YesFlag = False,
    json_: JsonFlag = False,
    skip_mwaa_checks: SkipMwaaFlag = False,
    force_unlock: ForceUnlockFlag = False,
    project_dir: ProjectDir = None,
) -> None:
    """Put a pipeline's previous (or a named) version back live in a stage."""
    from mwaa_elt.promote.workflow import plan_rollback_promotion

    promotion = plan_rollback_promotion(
        project_at(project_dir), stage, {pipeline: to}, skip_mwaa_checks=skip_mwaa_checks
    )
    _run_gates(promotion)
    data = _apply_confirmed(
        promotion, yes=yes, json_=json_, diffs=not yes, force_unlock=force_unlock
    )
    if json_:
        print_json(data)


def sandbox(
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1.")] = 5000,
    ready_file: Annotated[
        Path | None,
        typer.Option("--ready-file", help="Write the endpoint URL here once the buckets exist."),
    ] = None,
    project_dir: ProjectDir = None,
) -> None:
    """Run an emulated AWS (moto's server on loopback) with every stage's bucket, until Ctrl-C."""
    import signal
    import threading

    from mwaa_elt.promote.sandbox import sandbox as run_sandbox
    from mwaa_elt.stage import load_all_stages

    stages = load_all_stages(project_at(project_dir).stacks_dir)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with run_sandbox(stages, port=port) as running:
        out.print(f"sandbox: S3 and STS on {running.endpoint_url}, buckets:")
        for bucket in running.buckets:
            out.print(f"  s3://{bucket}")
        out.print("point mwaa-elt (or any AWS tool) at it:")
        out.print(f"  export AWS_ENDPOINT_URL={running.endpoint_url}")
        out.print("  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing")
        out.print("then e.g. `mwaa-elt promote --to dev --yes --skip-mwaa-checks`; Ctrl-C stops it")
        if ready_file is not None:
            ready_file.write_text(running.endpoint_url + "\n")
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    err.print("sandbox stopped (its state is gone)")
