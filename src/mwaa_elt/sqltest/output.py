"""How `mwaa-elt test` shows a report: a rich table with a row diff per failure, or JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mwaa_elt.sqltest.compare import RowDiff, plain, show
from mwaa_elt.sqltest.execute import TestReport, TestResult

_STYLE = {"pass": "green", "fail": "red", "error": "red"}


def _where(path: Path, line: int, root: Path) -> str:
    try:
        shown = path.resolve().relative_to(root.resolve())
    except ValueError:
        shown = path
    return f"{shown}:{line}"


def report_json(report: TestReport, root: Path) -> dict[str, Any]:
    """The report as JSON-ready data: one entry per test, with its diff and problems."""
    return {
        "ok": report.ok,
        "passed": report.count("pass"),
        "failed": report.count("fail"),
        "errors": report.count("error"),
        "seconds": round(report.seconds, 3),
        "untested": list(report.untested),
        "without_sql": list(report.without_sql),
        "problems": [_problem(p, root) for p in report.problems],
        "tests": [_result_json(r, root) for r in report.results],
    }


def _problem(problem: Any, root: Path) -> dict[str, Any]:
    return {
        "path": _where(problem.path, problem.line, root).rsplit(":", 1)[0],
        "line": problem.line,
        "col": problem.col,
        "message": problem.message,
    }


def _result_json(result: TestResult, root: Path) -> dict[str, Any]:
    diff = result.diff
    return {
        "pipeline": result.pipeline,
        "name": result.name,
        "task": result.task,
        "where": _where(result.path, result.line, root),
        "status": result.status,
        "reason": result.reason,
        "seconds": round(result.seconds, 4),
        "diff": None
        if diff is None
        else {
            "columns": list(diff.columns),
            "missing": [plain(list(r)) for r in diff.missing],
            "unexpected": [plain(list(r)) for r in diff.unexpected],
            "misplaced": [
                {"position": p, "expected": plain(list(w)), "actual": plain(list(a))}
                for p, w, a in diff.misplaced
            ],
        },
        "problems": [_problem(p, root) for p in result.problems],
    }


def print_report(console: Console, report: TestReport, root: Path) -> None:
    """Pass/fail per test, then each failure with its reason and row diff, then a summary."""
    for problem in report.problems:
        where = _where(problem.path, problem.line, root)
        console.print(f"{where}:{problem.col}: {escape(problem.message)}")
    for result in report.results:
        style = _STYLE[result.status]
        console.print(
            f"[{style}]{result.status.upper():5}[/{style}] {result.pipeline}.{escape(result.name)}"
            f"  [dim]task {result.task}, {_where(result.path, result.line, root)}[/dim]"
        )
    for result in report.results:
        if result.status == "pass":
            continue
        console.print()
        console.print(
            f"[red]{result.status.upper()}[/red] [bold]{result.pipeline}.{escape(result.name)}"
            f"[/bold] (task {result.task}, {_where(result.path, result.line, root)})"
        )
        for problem in result.problems:
            where = _where(problem.path, problem.line, root)
            console.print(f"  {where}:{problem.col}: {escape(problem.message)}")
        if result.reason and not result.problems:
            console.print(f"  {escape(result.reason)}")
        if result.diff is not None:
            console.print(diff_table(result.diff))
    for name in report.untested:
        console.print(f"[yellow]no tests[/yellow]: pipelines/{name}/tests/ has no test file")
    for name in report.without_sql:
        console.print(
            f"[dim]nothing to test: {name} has no athena, unload, check or trino task "
            "(EMR Hive and Spark steps are not SQL tests)[/dim]"
        )
    passed, failed, errors = (report.count(s) for s in ("pass", "fail", "error"))
    summary = f"{passed} passed, {failed} failed, {errors} error(s) in {report.seconds:.2f} s"
    if report.problems:
        summary += f"; {len(report.problems)} problem(s) in test files"
    colour = "green" if report.ok else "red"
    console.print(f"[{colour}]{summary}[/{colour}]")


def diff_table(diff: RowDiff) -> Table:
    """Expected rows the answer lacks (-), rows nobody expected (+), rows out of place (#n)."""
    table = Table(box=None, pad_edge=False, padding=(0, 2, 0, 2))
    table.add_column("", no_wrap=True)
    for column in diff.columns:
        table.add_column(escape(column), overflow="fold")
    for position, wanted, actual in diff.misplaced:
        cells_w, cells_a = [], []
        for w, a in zip(wanted, actual, strict=True):
            differs = show(w) != show(a)
            cells_w.append(f"[red]{escape(show(w))}[/red]" if differs else escape(show(w)))
            cells_a.append(f"[green]{escape(show(a))}[/green]" if differs else escape(show(a)))
        table.add_row(f"[red]- row {position + 1}[/red]", *cells_w)
        table.add_row(f"[green]+ row {position + 1}[/green]", *cells_a)
    for row in diff.missing:
        table.add_row("[red]- expected[/red]", *(f"[red]{escape(show(v))}[/red]" for v in row))
    for row in diff.unexpected:
        table.add_row("[green]+ got[/green]", *(f"[green]{escape(show(v))}[/green]" for v in row))
    return table
