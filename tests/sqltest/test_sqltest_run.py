"""`mwaa-elt test`: tests are read with located problems, prepared, run on DuckDB and judged."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mwaa_elt.cli import app
from mwaa_elt.project import Project
from mwaa_elt.sqltest import collect, execute, run_tests
from mwaa_elt.sqltest.plan import PreparedTest, UnpreparedTest

runner = CliRunner()

ORDERS_SPEC = """\
pipeline: orders
description: Orders per day.
owner: analytics
schedule: "0 6 * * *"
start_date: 2024-01-01
sources:
  - table: analytics.refunds
tasks:
  - id: create_orders
    athena: {sql_file: sql/create_orders.sql}
  - id: create_daily
    athena: {sql_file: sql/create_daily.sql}
    depends_on: [create_orders]
  - id: daily
    athena: {sql_file: sql/daily.sql}
    depends_on: [create_daily]
  - id: dates
    athena:
      sql: |
        SELECT '{{ ds }}' AS ds, '{{ data_interval_end | ds }}' AS end_ds,
               '{{ macros.ds_add(ds, -1) }}' AS yesterday, '{{ ts_nodash }}' AS ts_nodash
    depends_on: [daily]
  - id: big_orders
    check:
      sql: |
        SELECT count_if(amount > 1000) = 0
        FROM {{ db.analytics }}.orders
    depends_on: [daily]
  - id: refunds_have_amounts
    check: {table: "{{ db.analytics }}.refunds", not_null: [amount]}
    depends_on: [daily]
"""
ORDERS_SQL = {
    "create_orders.sql": "CREATE EXTERNAL TABLE IF NOT EXISTS {{ db.analytics }}.orders (\n"
    "  order_id BIGINT, amount DOUBLE, ordered_on DATE\n)\n"
    "STORED AS PARQUET\nLOCATION '{{ lake.uri }}orders/'\n",
    "create_daily.sql": "CREATE EXTERNAL TABLE IF NOT EXISTS {{ db.analytics }}.daily (\n"
    "  ds STRING, orders BIGINT, revenue DOUBLE\n)\n"
    "STORED AS PARQUET\nLOCATION '{{ lake.uri }}daily/'\n",
    "daily.sql": "INSERT INTO {{ db.analytics }}.daily\n"
    "SELECT '{{ ds }}', count(*), sum(amount)\n"
    "FROM {{ db.analytics }}.orders\n"
    "WHERE ordered_on = DATE '{{ ds }}'\n",
}
DAILY_TEST = """\
tests:
  - name: counts_the_days_orders
    task: daily
    logical_date: 2024-03-05
    given:
      analytics.orders:
        - {order_id: 1, amount: 10.5, ordered_on: 2024-03-05}
        - {order_id: 2, amount: 20.0, ordered_on: 2024-03-05}
        - {order_id: 3, amount: 99.0, ordered_on: 2024-03-04}
    expect:
      rows:
        - {ds: 2024-03-05, orders: 2, revenue: 30.5}
"""


@pytest.fixture
def project(scratch_project: Path, project_root: Path, monkeypatch) -> Path:
    shutil.copytree(project_root / "pipelines", scratch_project / "pipelines")
    folder = scratch_project / "pipelines/orders"
    (folder / "sql").mkdir(parents=True)
    (folder / "orders.yaml").write_text(ORDERS_SPEC)
    for name, text in ORDERS_SQL.items():
        (folder / "sql" / name).write_text(text)
    (folder / "tests").mkdir()
    monkeypatch.chdir(scratch_project)
    return scratch_project


def write_test(project: Path, text: str, name: str = "t.yaml") -> Path:
    path = project / "pipelines/orders/tests" / name
    path.write_text(textwrap.dedent(text))
    return path


def run(project: Path, *names: str):
    return run_tests(Project(project), list(names) or None)


def only(report):
    assert len(report.results) == 1, report
    return report.results[0]


# -- the shipped examples ----------------------------------------------------------------------


def test_every_example_with_sql_tasks_has_passing_tests(project_root):
    report = run_tests(Project(project_root))
    failures = [(r.name, r.reason, r.problems) for r in report.results if r.status != "pass"]
    assert report.ok, (failures, report.problems)
    per_pipeline: dict[str, int] = {}
    for result in report.results:
        per_pipeline[result.pipeline] = per_pipeline.get(result.pipeline, 0) + 1
    assert per_pipeline.get("movielens_scifi", 0) >= 4
    assert per_pipeline.get("scifi_quality", 0) >= 4
    # Every example is tested, but for EMR-only ones, whose Hive and Spark steps are not SQL.
    assert report.untested == ()
    assert report.without_sql == ("movielens_emr",)
    tested_tasks = {(r.pipeline, r.task) for r in report.results}
    assert ("movielens_scifi", "create_scifi") in tested_tasks
    assert ("movielens_scifi", "export_scifi") in tested_tasks
    assert {"has_rows", "keys_present", "ratings_in_range", "only_scifi", "record_check"} <= {
        t for p, t in tested_tasks if p == "scifi_quality"
    }


# -- running -----------------------------------------------------------------------------------


def test_insert_answer_is_named_after_the_target_tables_columns(project):
    write_test(project, DAILY_TEST)
    result = only(run(project, "orders"))
    assert result.status == "pass", (result.reason, result.problems)


def test_wrong_expectation_fails_with_the_rows_that_differ(project):
    write_test(project, DAILY_TEST.replace("revenue: 30.5", "revenue: 31.5"))
    result = only(run(project, "orders"))
    assert result.status == "fail"
    assert result.diff is not None
    assert result.diff.columns == ("ds", "orders", "revenue")
    assert result.diff.missing == (("2024-03-05", 2, 31.5),)
    assert result.diff.unexpected == (("2024-03-05", 2, 30.5),)


def test_macros_render_for_the_frozen_logical_date_and_the_stages_airflow(project):
    test = """\
    tests:
      - name: airflow3_dev
        task: dates
        logical_date: 2024-03-05T06:00
        expect:
          rows:
            - {ds: 2024-03-05, end_ds: 2024-03-05, yesterday: 2024-03-04, ts_nodash: 20240305T060000}
      - name: airflow2_staging
        task: dates
        stage: staging
        logical_date: 2024-03-05T06:00
        expect:
          partial: true
          rows:
            - {ds: 2024-03-05, end_ds: 2024-03-06}
    """
    write_test(project, test)
    report = run(project, "orders")
    assert [r.status for r in report.results] == ["pass", "pass"], (report.results, report.problems)


def test_default_logical_date_is_the_pipelines_start_date(project):
    write_test(
        project,
        """\
        tests:
          - name: start
            task: dates
            expect: {partial: true, rows: [{ds: 2024-01-01}]}
        """,
    )
    assert only(run(project, "orders")).status == "pass"


def test_check_tasks_answer_their_boolean(project):
    write_test(
        project,
        """\
        tests:
          - name: flags_a_big_order
            task: big_orders
            given:
              "{{ db.analytics }}.orders": [{order_id: 1, amount: 5000.0, ordered_on: 2024-01-01}]
            expect: {value: false}
          - name: passes_small_orders
            task: big_orders
            given:
              analytics.orders: [{order_id: 1, amount: 50.0, ordered_on: 2024-01-01}]
            expect: {value: true}
        """,
    )
    report = run(project, "orders")
    assert [r.status for r in report.results] == ["pass", "pass"], (report.results, report.problems)


def test_unordered_by_default_ordered_on_request(project):
    rows = """\
          rows:
            - {ds: 2024-01-01, end_ds: 2024-01-01, yesterday: 2023-12-31, ts_nodash: 20240101T000000}
    """
    write_test(project, "tests:\n  - name: x\n    task: dates\n    expect:\n" + rows)
    assert only(run(project, "orders")).status == "pass"


def test_an_engine_error_is_an_error_with_duckdbs_message(project):
    write_test(
        project,
        """\
        tests:
          - name: bad_date
            task: daily
            given:
              analytics.orders: [{order_id: 1, amount: 1.0, ordered_on: not-a-date}]
            expect: {rows: []}
        """,
    )
    result = only(run(project, "orders"))
    assert result.status == "error"
    assert "not-a-date" in (result.reason or "")


def test_types_come_from_the_pipelines_ddl(project):
    write_test(project, DAILY_TEST)
    plan = collect(Project(project), ["orders"])
    prepared = plan.tests[0]
    assert isinstance(prepared, PreparedTest)
    (given,) = prepared.given
    assert given.columns == (("order_id", "BIGINT"), ("amount", "DOUBLE"), ("ordered_on", "DATE"))
    assert "CAST('2024-03-05' AS DATE)" in given.values
    # The rows stand in for the table the task reads, under the alias the query uses.
    assert "FROM (VALUES (CAST(1 AS BIGINT)" in prepared.query
    assert "dev_analytics" not in prepared.query


# -- problems, located -------------------------------------------------------------------------


def test_untranslatable_sql_is_an_error_at_its_file_line_and_column(project):
    sql = project / "pipelines/orders/sql/daily.sql"
    sql.write_text(sql.read_text().replace("sum(amount)", "sum(amount), url_extract_host('x')"))
    write_test(project, DAILY_TEST)
    result = only(run(project, "orders"))
    assert result.status == "error"
    (problem,) = result.problems
    assert problem.path == sql
    assert (problem.line, problem.col) == (2, 43)
    assert problem.message.startswith("url_extract_host(): DuckDB has no equivalent")


def test_a_table_the_task_reads_must_be_given(project):
    write_test(
        project,
        """\
        tests:
          - name: forgot_orders
            task: daily
            expect: {rows: []}
        """,
    )
    result = only(run(project, "orders"))
    assert result.status == "error"
    (problem,) = result.problems
    assert (problem.line, problem.col) == (3, 5)
    assert "reads analytics.orders, which given does not list" in problem.message


def test_a_row_with_an_unknown_column_is_located_at_the_column(project):
    write_test(
        project,
        """\
        tests:
          - name: typo
            task: daily
            given:
              analytics.orders:
                rows:
                  - {order_id: 1, amout: 2.0}
            expect: {rows: []}
        """,
    )
    (problem,) = only(run(project, "orders")).problems
    assert (problem.line, problem.col) == (7, 27)
    assert "'amout' is not a column of analytics.orders" in problem.message


def test_mixed_values_without_a_type_ask_for_one(project):
    write_test(
        project,
        """\
        tests:
          - name: mixed
            task: refunds_have_amounts
            given:
              analytics.refunds: [{amount: 1}, {amount: one}]
            expect: {value: true}
        """,
    )
    (problem,) = only(run(project, "orders")).problems
    assert "column 'amount' holds int and str values" in problem.message
    assert "declare its type under columns" in problem.message


def test_values_without_ddl_or_columns_get_inferred_types(project):
    write_test(
        project,
        """\
        tests:
          - name: inferred
            task: refunds_have_amounts
            given:
              analytics.refunds: [{id: 1, amount: 2}, {id: 2, amount: 2.5}, {id: 3, amount: null}]
            expect: {value: false}
        """,
    )
    plan = collect(Project(project), ["orders"])
    (prepared,) = plan.tests
    assert isinstance(prepared, PreparedTest)
    assert prepared.given[0].columns == (("id", "BIGINT"), ("amount", "DOUBLE"))
    assert execute(plan).ok


def test_invalid_test_file_reports_every_problem_and_runs_nothing(project):
    path = write_test(
        project,
        """\
        tests:
          - name: Bad
            task: daily
            expect: {rows: [], value: 1}
            extra: 1
        """,
    )
    report = run(project, "orders")
    assert report.results == ()
    assert not report.ok
    located = sorted((p.path, p.line, p.col) for p in report.problems)
    assert located == [(path, 2, 5), (path, 4, 5), (path, 5, 5)]


def test_unknown_pipeline_name_is_a_config_error(project):
    result = runner.invoke(app, ["test", "nope"])
    assert result.exit_code == 1
    assert "no pipeline folder pipelines/nope/" in str(result.exception)


# -- the command -------------------------------------------------------------------------------


def test_cli_prints_a_diff_and_exits_1_on_failure(project):
    write_test(project, DAILY_TEST.replace("orders: 2", "orders: 3"))
    result = runner.invoke(app, ["test", "orders"])
    assert result.exit_code == 1
    assert "FAIL" in result.stdout
    assert "- expected" in result.stdout and "+ got" in result.stdout
    assert "0 passed, 1 failed, 0 error(s)" in result.stdout


def test_cli_json_and_exit_0_when_all_pass(project):
    write_test(project, DAILY_TEST)
    result = runner.invoke(app, ["test", "orders", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is True
    assert data["passed"] == 1
    (entry,) = data["tests"]
    assert entry["where"] == "pipelines/orders/tests/t.yaml:2"
    assert (entry["status"], entry["task"], entry["diff"]) == ("pass", "daily", None)


def test_plan_has_no_side_effects_and_execute_runs_it(project):
    write_test(project, DAILY_TEST)
    before = sorted(p.name for p in project.rglob("*"))
    plan = collect(Project(project), ["orders"])
    assert sorted(p.name for p in project.rglob("*")) == before
    assert not any(isinstance(t, UnpreparedTest) for t in plan.tests)
    assert execute(plan).ok


def test_given_rows_replace_every_reference_under_its_alias(project):
    from mwaa_elt.duckdb_athena import TableName
    from mwaa_elt.sqltest.plan import GivenRows, inline_given

    query = (
        'SELECT a.x, b.x FROM "s"."t" AS a JOIN s.t AS b ON a.x = b.x '
        "WHERE a.x IN (SELECT x FROM s.t) AND 's.t' <> ''"
    )
    rows = GivenRows(TableName("s", "t"), (("x", "BIGINT"),), "(VALUES (CAST(1 AS BIGINT)))")
    inlined = inline_given(query, [rows])
    assert inlined.count("(VALUES (CAST(1 AS BIGINT))) AS ") == 3
    assert 'AS "a"("x")' in inlined and 'AS "b"("x")' in inlined and 'AS "t"("x")' in inlined
    assert "'s.t'" in inlined  # a string that looks like the table is left alone
    from mwaa_elt.duckdb_athena import connect

    assert connect().execute(inlined).fetchall() == [(1, 1)]


def test_an_empty_given_table_keeps_its_types(project):
    write_test(
        project,
        """\
        tests:
          - name: no_orders
            task: daily
            given:
              analytics.orders: []
            expect:
              rows:
                - {ds: 2024-01-01, orders: 0, revenue: null}
        """,
    )
    result = only(run(project, "orders"))
    assert result.status == "pass", (result.reason, result.problems)


def test_tests_of_an_invalid_pipeline_are_errors_that_show_its_problems(project):
    spec = project / "pipelines/orders/orders.yaml"
    spec.write_text(spec.read_text().replace("owner: analytics", "owner: airflow"))
    write_test(project, DAILY_TEST)
    result = only(run(project, "orders"))
    assert result.status == "error"
    first, *spec_problems = result.problems
    assert "has no valid spec pipelines/orders/orders.yaml; the first of 1:" in first.message
    assert [p.path for p in spec_problems] == [spec]
    assert "placeholder owner" in spec_problems[0].message


def test_timestamps_with_time_zone_are_compared_as_utc_instants():
    from mwaa_elt.duckdb_athena import connect
    from mwaa_elt.sqltest.execute import run_one
    from mwaa_elt.sqltest.model import Expect

    query = "SELECT from_iso8601_timestamp('2024-03-05T06:00:00+01:00') AS t"
    from mwaa_elt.duckdb_athena import translate_query

    test = PreparedTest(
        pipeline="p",
        name="tz",
        path=Path("t.yaml"),
        line=1,
        task="t",
        stage="dev",
        logical_date="2024-03-05T00:00:00+00:00",
        given=(),
        query=translate_query(query),
        expect=Expect.model_validate({"rows": [{"t": "2024-03-05T05:00:00Z"}]}),
    )
    result = run_one(connect(), test)
    assert result.status == "pass", result.reason


def test_a_ddl_task_has_no_rows_to_test(project):
    write_test(project, "tests:\n  - name: ddl\n    task: create_orders\n    expect: {rows: []}\n")
    (problem,) = only(run(project, "orders")).problems
    assert (problem.line, problem.col) == (3, 11)
    assert "runs CreateExternalTable, which returns no rows to test" in problem.message
