"""Preparing SQL tests: everything decided before DuckDB runs, with no side effects.

For each test: the pipeline as its stage runs it, the task's SQL with Airflow's macros rendered
for the frozen logical date, that SQL translated to DuckDB (`duckdb_athena`), and the given
tables as DDL and rows. A test that cannot be prepared carries its located problems instead;
`execute.py` runs the rest.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

from mwaa_elt.duckdb_athena import (
    CreateExternalTable,
    CreateTableAs,
    InsertInto,
    Query,
    Statement,
    TableName,
    TranslationError,
    Unload,
    duckdb_type,
    quote_identifier,
    translate,
)
from mwaa_elt.errors import ConfigError
from mwaa_elt.spec.model import Pipeline
from mwaa_elt.spec.problems import Problem
from mwaa_elt.spec.resolve import StagePipeline, StageTask, resolve_pipeline
from mwaa_elt.spec.stage_vars import TextProblem, resolve_stage_vars
from mwaa_elt.spec.yaml_source import YamlDocument, load_yaml
from mwaa_elt.sqltest.load import LoadedTest
from mwaa_elt.sqltest.macros import (
    MacroError,
    airflow_context,
    parse_logical_date,
    render,
    run_dates,
)
from mwaa_elt.sqltest.model import Expect
from mwaa_elt.stage import Stage

SQL_KINDS = ("athena", "unload", "check", "trino")
# Tests of one task share its rendered SQL: translate each text once (statements are frozen).
_translate = lru_cache(maxsize=1024)(translate)


@dataclass(frozen=True)
class GivenRows:
    """One given table as DuckDB SQL: typed VALUES (or an empty typed SELECT) in parentheses."""

    table: TableName
    columns: tuple[tuple[str, str], ...]  # (name, DuckDB type)
    values: str

    def as_source(self, alias: str) -> str:
        """The rows in place of the table in a FROM clause, under the query's alias for it."""
        names = ", ".join(quote_identifier(c) for c, _ in self.columns)
        return f"{self.values} AS {quote_identifier(alias)}({names})"


@dataclass(frozen=True)
class PreparedTest:
    """A test ready to run: the task's query, its given tables inlined as VALUES, the answer.

    Inlining (rather than creating tables) makes a test one read-only statement on a shared
    connection: nothing to create, nothing to roll back.
    """

    pipeline: str
    name: str
    path: Path
    line: int
    task: str
    stage: str
    logical_date: str
    given: tuple[GivenRows, ...]
    query: str
    expect: Expect


@dataclass(frozen=True)
class UnpreparedTest:
    """A test that cannot run, and why (located in the test file or the pipeline's SQL)."""

    pipeline: str
    name: str
    path: Path
    line: int
    task: str
    problems: tuple[Problem, ...]


@dataclass(frozen=True)
class TestPlan:
    """The tests to run in order; `problems` are of files that yielded no test at all."""

    tests: tuple[PreparedTest | UnpreparedTest, ...]
    problems: tuple[Problem, ...] = ()
    untested: tuple[str, ...] = ()  # pipelines with SQL tasks but without a test file
    without_sql: tuple[str, ...] = ()  # pipelines with no task a SQL test can run (EMR only)


@dataclass
class _PipelineFacts:
    """What several tests of one pipeline in one stage share, computed once."""

    stage_pipeline: StagePipeline
    source: Path | None
    tables: dict[TableName, CreateExternalTable] = field(default_factory=dict)
    _doc: YamlDocument | None = None

    @property
    def doc(self) -> YamlDocument | None:
        """The spec's located YAML, read only when a problem in inline SQL must be located."""
        if self._doc is None and self.source is not None:
            self._doc, _ = load_yaml(self.source.read_bytes())
        return self._doc


class _Prepare:
    """Prepares the tests of one run; caches what tests of a pipeline and stage share."""

    def __init__(
        self,
        pipelines: Mapping[str, Pipeline],
        stages: Mapping[str, Stage],
        spec_problems: Mapping[str, Sequence[Problem]],
    ) -> None:
        self.pipelines = pipelines
        self.stages = stages
        self.spec_problems = spec_problems
        self.facts: dict[tuple[str, str], _PipelineFacts] = {}

    def test(self, loaded: LoadedTest) -> PreparedTest | UnpreparedTest:
        test = loaded.test
        line = loaded.mark().line

        def unprepared(*problems: Problem) -> UnpreparedTest:
            return UnpreparedTest(
                loaded.pipeline, test.name, loaded.path, line, test.task, tuple(problems)
            )

        pipeline = self.pipelines.get(loaded.pipeline)
        if pipeline is None:
            spec = f"pipelines/{loaded.pipeline}/{loaded.pipeline}.yaml"
            found = self.spec_problems.get(loaded.pipeline, ())
            detail = f"; the first of {len(found)}: {found[0]}" if found else " (no spec file)"
            return unprepared(
                loaded.problem(
                    f"pipeline '{loaded.pipeline}' has no valid spec {spec}{detail}; "
                    "`mwaa-elt validate` lists every problem"
                ),
                *found,
            )
        stage = self.stages.get(test.stage)
        if stage is None:
            return unprepared(
                loaded.problem(
                    f"stage: '{test.stage}' is not a stage; stages: {', '.join(self.stages)}",
                    "stage",
                    value=True,
                )
            )
        facts = self._facts(pipeline, stage)
        task = next((t for t in facts.stage_pipeline.tasks if t.id == test.task), None)
        if task is None:
            ids = [t.id for t in facts.stage_pipeline.tasks]
            close = difflib.get_close_matches(test.task, ids, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"its tasks: {', '.join(ids)}"
            return unprepared(
                loaded.problem(
                    f"task: no task '{test.task}' in pipeline {pipeline.pipeline}; {hint}",
                    "task",
                    value=True,
                )
            )
        if task.kind not in SQL_KINDS:
            return unprepared(
                loaded.problem(
                    f"task: '{task.id}' is a {task.kind} task; SQL tests run athena, unload, "
                    "check and trino tasks (EMR Hive and Spark steps are not SQL tests)",
                    "task",
                    value=True,
                )
            )
        moment = (
            parse_logical_date(test.logical_date)
            if test.logical_date
            else dt.datetime.combine(pipeline.start_date, dt.time(), tzinfo=dt.UTC)
        )
        schedule = facts.stage_pipeline.schedule
        dates = run_dates(
            moment,
            schedule if isinstance(schedule, str) else None,
            stage.airflow.major,
        )
        context = airflow_context(dates, pipeline.pipeline, task.id)
        statement = self._statement(pipeline, facts, task, context)
        if isinstance(statement, Problem):
            return unprepared(statement)
        query = _query_of(statement, facts)
        if query is None:
            return unprepared(
                loaded.problem(
                    f"task: '{task.id}' runs {type(statement).__name__}, which returns no rows "
                    "to test; test the CTAS, INSERT, UNLOAD, query or check that uses it",
                    "task",
                    value=True,
                )
            )
        problems: list[Problem] = []
        given = self._given(loaded, stage, facts, statement, problems)
        if problems:
            return unprepared(*problems)
        return PreparedTest(
            pipeline=loaded.pipeline,
            name=test.name,
            path=loaded.path,
            line=line,
            task=task.id,
            stage=stage.name,
            logical_date=dates.logical_date.isoformat(),
            given=tuple(given),
            query=inline_given(query, given),
            expect=test.expect,
        )

    # -- the pipeline ------------------------------------------------------------------------

    def _facts(self, pipeline: Pipeline, stage: Stage) -> _PipelineFacts:
        key = (pipeline.pipeline, stage.name)
        found = self.facts.get(key)
        if found is not None:
            return found
        facts = _PipelineFacts(resolve_pipeline(pipeline, stage), pipeline.source)
        # The pipeline's own DDL gives the types of the tables it declares.
        start = dt.datetime.combine(pipeline.start_date, dt.time(), tzinfo=dt.UTC)
        for task in facts.stage_pipeline.tasks:
            if task.kind != "athena" or not task.sql:
                continue
            context = airflow_context(run_dates(start, None, 3), pipeline.pipeline, task.id)
            try:
                statement = _translate(render(task.sql, context))
            except (TranslationError, MacroError):
                continue  # the test of that task reports it; here it only lacks types
            if isinstance(statement, CreateExternalTable):
                facts.tables[_key(statement.table)] = statement
        self.facts[key] = facts
        return facts

    def _statement(
        self,
        pipeline: Pipeline,
        facts: _PipelineFacts,
        task: StageTask,
        context: dict[str, Any],
    ) -> Statement | Problem:
        """The task's statement translated, or a problem located in its SQL."""
        from mwaa_elt.render.view import check_query

        sql = check_query(task.step, task.sql) if task.kind == "check" else task.sql or ""
        try:
            return _translate(render(sql, context))
        except MacroError as exc:
            return self._sql_problem(pipeline, facts, task, TextProblem(exc.line, 1, exc.message))
        except TranslationError as exc:
            col = _source_col(sql, exc)
            message = f"{exc.construct}: {exc.reason}"
            return self._sql_problem(pipeline, facts, task, TextProblem(exc.line, col, message))

    def _sql_problem(
        self, pipeline: Pipeline, facts: _PipelineFacts, task: StageTask, problem: TextProblem
    ) -> Problem:
        """`problem` (at a line of the task's SQL) located in the SQL file or the spec."""
        from mwaa_elt.spec.validate import _Collector

        step = task.step
        sql_file = getattr(step, "sql_file", None)
        if sql_file:
            file = pipeline.source_dir / sql_file
            return Problem(file, problem.line, problem.col, problem.message)
        spec = pipeline.source or Path(f"{pipeline.pipeline}.yaml")
        index = next(i for i, t in enumerate(pipeline.tasks) if t.id == task.id)
        if task.kind == "check" and getattr(step, "sql", None) is None:
            where: tuple[str | int, ...] = ("tasks", index, "check")
            mark = facts.doc.mark(where) if facts.doc is not None else None
            line, col = (mark.line, mark.col) if mark else (1, 1)
            return Problem(spec, line, col, f"tasks[{index}].check: {problem.message}")
        collector = _Collector(spec, facts.doc)
        collector.in_field(("tasks", index, task.kind, "sql"), problem)
        return collector.problems[0]

    # -- the given tables --------------------------------------------------------------------

    def _given(
        self,
        loaded: LoadedTest,
        stage: Stage,
        facts: _PipelineFacts,
        statement: Statement,
        problems: list[Problem],
    ) -> list[GivenRows]:
        test = loaded.test
        logical = {real: name for name, real in stage.glue_databases.items()}
        given: dict[TableName, tuple[str, Any]] = {}
        for key, table in test.given.items():
            name = _given_name(key, stage, loaded, problems)
            if name is None:
                continue
            if name in given:
                problems.append(
                    loaded.problem(
                        f"given: '{key}' names the same table as '{given[name][0]}'",
                        "given",
                        key,
                    )
                )
                continue
            given[name] = (key, table)
        reads = [_key(t) for t in getattr(statement, "reads", ())]
        for name in reads:
            if name not in given:
                shown = _logical_name(name, logical)
                problems.append(
                    loaded.problem(
                        f"task '{test.task}' reads {shown}, which given does not list; add "
                        f"its rows under given: {shown}: [...] (an empty list for an empty "
                        "table)",
                        "given" if test.given else "task",
                    )
                )
        for name, (key, _) in given.items():
            if name not in reads:
                read = ", ".join(_logical_name(n, logical) for n in reads) or "no table"
                problems.append(
                    loaded.problem(
                        f"given: task '{test.task}' does not read '{key}'; it reads {read}",
                        "given",
                        key,
                    )
                )
        if problems:
            return []
        tables = []
        for name, (key, table) in given.items():
            built = _given_rows(loaded, key, name, table, facts.tables.get(name), problems)
            if built is not None:
                tables.append(built)
        return tables


def _key(name: TableName) -> TableName:
    """Athena's names are case-insensitive: compare them lower-cased."""
    return TableName(name.database.lower() if name.database else None, name.name.lower())


def _logical_name(name: TableName, logical: Mapping[str, str]) -> str:
    if name.database in logical:
        return f"{logical[name.database]}.{name.name}"
    return str(name)


def _given_name(
    key: str, stage: Stage, loaded: LoadedTest, problems: list[Problem]
) -> TableName | None:
    """The stage's real table a `given` key names (`movielens.movies` or `{{ db.x }}.t`)."""
    text = key
    if "{{" in key:
        try:
            text = resolve_stage_vars(key, stage, source=str(loaded.path))
        except ConfigError as exc:
            problems.append(loaded.problem(f"given: {exc}", "given", key))
            return None
        database, _, table = text.rpartition(".")
        return _key(TableName(database, table))
    database, _, table = text.rpartition(".")
    databases = stage.glue_databases
    if database in databases:
        return _key(TableName(databases[database], table))
    if database in databases.values():
        return _key(TableName(database, table))
    problems.append(
        loaded.problem(
            f"given: '{database}' in '{key}' is not a Glue database of stage {stage.name}; "
            f"its databases: {', '.join(databases)}",
            "given",
            key,
        )
    )
    return None


def _query_of(statement: Statement, facts: _PipelineFacts) -> str | None:
    """The DuckDB query whose answer a test compares; None for a statement without one (DDL)."""
    if isinstance(statement, Query | CreateTableAs | Unload):
        return statement.select
    if isinstance(statement, InsertInto):
        columns = statement.columns
        if not columns:
            target = facts.tables.get(_key(statement.table))
            if target is not None:
                columns = tuple(c.name for c in (*target.columns, *target.partitioned_by))
        if not columns:
            return statement.select
        # INSERT is positional: name the answer's columns after the target's.
        names = ", ".join(quote_identifier(c) for c in columns)
        return f"SELECT * FROM ({statement.select}) AS _inserted({names})"
    return None


def _source_col(sql: str, exc: TranslationError) -> int:
    """The column of `exc` in the task's SQL as written (stage variables and macros make the
    rendered line longer or shorter): where its construct's text is on that line, if it is."""
    lines = sql.split("\n")
    if not 1 <= exc.line <= len(lines):
        return exc.col
    needle = exc.construct.removesuffix("()").strip("'\"").lower()
    found = lines[exc.line - 1].lower().find(needle) if needle else -1
    return found + 1 if found >= 0 else exc.col


# -- rows as SQL -------------------------------------------------------------------------------


def _given_rows(
    loaded: LoadedTest,
    key: str,
    name: TableName,
    table: Any,
    ddl: CreateExternalTable | None,
    problems: list[Problem],
) -> GivenRows | None:
    columns: list[tuple[str, str]] = []
    if table.columns is not None:
        for column, athena in table.columns.items():
            try:
                columns.append((column.lower(), duckdb_type(athena)))
            except TranslationError as exc:
                problems.append(
                    loaded.problem(
                        f"given.{key}.columns.{column}: '{athena}' is not an Athena type "
                        f"({exc.reason}); e.g. int, bigint, double, string, date, timestamp",
                        "given",
                        key,
                        "columns",
                        column,
                        value=True,
                    )
                )
        if problems:
            return None
    elif ddl is not None:
        columns = [(c.name.lower(), c.type) for c in (*ddl.columns, *ddl.partitioned_by)]
    rows: list[dict[str, Any]] = [{k.lower(): v for k, v in row.items()} for row in table.rows]
    written = loaded.doc.data["tests"][loaded.index]["given"][key]
    rows_key: tuple[str, ...] = ("rows",) if isinstance(written, dict) else ()  # or shorthand
    if columns:
        known = {c for c, _ in columns}
        for index, row in enumerate(table.rows):
            for column in row:
                if column.lower() not in known:
                    problems.append(
                        loaded.problem(
                            f"given.{key}.rows[{index}]: '{column}' is not a column of {key}; "
                            f"its columns: {', '.join(c for c, _ in columns)}",
                            "given",
                            key,
                            *rows_key,
                            index,
                            column,
                        )
                    )
    else:
        columns = _inferred(loaded, key, rows, problems)
    if problems:
        return None
    if not columns:
        problems.append(
            loaded.problem(
                f"given.{key}: no columns to create it with; give columns: (name: type) or a row",
                "given",
                key,
            )
        )
        return None
    types = dict(columns)
    if rows:
        values = "(VALUES " + ", ".join(
            "(" + ", ".join(f"CAST({_literal(row.get(c), t)} AS {t})" for c, t in columns) + ")"
            for row in rows
        )
    else:
        values = "(SELECT " + ", ".join(f"CAST(NULL AS {t})" for t in types.values())
        values += " WHERE FALSE"
    return GivenRows(name, tuple(columns), values + ")")


_SLOT = "__mwaa_elt_given_{}__"
_SLOT_RE = re.compile(r'"?__mwaa_elt_given_(\d+)__"?')


@lru_cache(maxsize=1024)
def _slots(query: str) -> tuple[tuple[str, ...], tuple[tuple[TableName, str], ...]]:
    """`query` cut around its table references: the text pieces, and per gap the table and the
    alias the query knows it by. Tests of one task share the query: cut it once."""
    tree = sqlglot.parse_one(query, read="duckdb")
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    slots: list[tuple[TableName, str]] = []
    for table in list(tree.find_all(exp.Table)):
        if not table.name or (not table.db and table.name.lower() in ctes):
            continue
        slots.append((_key(TableName(table.db or None, table.name)), table.alias or table.name))
        table.replace(exp.Table(this=exp.to_identifier(_SLOT.format(len(slots) - 1))))
    pieces = _SLOT_RE.split(tree.sql("duckdb"))
    return tuple(pieces[0::2]), tuple(slots)


def inline_given(query: str, given: Sequence[GivenRows]) -> str:
    """`query` reading the given rows in place of the tables they stand for."""
    texts, slots = _slots(query)
    rows = {g.table: g for g in given}
    parts = [texts[0]]
    for (table, alias), text in zip(slots, texts[1:], strict=True):
        found = rows.get(table)
        # A table no rows stand for stays as written: DuckDB then says it does not exist.
        source = found.as_source(alias) if found else f"{table.duckdb} AS {quote_identifier(alias)}"
        parts.extend((source, text))
    return "".join(parts)


def _inferred(
    loaded: LoadedTest, key: str, rows: Sequence[dict[str, Any]], problems: list[Problem]
) -> list[tuple[str, str]]:
    """Column types from the values: whole numbers BIGINT, numbers DOUBLE, text VARCHAR."""
    order: list[str] = []
    for row in rows:
        order.extend(c for c in row if c not in order)
    columns = []
    for column in order:
        kinds = {_kind(row.get(column)) for row in rows} - {"null"}
        if kinds <= {"int"} and kinds:
            columns.append((column, "BIGINT"))
        elif kinds <= {"int", "float"} and kinds:
            columns.append((column, "DOUBLE"))
        elif kinds == {"bool"}:
            columns.append((column, "BOOLEAN"))
        elif kinds <= {"str"}:
            columns.append((column, "VARCHAR"))
        else:
            problems.append(
                loaded.problem(
                    f"given.{key}: column '{column}' holds {' and '.join(sorted(kinds))} values; "
                    f"declare its type under columns: ({column}: <athena type>)",
                    "given",
                    key,
                )
            )
    return columns


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return "list" if isinstance(value, list) else "mapping"


def _literal(value: Any, type_: str = "") -> str:
    """`value` as a DuckDB literal, cast by the caller to the column's type."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else f"'{value}'::DOUBLE"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, list):
        inner = type_[:-2] if type_.endswith("[]") else ""
        return "[" + ", ".join(_literal(v, inner) for v in value) + "]"
    if isinstance(value, dict):
        pairs = ", ".join(f"{_literal(str(k))}: {_literal(v)}" for k, v in value.items())
        return ("MAP {" if type_.upper().startswith("MAP") else "{") + pairs + "}"
    return _literal(str(value))


def plan_tests(
    loaded: Sequence[LoadedTest],
    pipelines: Mapping[str, Pipeline],
    stages: Mapping[str, Stage],
    *,
    problems: Sequence[Problem] = (),
    untested: Sequence[str] = (),
    without_sql: Sequence[str] = (),
    spec_problems: Mapping[str, Sequence[Problem]] | None = None,
) -> TestPlan:
    """Prepare `loaded` tests against validated `pipelines` (`spec_problems`: why the others
    are not valid, per pipeline folder); no side effects."""
    prepare = _Prepare(pipelines, stages, spec_problems or {})
    tests = tuple(prepare.test(t) for t in loaded)
    return TestPlan(tests, tuple(problems), tuple(untested), tuple(without_sql))
