"""The analyst's commands on pipeline specs: validate, schema, test, new."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from mwaa_elt.cli.output import JsonFlag, ProjectDir, err, out, print_json, project_at, relative
from mwaa_elt.errors import EXIT_INVALID

if TYPE_CHECKING:
    from mwaa_elt.spec.problems import Problem


def _problem_json(problem: Problem) -> dict[str, str | int]:
    """One problem for --format json: the file it is in (a spec, or a SQL file it reads)."""
    return {
        "file": relative(problem.path),
        "line": problem.line,
        "col": problem.col,
        "message": problem.message,
    }


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
    from mwaa_elt.spec.targets import validate_targets

    if format_ not in {"text", "json"}:
        raise typer.BadParameter("expected text or json", param_hint="--format")
    validation = validate_targets(project_at(project_dir), paths)
    files = validation.files
    problems = [p for f in files for p in f.problems]
    if format_ == "json":
        print_json(
            {
                "ok": not problems,
                "files": [
                    {
                        "path": relative(f.path),
                        "pipeline": f.pipeline.pipeline if f.pipeline else None,
                        # A problem may be in a file the spec references (SQL, a script).
                        "problems": [_problem_json(p) for p in f.problems],
                        "warnings": [_problem_json(w) for w in f.warnings],
                    }
                    for f in files
                ],
            }
        )
    else:
        for problem in problems:
            out.print(
                f"{relative(problem.path)}:{problem.line}:{problem.col}: {escape(problem.message)}"
            )
        for warning in (w for f in files for w in f.warnings):
            err.print(
                f"[yellow]warning[/yellow] {relative(warning.path)}:{warning.line}:"
                f"{warning.col}: {escape(warning.message)}"
            )
        bad = sum(1 for f in files if f.problems)
        summary = f"{len(files)} spec(s) checked against {validation.stages} stage(s)"
        if problems:
            err.print(f"[red]{len(problems)} problem(s)[/red] in {bad} of {summary}")
        else:
            err.print(f"[green]ok[/green]: {summary}")
    if problems:
        raise typer.Exit(EXIT_INVALID)


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

    project = project_at(project_dir)
    report = run_tests(project, pipelines or None)
    if json_:
        print_json(report_json(report, project.root))
    else:
        print_report(out, report, project.root)
    if not report.ok:
        raise typer.Exit(EXIT_INVALID)


def new(
    name: Annotated[str, typer.Argument(help="Pipeline name: the DAG id and the folder name.")],
    engine: Annotated[str, typer.Option("--engine", "-e", help="athena or emr.")] = "athena",
    project_dir: ProjectDir = None,
) -> None:
    """Scaffold a commented, valid pipeline spec in pipelines/<name>/."""
    from mwaa_elt.scaffold import ensure_gitignore, scaffold_pipeline

    project = project_at(project_dir)
    for path in scaffold_pipeline(project.pipelines_dir, name, engine):
        out.print(f"created {relative(path)}")
    ignore = ensure_gitignore(project.root)
    if ignore is not None:
        out.print(f"updated {relative(ignore)}: build output stays out of git")
    out.print(f"next: edit it, then [bold]mwaa-elt validate pipelines/{name}[/bold]")
