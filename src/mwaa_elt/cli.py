"""The `mwaa-elt` command line: parses arguments, calls the library, formats what it returns."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from mwaa_elt import airflow_environments
from mwaa_elt.airflow_environments import uv_binary
from mwaa_elt.errors import EXIT_EXTERNAL, EXIT_INVALID, ConfigError, MwaaEltError
from mwaa_elt.mwaa_images import vendored_versions
from mwaa_elt.project import Project, find_project
from mwaa_elt.stage import Stage, load_all_stages, load_stage

app = typer.Typer(
    name="mwaa-elt",
    help="MWAA stages with Pulumi, ELT pipelines from YAML + SQL, promotion dev → staging → prod.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
stage_app = typer.Typer(help="What a stage is: its names, ARNs and settings.", no_args_is_help=True)
infra_app = typer.Typer(help="The Pulumi program, offline.", no_args_is_help=True)
app.add_typer(stage_app, name="stage")
app.add_typer(infra_app, name="infra")
airflow_envs_app = typer.Typer(
    help="Local environments built from MWAA's image for each Airflow version.",
    no_args_is_help=True,
)
app.add_typer(airflow_envs_app, name="airflow-envs")

# No emoji codes: a message quoting ':smile:' from a spec must print it as written.
out = Console(highlight=False, soft_wrap=True, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

ProjectDir = Annotated[
    Path | None,
    typer.Option("--project-dir", "-C", help="Project folder (default: found from the cwd)."),
]
StageOption = Annotated[str, typer.Option("--stage", "-s", help="Stage name: dev, staging, prod.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


def _project(project_dir: Path | None) -> Project:
    return find_project(project_dir)


def _stage(project_dir: Path | None, name: str) -> Stage:
    return load_stage(_project(project_dir).stacks_dir, name)


def _print_json(data: Any) -> None:
    # Plain print: rich would wrap long lines and break the JSON for machines reading a pipe.
    print(json.dumps(data, indent=2))


# -- airflow-envs ----------------------------------------------------------------------------

VersionsArgument = Annotated[
    list[str] | None,
    typer.Argument(help="Airflow versions (default: those the project's stages run)."),
]


def _airflow_versions(project_dir: Path | None, versions: list[str] | None) -> list[str]:
    if versions:
        return versions
    stages = load_all_stages(_project(project_dir).stacks_dir)
    return sorted({stage.airflow.version for stage in stages.values()})


@airflow_envs_app.command("build")
def airflow_envs_build(versions: VersionsArgument = None, project_dir: ProjectDir = None) -> None:
    """Build each environment from its lock (a no-op when it is current)."""
    for version in _airflow_versions(project_dir, versions):
        env = airflow_environments.environment(version)
        with err.status(f"building {env.path.name} (Python {env.image.python_minor})"):
            built = airflow_environments.build(env, uv_binary())
        out.print(f"{env.path.name}: {'built' if built else 'up to date'}")


@airflow_envs_app.command("lock")
def airflow_envs_lock(
    versions: VersionsArgument = None,
    all_: Annotated[bool, typer.Option("--all", help="Every vendored MWAA image.")] = False,
    project_dir: ProjectDir = None,
) -> None:
    """Resolve each environment under MWAA's constraints into its lock file."""
    chosen = vendored_versions() if all_ else _airflow_versions(project_dir, versions)
    for version in chosen:
        env = airflow_environments.environment(version)
        with err.status(f"resolving Airflow {version} under MWAA's constraints"):
            airflow_environments.lock(env, uv_binary())
        out.print(f"{env.lock_file.relative_to(env.root)}: written")


@airflow_envs_app.command("list")
def airflow_envs_list(json_: JsonFlag = False, project_dir: ProjectDir = None) -> None:
    """Each vendored MWAA image: its Python, and whether its environment is built and current."""
    rows = []
    for version in vendored_versions():
        env = airflow_environments.environment(version)
        rows.append(
            {
                "airflow_version": version,
                "python_version": env.image.python_version,
                "path": str(env.path),
                "locked": env.lock_file.is_file(),
                "current": airflow_environments.is_current(env),
            }
        )
    if json_:
        _print_json(rows)
        return
    table = Table("Airflow", "Python", "locked", "environment")
    for row in rows:
        state = "current" if row["current"] else "not built"
        table.add_row(row["airflow_version"], row["python_version"], str(row["locked"]), state)
    out.print(table)


# -- stage -----------------------------------------------------------------------------------


@stage_app.command("show")
def stage_show(
    stage: Annotated[str, typer.Argument(help="Stage name: dev, staging, prod.")],
    json_: JsonFlag = False,
    project_dir: ProjectDir = None,
) -> None:
    """Every name and ARN of a stage, derived from stacks/Pulumi.<stage>.yaml."""
    summary = _stage(project_dir, stage).summary()
    if json_:
        _print_json(summary)
        return
    table = Table(title=f"stage {stage}", show_header=False, title_justify="left")
    table.add_column("key", style="bold")
    table.add_column("value")
    for key, value in summary.items():
        shown = json.dumps(value) if isinstance(value, dict | list) else str(value)
        table.add_row(key, shown)
    out.print(table)


@stage_app.command("list")
def stage_list(json_: JsonFlag = False, project_dir: ProjectDir = None) -> None:
    """The project's stages in promotion order, validated."""
    from mwaa_elt.stage import load_all_stages

    stages = load_all_stages(_project(project_dir).stacks_dir)
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
        _print_json(rows)
        return
    table = Table(title="stages")
    for column in rows[0] if rows else []:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(v) if v is not None else "-" for v in row.values()))
    out.print(table)


# -- infra -----------------------------------------------------------------------------------


@infra_app.command("policies")
def infra_policies(stage: StageOption, json_: JsonFlag = False, project_dir: ProjectDir = None):
    """Every IAM role of the stage (execution, EMR, CI, release) exactly as Pulumi deploys it."""
    from mwaa_elt.iam_policies import stage_roles
    from mwaa_elt.stage import load_all_stages

    resolved = _stage(project_dir, stage)
    roles = stage_roles(resolved, load_all_stages(_project(project_dir).stacks_dir))
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
        _print_json(data)
        return
    for role in data["roles"]:
        out.print(f"[bold]role[/bold] {role['name']}")
        trust = [
            (s.get("Sid", ""), s["Effect"], s["Action"], s.get("Principal"), s.get("Condition"))
            for s in role["trust"]["Statement"]
        ]
        for sid, effect, action, principal, condition in trust:
            out.print(
                f"  trust {sid} {effect} {action} {json.dumps(principal)}"
                + (f" if {json.dumps(condition)}" if condition else "")
            )
        for policy in role["policies"]:
            table = Table(title=f"policy {policy['name']}", title_justify="left")
            for column in ("sid", "effect", "actions", "resources", "condition"):
                table.add_column(column, overflow="fold")
            for statement in policy["document"]["Statement"]:
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
def infra_preview(stage: StageOption, json_: JsonFlag = False, project_dir: ProjectDir = None):
    """What `pulumi up --stack <stage>` would create: the program run under Pulumi's mocks."""
    from mwaa_elt.infra.preview import preview_stage

    resolved = _stage(project_dir, stage)
    with err.status(f"running the Pulumi program for {stage} under mocks…"):
        resources = preview_stage(resolved)
    if json_:
        _print_json([resource.as_dict() for resource in resources])
        return
    out.print(_resource_tree(resolved, resources))
    protected = sum(1 for r in resources if r.protected)
    out.print(f"{len(resources)} resources, {protected} protected against deletion")


def _resource_tree(stage: Stage, resources: list[Any]) -> Tree:
    root = Tree(f"[bold]stack {stage.name}[/bold] ({stage.account_id}, {stage.region})")
    nodes: dict[str, Tree] = {}
    for resource in resources:
        parent = nodes.get(resource.parent or "", root)
        label = f"[cyan]{resource.type}[/cyan] {resource.name}"
        if resource.protected:
            label += " [red](protected)[/red]"
        node = parent.add(label)
        for key, value in resource.settings.items():
            node.add(f"[dim]{key}[/dim] = {_short(value)}")
        nodes[resource.name] = node
    return root


def _short(value: Any, limit: int = 110) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- pipelines ---------------------------------------------------------------------------------


def _spec_targets(project: Project, paths: list[Path] | None) -> tuple[list[Path], list[Path]]:
    """(every spec of the project plus the named ones, the named ones or all)."""
    from mwaa_elt.spec import discover_specs

    everything = discover_specs(project.pipelines_dir) if project.pipelines_dir.is_dir() else []
    if not paths:
        return everything, everything
    targets: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = discover_specs(path)
            if not found:
                raise ConfigError(f"{path}: no pipeline specs (<name>/<name>.yaml) in this folder")
            targets.extend(found)
        elif path.exists():
            targets.append(path)
        else:
            raise ConfigError(f"{path}: no such file or folder")
    resolved = {p.resolve() for p in everything}
    union = everything + [p for p in targets if p.resolve() not in resolved]
    return union, targets


def _relative(path: Path) -> str:
    # abspath first: a problem may be about a symbolic link, which resolve() would follow.
    here = Path.cwd().resolve()
    for candidate in (Path(os.path.abspath(path)), path.resolve()):
        try:
            return str(candidate.relative_to(here))
        except ValueError:
            continue
    return str(path)


def _problem_json(problem: Any) -> dict[str, Any]:
    """One problem for --format json: the file it is in (a spec, or a SQL file it reads)."""
    return {
        "file": _relative(problem.path),
        "line": problem.line,
        "col": problem.col,
        "message": problem.message,
    }


@app.command("validate")
def validate(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Spec files or folders (default: pipelines/).")
    ] = None,
    format_: Annotated[
        str, typer.Option("--format", help="text, or json for CI.", case_sensitive=False)
    ] = "text",
    project_dir: ProjectDir = None,
) -> None:
    """Check pipeline specs; every problem as path:line:col: message. Exit 1 if any."""
    from mwaa_elt.spec import validate_paths
    from mwaa_elt.stage import load_all_stages

    if format_ not in {"text", "json"}:
        raise typer.BadParameter("expected text or json", param_hint="--format")
    project = _project(project_dir)
    stages = load_all_stages(project.stacks_dir)
    everything, targets = _spec_targets(project, paths)
    report = validate_paths(everything, stages)
    wanted = {p.resolve() for p in targets}
    files = [f for f in report.files if f.path.resolve() in wanted]
    problems = [p for f in files for p in f.problems]
    if format_ == "json":
        _print_json(
            {
                "ok": not problems,
                "files": [
                    {
                        "path": _relative(f.path),
                        "pipeline": f.pipeline.pipeline if f.pipeline else None,
                        # A problem may be in a file the spec references (SQL, a script).
                        "problems": [
                            {
                                "file": _relative(p.path),
                                "line": p.line,
                                "col": p.col,
                                "message": p.message,
                            }
                            for p in f.problems
                        ],
                        "warnings": [_problem_json(w) for w in f.warnings],
                    }
                    for f in files
                ],
            }
        )
    else:
        for problem in problems:
            out.print(
                f"{_relative(problem.path)}:{problem.line}:{problem.col}: {escape(problem.message)}"
            )
        for warning in (w for f in files for w in f.warnings):
            err.print(
                f"[yellow]warning[/yellow] {_relative(warning.path)}:{warning.line}:"
                f"{warning.col}: {escape(warning.message)}"
            )
        bad = sum(1 for f in files if f.problems)
        summary = f"{len(files)} spec(s) checked against {len(stages)} stage(s)"
        if problems:
            err.print(f"[red]{len(problems)} problem(s)[/red] in {bad} of {summary}")
        else:
            err.print(f"[green]ok[/green]: {summary}")
    if problems:
        raise typer.Exit(EXIT_INVALID)


@app.command("schema")
def schema(
    out_path: Annotated[
        Path | None,
        typer.Option("--out", help="Write here (default: print; pipelines/pipeline.schema.json)."),
    ] = None,
    tests: Annotated[
        bool,
        typer.Option(
            "--tests", help="SQL test files' schema instead (pipelines/test.schema.json)."
        ),
    ] = False,
) -> None:
    """The JSON Schema of pipeline specs (or SQL test files), for editors (yaml-language-server)."""
    from mwaa_elt.spec import pipeline_json_schema_text
    from mwaa_elt.sqltest import sqltest_json_schema_text

    text = sqltest_json_schema_text() if tests else pipeline_json_schema_text()
    if out_path is None:
        print(text, end="" if text.endswith("\n") else "\n")
        return
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(text, encoding="utf-8")
    err.print(f"wrote {out_path}")


@app.command("test")
def test(
    pipelines: Annotated[
        list[str] | None,
        typer.Argument(
            help="Pipeline names (default: every pipeline with tests).", show_default=False
        ),
    ] = None,
    json_: JsonFlag = False,
    project_dir: ProjectDir = None,
) -> None:
    """Run SQL unit tests (pipelines/<name>/tests/*.yaml) on DuckDB. Exit 1 on any failure."""
    from mwaa_elt.sqltest import run_tests
    from mwaa_elt.sqltest.output import print_report, report_json

    project = _project(project_dir)
    report = run_tests(project, pipelines or None)
    if json_:
        _print_json(report_json(report, project.root))
    else:
        print_report(out, report, project.root)
    if not report.ok:
        raise typer.Exit(EXIT_INVALID)


@app.command("new")
def new(
    name: Annotated[str, typer.Argument(help="Pipeline name: the DAG id and the folder name.")],
    engine: Annotated[str, typer.Option("--engine", "-e", help="athena or emr.")] = "athena",
    project_dir: ProjectDir = None,
) -> None:
    """Scaffold a commented, valid pipeline spec in pipelines/<name>/."""
    from mwaa_elt.scaffold import ensure_gitignore, scaffold_pipeline

    project = _project(project_dir)
    for path in scaffold_pipeline(project.pipelines_dir, name, engine):
        out.print(f"created {_relative(path)}")
    ignore = ensure_gitignore(project.root)
    if ignore is not None:
        out.print(f"updated {_relative(ignore)}: build output stays out of git")
    out.print(f"next: edit it, then [bold]mwaa-elt validate pipelines/{name}[/bold]")


def _valid_pipelines(project: Project, stages: dict, names: list[str] | None) -> dict:
    """Every spec validated together; ConfigError with all problems, or the selected pipelines."""
    from mwaa_elt.spec import validate_paths

    everything, _ = _spec_targets(project, None)
    report = validate_paths(everything, stages)
    if not report.ok:
        raise _not_rendered(report)
    pipelines = report.pipelines
    if names:
        unknown = sorted(set(names) - set(pipelines))
        if unknown:
            raise ConfigError(
                f"no pipeline named {', '.join(unknown)}; known: {', '.join(sorted(pipelines))}"
            )
        pipelines = {name: pipelines[name] for name in sorted(names)}
    return pipelines


def _not_rendered(report: Any) -> ConfigError:
    return ConfigError(
        [f"{_relative(p.path)}:{p.line}:{p.col}: {p.message}" for p in report.problems]
        + ["nothing was rendered: fix the problems above (mwaa-elt validate)"]
    )


def _stages_with(project: Project, stage: str) -> dict[str, Stage]:
    from mwaa_elt.stage import load_all_stages

    stages = load_all_stages(project.stacks_dir)
    if stage not in stages:
        raise ConfigError(f"no stage '{stage}'; known: {', '.join(stages)}")
    return stages


def _render_stage(project: Project, stage: str, names: list[str] | None) -> Any:
    """Validate every spec, then render the selected pipelines for `stage` (writes nothing)."""
    from mwaa_elt.render import render_pipelines

    # No spinner here: validating and rendering fork worker processes, and a fork must not
    # copy a thread (the spinner's) that may hold the terminal's lock.
    stages = _stages_with(project, stage)
    selected = _valid_pipelines(project, stages, names)
    return render_pipelines(
        selected, stages[stage], project.templates_dir, project_root=project.root
    )


def _render_cached(
    project: Project, stage: str, names: list[str] | None, target: Path, force: bool
) -> tuple[Any, Path]:
    """`_render_stage` that redoes only what changed since the last render into `target`."""
    from mwaa_elt.render.cache import load_record, record_path, render_incremental

    stages = _stages_with(project, stage)
    everything, _ = _spec_targets(project, None)
    record_file = record_path(project.root / "build" / ".cache", stage, target)
    outcome = render_incremental(
        everything,
        stages,
        stages[stage],
        templates_dir=project.templates_dir,
        stacks_dir=project.stacks_dir,
        project_root=project.root,
        out_dir=target,
        previous=None if force else load_record(record_file),
        names=names,
    )
    if outcome.result is None:
        raise _not_rendered(outcome.validation)
    return outcome, record_file


@app.command("render")
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
    from mwaa_elt.render import write_render
    from mwaa_elt.render.cache import save_record

    project = _project(project_dir)
    target = out_dir or project.build_dir(stage)
    outcome, record_file = _render_cached(project, stage, pipelines, target, force)
    result = outcome.result
    summary = write_render(result, target, pipelines=pipelines or None)
    try:
        save_record(record_file, outcome.record)
    except OSError as exc:  # the render is written; only the next one loses its head start
        err.print(f"[yellow]warning:[/yellow] could not save {_relative(record_file)}: {exc}")
    data = {
        "stage": stage,
        "airflow_version": result.airflow_version,
        "out": _relative(target),
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
        _print_json(data)
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


@app.command("check")
def check(
    stage: StageOption,
    budget: Annotated[
        float, typer.Option("--budget", help="Parse-time budget per DAG file, in seconds.")
    ] = 1.0,
    json_: JsonFlag = False,
    project_dir: ProjectDir = None,
) -> None:
    """Render every DAG for a stage and load it with Airflow's DagBag under its Airflow version."""
    import tempfile

    from mwaa_elt.check import run_dagbag
    from mwaa_elt.render import write_render

    project = _project(project_dir)
    result = _render_stage(project, stage, None)
    with tempfile.TemporaryDirectory(prefix="mwaa-elt-check-") as scratch:
        folder = Path(scratch) / "out"
        write_render(result, folder)
        with err.status(f"loading DAGs with DagBag under Airflow {result.airflow_version}…"):
            report = run_dagbag(
                folder / "dags",
                result.airflow_version,
                budget_seconds=budget,
                project_root=project.root,
            )
    rows = []
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
        _print_json(data)
    else:
        table = Table(
            title=f"check {stage}: DagBag under Airflow {report.airflow_version}, "
            f"budget {budget:g}s per file"
        )
        for column in ("DAG file", "parse", "result", "details"):
            table.add_column(column, overflow="fold")
        for row in rows:
            details = [f"{f['rule']}: {f['message']}" for f in row["failures"]]
            details += [f"(warning) {f['rule']}: {f['message']}" for f in row["warnings"]]
            table.add_row(
                row["file"],
                f"{row['parse_seconds'] * 1000:.0f} ms",
                "[green]ok[/green]" if row["ok"] else "[red]FAILED[/red]",
                escape("\n".join(details)) or "all gates pass",
            )
        out.print(table)
    if not report.ok:
        raise typer.Exit(EXIT_INVALID)


# -- promotion ---------------------------------------------------------------------------------

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


def _stage_store(stage: Stage, profile: str | None = None) -> Any:
    from mwaa_elt.promote.store import StageStore, make_client

    return StageStore(stage, make_client("s3", stage.region, profile=profile))


def _environment(stage: Stage, profile: str | None = None) -> Any:
    from mwaa_elt.promote.mwaa import MwaaEnvironment
    from mwaa_elt.promote.store import make_client

    return MwaaEnvironment(stage, make_client("mwaa", stage.region, profile=profile))


def _short_hash(value: str | None) -> str:
    return value[:12] if value else "-"


def _short_commit(value: str | None) -> str:
    """A commit cut to 12 hex digits, keeping a suffix such as `-dirty` that says what it was."""
    if not value:
        return "-"
    commit, dash, suffix = value.partition("-")
    return commit[:12] + dash + suffix


def _print_plan(plan: Any, *, diffs: bool) -> None:
    from rich.syntax import Syntax

    from mwaa_elt.promote.plan import (
        DeleteDag,
        UploadBundle,
        UploadScript,
        UploadTemplates,
        WriteDag,
    )

    table = Table(
        title=f"plan: {plan.source} → {plan.stage} (s3://{plan.bucket})", title_justify="left"
    )
    for column in ("pipeline", "action", "version (live → planned)", "DAG"):
        table.add_column(column)
    colours = {
        "added": "green",
        "updated": "yellow",
        "removed": "red",
        "rolled_back": "magenta",
        "repaired": "yellow",
    }
    for change in plan.changes:
        colour = colours.get(change.action)
        action = f"[{colour}]{change.action}[/{colour}]" if colour else change.action
        versions = (
            _short_hash(change.source_hash)
            if change.action == "unchanged"
            else f"{_short_hash(change.previous_source_hash)} → {_short_hash(change.source_hash)}"
        )
        table.add_row(change.pipeline, action, versions, change.dag_key)
    out.print(table)
    kinds = [
        (UploadScript, "script"),
        (UploadBundle, "source bundle"),
        (UploadTemplates, "templates snapshot"),
        (WriteDag, "DAG file"),
        (DeleteDag, "DAG deletion"),
    ]
    parts = [
        f"{n} {label}{'s' if n != 1 else ''}"
        for kind, label in kinds
        if (n := sum(isinstance(step, kind) for step in plan.steps))
    ]
    counts = ", ".join(
        f"{plan.count(a)} {a.replace('_', ' ')}"
        for a in ("added", "updated", "unchanged", "removed", "rolled_back", "repaired")
        if plan.count(a) or a not in {"rolled_back", "repaired"}
    )
    if plan.recorded:
        parts.append(f"the live version of {len(plan.recorded)} DAG file(s) recorded")
    writes = f"{', '.join(parts)}, then the manifest" if parts else "nothing to write"
    out.print(f"{counts}; {writes}")
    if diffs:
        for change in plan.changes:
            if change.diff:
                out.print(Syntax(change.diff, "diff", theme="ansi_dark", word_wrap=True))


def _confirm(plan: Any, stage: Stage, yes: bool) -> None:
    import sys

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


def _run_plan(
    store: Any,
    plan: Any,
    *,
    identity: Any,
    force_unlock: bool,
    force_token: str | None,
    verify: Any,
    quiet: bool,
) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from mwaa_elt.promote.execute import execute
    from mwaa_elt.promote.lock import lock_owner

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

        def progress(index: int, total: int, step: Any) -> None:
            bar.update(task, completed=index, step=getattr(step, "key", "manifest"))

        if verify is not None:
            bar.console.print(
                f"verifying with Airflow on {verify.environment.name} "
                f"(up to {verify.timeout_seconds:g} s)…"
            )
        return execute(
            store,
            plan,
            owner=lock_owner(identity.promoted_by),
            identity=identity,
            force_unlock=force_unlock,
            force_token=force_token,
            progress=progress,
            verify=verify,
        )


def _report_outcome(outcome: Any, json_: bool) -> dict[str, Any] | None:
    """Print what applying did; with `json_`, return it instead (the caller prints it)."""
    if outcome.lock_warning is not None:
        warning = escape(outcome.lock_warning)
        err.print(f"[yellow]warning:[/yellow] could not release the stage lock: {warning}")
    if outcome.took_over is not None:
        err.print(
            f"took over a stale lock of {outcome.took_over.owner} "
            f"(since {outcome.took_over.acquired_at})"
        )
    data = outcome.to_dict() if json_ else None
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
        if data is not None:
            _print_json(data)
        raise typer.Exit(EXIT_INVALID)
    return data


def _verify(stage: Stage, skip: bool, rollback_on_error: bool) -> Any:
    from mwaa_elt.promote.execute import Verify

    if skip:
        return None
    return Verify(
        _environment(stage),
        timeout_seconds=stage.config.gates.import_error_timeout_seconds,
        rollback_on_error=rollback_on_error,
    )


@app.command("promote")
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
    """Promote pipelines into a stage: plan, gates, ordered uploads, manifest; `--plan` first.

    While the stage's stack has a `cutover` block, every pipeline is promoted into the green
    environment too: rendered for its Airflow version, gated there, paused on creation."""
    from mwaa_elt.cutover import environments
    from mwaa_elt.promote.builds import check_route
    from mwaa_elt.stage import load_all_stages

    project = _project(project_dir)
    stages = load_all_stages(project.stacks_dir)
    target = check_route(stages, from_, to)
    if prune and pipelines:
        raise typer.BadParameter(
            "--prune removes pipelines missing from the source, so it needs all of them; "
            "drop the pipeline names",
            param_hint="--prune",
        )
    # Every environment is planned and gated before any is written: a DAG that fails the green
    # environment's gates leaves both as they were.
    pending = []

    def announce(environment: Stage) -> None:
        if environment is not target and not json_:
            out.print(
                f"cutover: promoting into the green environment {environment.environment_name} "
                f"(Airflow {environment.airflow.version}, s3://{environment.source_bucket}/"
                f"{environment.dags_prefix}, DAGs paused on creation)"
            )

    for environment in environments(target):
        if plan_only:  # its plan is printed now; otherwise when it is applied, below
            announce(environment)
        pending.append(
            _promote_environment(
                project,
                stages,
                environment,
                from_,
                pipelines,
                plan_only=plan_only,
                yes=yes,
                json_=json_,
                prune=prune,
                skip_mwaa_checks=skip_mwaa_checks,
                force_unlock=force_unlock,
                rollback_on_error=rollback_on_error,
                diff=diff,
                source_profile=source_profile,
            )
        )
    results = []
    for environment, step in zip(environments(target), pending, strict=True):
        if callable(step):
            announce(environment)
            results.append(step())
        else:
            results.append(step)
    leftovers = None if plan_only else _green_leftovers(target)
    if leftovers is not None and not json_:
        err.print(f"[yellow]note:[/yellow] {escape(leftovers.advice())}")
    if json_:
        data = results[0]
        if len(results) > 1:
            data["cutover"] = {
                "environment": environments(target)[1].environment_name,
                **results[1],
            }
        if leftovers is not None:
            data["cutover_leftovers"] = leftovers.to_dict()
        _print_json(data)


def _green_leftovers(stage: Stage) -> Any:
    """What a removed cutover left in the stage's bucket (`promote.cutover`), or None."""
    from mwaa_elt.promote.cutover import green_leftovers
    from mwaa_elt.promote.store import make_client

    try:  # a note only: reading it never fails a promotion that succeeded
        return green_leftovers(stage, make_client("s3", stage.region))
    except MwaaEltError:
        return None


def _promote_environment(
    project: Project,
    stages: dict[str, Stage],
    target: Stage,
    from_: str | None,
    pipelines: list[str] | None,
    *,
    plan_only: bool,
    yes: bool,
    json_: bool,
    prune: bool,
    skip_mwaa_checks: bool,
    force_unlock: bool,
    rollback_on_error: bool,
    diff: bool | None,
    source_profile: str | None,
) -> dict[str, Any] | Callable[[], dict[str, Any]]:
    """Plan and gate a promotion into one environment of the stage (its own, or a cutover's
    green one): what `--json` prints for it when there is nothing to apply, else the function
    that applies it (and returns that)."""
    from mwaa_elt.promote.apply import ApplyResult
    from mwaa_elt.promote.execute import Outcome
    from mwaa_elt.promote.identity import caller_arn, identity_now
    from mwaa_elt.promote.lock import clear_stale, lock_owner
    from mwaa_elt.promote.plan import build_plan, keys_to_diff
    from mwaa_elt.promote.status import off_record

    store = _stage_store(target)
    identity = identity_now(caller_arn(target))
    manifest, etag = store.load_manifest()
    # DAG objects that are not the recorded version are converged by content, so their
    # pipelines are rendered even when their inputs are unchanged.
    drifted = off_record(store, manifest.pipelines)
    prepared = _prepare(
        project, stages, target, from_, pipelines, source_profile, manifest, set(drifted)
    )
    # Only the pipelines rendered anew can get a new release: only their histories are read.
    manifest = store.load_histories(manifest, [build.name for build in prepared.builds])
    show_diffs = diff if diff is not None else (plan_only or not (yes or json_))
    wanted = keys_to_diff(prepared.builds, manifest) if show_diffs or plan_only else []
    live = store.read_dags(wanted)
    names = {build.name for build in prepared.builds}
    plan = build_plan(
        target,
        prepared.builds,
        manifest,
        etag,
        source=prepared.source,
        identity=identity,
        live_dags=live,
        prune=prune,
        unchanged=prepared.unchanged,
        off_record={name: live for name, live in drifted.items() if name in names},
    )
    kept = (
        []
        if prune or not prepared.complete
        else sorted(
            set(manifest.pipelines) - {b.name for b in prepared.builds} - set(prepared.unchanged)
        )
    )
    if not plan.has_changes:
        # Nothing live changes, so no gate has anything to protect. At most the manifest
        # records the inputs of DAGs that render as recorded, under the stage lock; otherwise a
        # dead promoter's lock is cleared, so that the stage ends as a completed promotion leaves
        # it.
        if plan.records_only and not plan_only:
            try:  # bookkeeping only: never breaks a lock, never fails the promotion
                _run_plan(
                    store,
                    plan,
                    identity=identity,
                    force_unlock=False,
                    force_token=None,
                    verify=None,
                    quiet=True,
                )
            except MwaaEltError as error:
                err.print(
                    "[yellow]warning:[/yellow] the input digests were not recorded "
                    f"({escape('; '.join(error.messages))}); the next promotion renders "
                    "these pipelines again"
                )
        else:
            cleared = None if plan_only else clear_stale(store, lock_owner(identity.promoted_by))
            if cleared is not None:
                err.print(f"cleared a stale lock of {cleared.owner} (since {cleared.acquired_at})")
        if json_:
            data = Outcome(ApplyResult(plan)).to_dict()
            return {**data, "plan_only": True} if plan_only else data
        _print_plan(plan, diffs=False)
        out.print(f"{_where(target)} is up to date: nothing to promote")
        return {}
    _gates(project, stages, prepared, plan, skip_mwaa=skip_mwaa_checks, profile=source_profile)
    if plan_only:
        if json_:
            return _plan_json(plan)
        _print_plan(plan, diffs=show_diffs)
        _print_kept(kept)
        return {}
    if not skip_mwaa_checks:
        with err.status(f"gate: MWAA environment {target.environment_name} is AVAILABLE…"):
            _environment(target).require_available()
    # Applied once every environment of the stage has passed its gates (`promote`).
    return lambda: _apply_confirmed(
        store,
        plan,
        identity,
        yes=yes,
        json_=json_,
        diffs=show_diffs,
        kept=kept,
        skip_mwaa=skip_mwaa_checks,
        force_unlock=force_unlock,
        rollback_on_error=rollback_on_error,
    )


def _apply_confirmed(
    store: Any,
    plan: Any,
    identity: Any,
    *,
    yes: bool,
    json_: bool,
    diffs: bool,
    kept: list[str],
    skip_mwaa: bool,
    force_unlock: bool,
    rollback_on_error: bool,
) -> dict[str, Any]:
    """The plan shown and confirmed, then applied under the lock and reported."""
    target = store.stage
    if not json_:
        _print_plan(plan, diffs=diffs)
        _print_kept(kept)
    force_token = _confirm_force_unlock(store, yes) if force_unlock else None
    _confirm(plan, target, yes)
    outcome = _run_plan(
        store,
        plan,
        identity=identity,
        force_unlock=force_unlock,
        force_token=force_token,
        verify=_verify(target, skip_mwaa, rollback_on_error),
        quiet=json_,
    )
    return _report_outcome(outcome, json_) or {}


def _confirm_force_unlock(store: Any, yes: bool) -> str | None:
    """Ask before breaking a lock whose holder is alive; the token of the lock to break."""
    import sys

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


def _prepare(
    project: Project,
    stages: dict[str, Stage],
    target: Stage,
    source: str | None,
    names: list[str] | None,
    profile: str | None,
    manifest: Any,
    force: set[str],
) -> Any:
    """What the promotion moves: the working tree's pipelines, or the source stage's; only
    those whose inputs differ from what the target's manifest records are rendered."""
    from mwaa_elt.promote.builds import from_stage, from_working_tree
    from mwaa_elt.promote.bundle import build_bundle
    from mwaa_elt.promote.inputs import environment_digest, select_working_tree

    environment = environment_digest(target, project.stacks_dir, project.root)
    # No spinner here: its thread would keep validation and rendering from forking workers.
    if source is None:
        everything, _ = _spec_targets(project, None)
        templates = build_bundle(project.templates_dir)
        selection = select_working_tree(
            everything,
            project.pipelines_dir,
            stages,
            manifest,
            environment,
            templates.source_hash,
            names,
            force=force,
        )
        if not selection.report.ok:
            raise _not_rendered(selection.report)
        if selection.changed:
            err.print(
                f"rendering {len(selection.changed)} changed pipeline(s) for {target.name} "
                f"({len(selection.unchanged)} unchanged)…"
            )
        return from_working_tree(
            project, target, selection, templates, environment, complete=not names
        )
    err.print(f"reading what is live in {source} and rendering what changed for {target.name}…")
    return from_stage(
        stages,
        _stage_store(stages[source], profile),
        target,
        names,
        target_manifest=manifest,
        environment=environment,
        force=force,
    )


def _gates(
    project: Project,
    stages: dict[str, Stage],
    prepared: Any,
    plan: Any,
    *,
    skip_mwaa: bool,
    profile: str | None,
) -> None:
    """The gates a plan that writes something must pass: packages, DagBag, source runs."""
    from mwaa_elt.promote.gates import dagbag_gate, requirements_gate
    from mwaa_elt.promote.mwaa import require_source_runs_succeeded

    target = prepared.target
    written = plan.changed()
    requirements = project.environment_dir / "requirements.txt"
    requirements_gate(prepared.render, target, requirements, written)
    if written:
        with err.status(
            f"integrity gate: {len(written)} DAG(s) in DagBag under Airflow "
            f"{target.airflow.version}…"
        ):
            dagbag_gate(prepared.render, target, project.root, written)
    source = prepared.source
    if source in stages and target.config.gates.require_source_run_success and not skip_mwaa:
        moving = [c.pipeline for c in plan.changes if c.action in {"added", "updated"}]
        if moving:
            with err.status(f"gate: latest runs in {source} succeeded…"):
                require_source_runs_succeeded(_environment(stages[source], profile), moving)


def _where(stage: Stage) -> str:
    """The stage, or the green environment of its cutover, as messages name it."""
    from mwaa_elt.cutover import GreenStage

    if isinstance(stage, GreenStage):
        return f"{stage.name} (green environment {stage.environment_name})"
    return stage.name


def _print_kept(kept: list[str]) -> None:
    if kept:
        out.print(
            f"kept, though the source no longer has them: {', '.join(kept)} (--prune removes them)"
        )


def _plan_json(plan: Any) -> dict[str, Any]:
    from mwaa_elt.promote.plan import DeleteDag, UploadScript, WriteDag

    return {
        "stage": plan.stage,
        "from": plan.source,
        "plan_only": True,
        "uploaded": 0,
        "deleted": 0,
        "unchanged": plan.count("unchanged"),
        "planned": {
            "uploads": sum(isinstance(s, WriteDag | UploadScript) for s in plan.steps),
            "deletes": sum(isinstance(s, DeleteDag) for s in plan.steps),
        },
        "pipelines": [{**c.to_dict(), "diff": c.diff} for c in plan.changes],
    }


@app.command("status")
def status(stage: StageOption, json_: JsonFlag = False, project_dir: ProjectDir = None) -> None:
    """What is live in a stage (per pipeline its version, when, by whom, from where; drift) and
    how it is doing: the environment, import errors, last runs, alarms in ALARM."""
    from mwaa_elt.cutover import environments
    from mwaa_elt.promote.health import status_report
    from mwaa_elt.promote.store import make_client

    resolved = _stage(project_dir, stage)
    # With a cutover, the green environment's pipelines and health follow the stage's own.
    overviews = [
        status_report(
            environment,
            _stage_store(environment),
            make_client("mwaa", environment.region),
            make_client("cloudwatch", environment.region),
        )
        for environment in environments(resolved)
    ]
    if json_:
        data = overviews[0].to_dict()
        if len(overviews) > 1:
            green = environments(resolved)[1].environment_name
            data["cutover"] = {"environment": green, **overviews[1].to_dict()}
        _print_json(data)
    else:
        for environment, overview in zip(environments(resolved), overviews, strict=True):
            title = _where(environment)
            if overview.offline:
                out.print(f"[yellow]{escape(overview.offline)}[/yellow]")
            if overview.live is not None:
                _print_live(overview.live, title)
            elif overview.live_problem:
                out.print(f"[red]live pipelines: {escape(overview.live_problem)}[/red]")
            _print_health(overview.health)
    if any(overview.live is None for overview in overviews):
        raise typer.Exit(EXIT_EXTERNAL)  # nothing live could be read: AWS failed


def _print_live(report: Any, stage: str) -> None:
    table = Table(title=f"status {stage} (s3://{report.bucket})", title_justify="left")
    for column in ("pipeline", "version", "from", "promoted at", "by", "commit", "DAG object"):
        table.add_column(column, overflow="fold")
    for item in report.pipelines:
        record = item.record
        colour = {"in sync": "green", "unfinished promotion": "yellow"}.get(item.drift, "red")
        drift = f"[{colour}]{item.drift}[/{colour}]"
        table.add_row(
            item.name,
            _short_hash(record.source_hash),
            record.promoted_from,
            record.promoted_at.replace("T", " ").replace("+00:00", "Z"),
            record.promoted_by,
            _short_commit(record.git_commit),
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


def _print_health(health: Any) -> None:
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


@app.command("rollback")
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
    from mwaa_elt.promote.identity import caller_arn, identity_now
    from mwaa_elt.promote.rollback import plan_rollback

    target = _stage(project_dir, stage)
    store = _stage_store(target)
    identity = identity_now(caller_arn(target))
    manifest, etag = store.load_manifest()
    plan = plan_rollback(store, manifest, etag, {pipeline: to}, identity)
    if not skip_mwaa_checks:
        with err.status(f"gate: MWAA environment {target.environment_name} is AVAILABLE…"):
            _environment(target).require_available()
    data = _apply_confirmed(
        store,
        plan,
        identity,
        yes=yes,
        json_=json_,
        diffs=not yes,
        kept=[],
        skip_mwaa=skip_mwaa_checks,
        force_unlock=force_unlock,
        rollback_on_error=False,
    )
    if json_:
        _print_json(data)


@app.command("run")
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
    report = run_pipeline(_project(project_dir), stage, pipeline, logical_date, rerun=rerun)
    if json_:
        _print_json(report.to_json())
    else:
        _print_run(report)
    if not report.ok:
        raise typer.Exit(EXIT_INVALID)


_STATE_STYLE = {"success": "green", "skipped": "dim", "failed": "red", "upstream_failed": "yellow"}


def _print_run(report: Any) -> None:
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
                escape(_short(" ".join((task.ran or "").split()), 60)),
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


@app.command("sandbox")
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

    stages = load_all_stages(_project(project_dir).stacks_dir)
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


def main() -> None:
    """Console entry point: user errors become messages and exit codes, never tracebacks."""
    try:
        # Standalone mode: click reports usage errors itself, with exit code 2.
        app()
    except MwaaEltError as exc:
        for message in exc.messages:
            err.print(f"[red]error:[/red] {escape(message)}")
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise SystemExit(EXIT_INVALID) from None
