"""The SQL-test benchmark measures what it says: exactly N tests, all of them runnable."""

from __future__ import annotations

from pathlib import Path

from bench.sqltest import make_tests_project
from mwaa_elt.project import Project
from mwaa_elt.sqltest import collect
from mwaa_elt.sqltest.plan import PreparedTest


def test_bench_project_holds_exactly_the_headline_number_of_prepared_tests(tmp_path: Path):
    make_tests_project(tmp_path, 23)
    plan = collect(Project(tmp_path))
    assert len(plan.tests) == 23
    assert all(isinstance(t, PreparedTest) for t in plan.tests), plan.tests
    assert not plan.problems
    assert len({t.pipeline for t in plan.tests}) > 2  # copies, not one pipeline repeated
