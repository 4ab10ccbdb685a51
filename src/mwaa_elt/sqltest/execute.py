"""Running prepared SQL tests on one in-process DuckDB connection, one read-only query each."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from mwaa_elt.duckdb_athena import connect, quote_identifier
from mwaa_elt.spec.problems import Problem
from mwaa_elt.sqltest.compare import RowDiff, compare
from mwaa_elt.sqltest.plan import PreparedTest, TestPlan, UnpreparedTest

if TYPE_CHECKING:
    import duckdb

Status = Literal["pass", "fail", "error"]


@dataclass(frozen=True)
class TestResult:
    """The outcome of one test: pass, fail (wrong answer, with its diff) or error (cannot run)."""

    pipeline: str
    name: str
    path: Path
    line: int
    task: str
    status: Status
    reason: str | None = None
    diff: RowDiff | None = None
    problems: tuple[Problem, ...] = ()
    seconds: float = 0.0


@dataclass(frozen=True)
class TestReport:
    """Every result of a run, plus the problems of files that yielded no test."""

    results: tuple[TestResult, ...]
    problems: tuple[Problem, ...] = ()
    untested: tuple[str, ...] = ()
    without_sql: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems and all(r.status == "pass" for r in self.results)

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status == status)


def _engine_message(error: Exception) -> str:
    """DuckDB's message without its internal framing, on one line."""
    text = str(error).strip()
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def run_one(connection: duckdb.DuckDBPyConnection, test: PreparedTest) -> TestResult:
    """Run the test's query (given rows inlined: it changes nothing) and judge its answer."""
    import duckdb

    started = time.perf_counter()

    def result(
        status: Status, reason: str | None = None, diff: RowDiff | None = None
    ) -> TestResult:
        return TestResult(
            test.pipeline,
            test.name,
            test.path,
            test.line,
            test.task,
            status,
            reason,
            diff,
            seconds=time.perf_counter() - started,
        )

    try:
        cursor = connection.execute(test.query)
        description = cursor.description or []
        columns = [d[0] for d in description]
        zoned = [d[0] for d in description if str(d[1]) == "TIMESTAMP WITH TIME ZONE"]
        if zoned:
            # Python values of TIMESTAMPTZ need pytz; the session is UTC, so the plain
            # TIMESTAMP is the same instant (and compares with '...Z' as UTC).
            plain = ", ".join(
                f"CAST({quote_identifier(c)} AS TIMESTAMP) AS {quote_identifier(c)}" for c in zoned
            )
            cursor = connection.execute(
                f"SELECT * REPLACE ({plain}) FROM ({test.query}) AS _answer"
            )
        rows = cursor.fetchall()
    except duckdb.Error as error:
        return result("error", f"the query failed on DuckDB: {_engine_message(error)}")
    verdict = compare(test.expect, columns, rows)
    if verdict.passed:
        return result("pass")
    return result("fail", verdict.reason, verdict.diff)


def _unprepared(test: UnpreparedTest) -> TestResult:
    first = test.problems[0].message if test.problems else "cannot be prepared"
    return TestResult(
        test.pipeline,
        test.name,
        test.path,
        test.line,
        test.task,
        "error",
        first,
        problems=test.problems,
    )


def iter_results(
    tests: Sequence[PreparedTest | UnpreparedTest],
    connection: duckdb.DuckDBPyConnection | None = None,
) -> Iterator[TestResult]:
    """Run `tests` in order on `connection` (a fresh Athena-like one when not given)."""
    own = connection is None
    if connection is None and any(isinstance(t, PreparedTest) for t in tests):
        connection = connect(threads=1)  # tiny tables: one thread answers fastest
    try:
        for test in tests:
            if isinstance(test, UnpreparedTest):
                yield _unprepared(test)
            else:
                assert connection is not None
                yield run_one(connection, test)
    finally:
        if own and connection is not None:
            connection.close()


def execute(plan: TestPlan, connection: duckdb.DuckDBPyConnection | None = None) -> TestReport:
    """Run every test of `plan`; the one executor of SQL tests."""
    started = time.perf_counter()
    results = tuple(iter_results(plan.tests, connection))
    return TestReport(
        results, plan.problems, plan.untested, plan.without_sql, time.perf_counter() - started
    )
