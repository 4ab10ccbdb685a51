"""SQL unit tests (`mwaa-elt test`): a task's query, run on given rows in DuckDB, must answer
the expected rows.

`collect` reads the test files and pipelines and prepares every test (`plan.py`, no side
effects); `execute` runs them (`execute.py`), one transaction each on one connection.
"""

from __future__ import annotations

from pathlib import Path

from mwaa_elt.errors import ConfigError
from mwaa_elt.project import Project
from mwaa_elt.spec.problems import Problem
from mwaa_elt.sqltest.execute import TestReport, TestResult, execute
from mwaa_elt.sqltest.load import LoadedTest, discover_tests, load_test_file
from mwaa_elt.sqltest.model import sqltest_json_schema, sqltest_json_schema_text
from mwaa_elt.sqltest.plan import SQL_KINDS, TestPlan, plan_tests

__all__ = [
    "TestPlan",
    "TestReport",
    "TestResult",
    "collect",
    "execute",
    "run_tests",
    "sqltest_json_schema",
    "sqltest_json_schema_text",
]


def collect(project: Project, names: list[str] | None = None) -> TestPlan:
    """Every test of the named pipelines (all when None), prepared; ConfigError for an unknown
    pipeline name or unreadable stacks."""
    from mwaa_elt.spec.folder import discover_specs
    from mwaa_elt.spec.validate import validate_paths
    from mwaa_elt.stage import load_all_stages

    stages = load_all_stages(project.stacks_dir)
    found = discover_tests(project.pipelines_dir, names)
    if names:
        unknown = [n for n in names if n not in found]
        if unknown:
            known = ", ".join(sorted(discover_tests(project.pipelines_dir))) or "none"
            raise ConfigError(f"no pipeline folder pipelines/{unknown[0]}/; pipelines: {known}")
    problems: list[Problem] = []
    loaded: list[LoadedTest] = []
    for pipeline, files in found.items():
        for path in files:
            tests, file_problems = load_test_file(path, pipeline)
            loaded.extend(tests)
            problems.extend(file_problems)
    # Specs are validated together: schedules refer to other pipelines' datasets.
    report = validate_paths(discover_specs(project.pipelines_dir), stages)
    pipelines = report.pipelines
    invalid = {f.path.parent.name: f.problems for f in report.files if f.problems}
    untested, no_sql = [], []
    for name, files in found.items():
        if not files:
            spec = pipelines.get(name)
            has_sql = spec is None or any(t.kind in SQL_KINDS for t in spec.tasks)
            (untested if has_sql else no_sql).append(name)
    return plan_tests(
        loaded,
        pipelines,
        stages,
        problems=problems,
        untested=untested,
        without_sql=no_sql,
        spec_problems=invalid,
    )


def run_tests(project: Project, names: list[str] | None = None) -> TestReport:
    """Collect and execute: the report of `mwaa-elt test`."""
    return execute(collect(project, names))


def relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)
