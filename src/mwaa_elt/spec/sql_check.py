"""Does a SQL text parse in the engine that will run it? Located answers, via sqlglot."""

from __future__ import annotations

import difflib
import re
from itertools import pairwise
from typing import Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError
from sqlglot.tokens import TokenType

from mwaa_elt.diagnostics import position
from mwaa_elt.spec.sql_parse import blank_comments, parse, quiet_sqlglot
from mwaa_elt.spec.stage_vars import TextProblem, placeholder_text

Engine = Literal["athena", "trino"]
# Athena DDL is Hive's and its DML is Trino's; sqlglot's athena dialect routes most of it,
# the others catch what it misses. Only when none parses is the SQL wrong.
_DIALECTS: dict[Engine, tuple[str, ...]] = {
    "athena": ("athena", "hive", "trino"),
    "trino": ("trino", "athena"),
}
_ENGINE_NAMES: dict[Engine, str] = {"athena": "Athena", "trino": "Trino"}
STATEMENT_KEYWORDS = (
    "SELECT", "WITH", "VALUES", "TABLE", "CREATE", "DROP", "ALTER", "INSERT", "DELETE",
    "UPDATE", "MERGE", "UNLOAD", "MSCK", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "USE",
    "OPTIMIZE", "VACUUM", "PREPARE", "EXECUTE", "DEALLOCATE", "REFRESH", "SET", "RESET",
    "GRANT", "REVOKE", "CALL", "COMMENT", "ANALYZE", "TRUNCATE",
)  # fmt: skip


def _parse(text: str, dialect: str) -> list[exp.Expression] | ParseError | SqlglotError:
    try:
        return [e for e in sqlglot.parse(text, read=dialect) if e is not None]
    except ParseError as exc:
        return exc
    except SqlglotError as exc:
        return exc
    except Exception as exc:  # sqlglot raises plain errors on some malformed input
        return SqlglotError(str(exc))


def _plain(description: str) -> str:
    """sqlglot's parser wording, in terms of the SQL the analyst wrote."""
    if description.startswith("Required keyword"):
        return "something is missing before this point"
    if description.startswith("Invalid expression / Unexpected token"):
        return "unexpected token"
    return description


def _wrong_first_word(sql: str, scanned: str, name: str) -> TextProblem | None:
    """A problem when the first word of `scanned` (`sql`, perhaps with comments blanked) starts
    no SQL statement."""
    first = re.match(r"\s*([A-Za-z_]+)", scanned)
    if not first or first.group(1).upper() in STATEMENT_KEYWORDS:
        return None
    word = first.group(1)
    close = difflib.get_close_matches(word.upper(), STATEMENT_KEYWORDS, n=1)
    hint = (
        f"did you mean '{close[0]}'?"
        if close
        else "a statement starts with SELECT, CREATE, INSERT, ..."
    )
    line, col = position(sql, first.start(1))
    return TextProblem(line, col, f"'{word}' does not start {name} SQL; {hint}")


def _error_problem(sql: str, error: SqlglotError, engine: Engine) -> TextProblem:
    name = _ENGINE_NAMES[engine]
    wrong_start = _wrong_first_word(sql, sql, name)
    if wrong_start is not None:
        return wrong_start
    details = error.errors[0] if isinstance(error, ParseError) and error.errors else {}
    line = int(details.get("line") or 1)
    end_col = int(details.get("col") or 1)
    highlight = str(details.get("highlight") or "")
    col = max(1, end_col - len(highlight) + 1) if "\n" not in highlight else end_col
    description = _plain(str(details.get("description") or str(error).splitlines()[0]))
    near = f" at '{highlight}'" if highlight else ""
    return TextProblem(line, col, f"SQL does not parse as {name} SQL{near}: {description}")


def _statement_starts(text: str, dialect: str) -> list[tuple[int, int]]:
    """(line, col) of the first token after each ';' that is followed by more SQL."""
    try:
        tokens = sqlglot.Dialect.get_or_raise(dialect).tokenize(text)
    except Exception:  # positions are a nicety; the parse result already decided
        return []
    starts = []
    for before, token in pairwise(tokens):
        if before.token_type == TokenType.SEMICOLON:
            starts.append((token.line, max(1, token.col - len(token.text) + 1)))
    return starts


def sql_problems(
    text: str, *, engine: Engine = "athena", single: bool = True, query: bool = False
) -> list[TextProblem]:
    """Problems of SQL `text` (Jinja allowed) for `engine`; empty when it parses.

    `single` requires exactly one statement (Athena runs one per query); `query` requires it
    to be a SELECT (for UNLOAD and checks).
    """
    sql = placeholder_text(text)
    if not sql.strip().strip(";").strip():
        return [TextProblem(1, 1, "no SQL statement; write the SQL to run")]
    if engine == "athena":
        return _athena_problems(text, sql, single=single, query=query)
    first_error: SqlglotError | None = None
    statements: list[exp.Expression] | None = None
    with quiet_sqlglot():
        for dialect in _DIALECTS[engine]:
            result = _parse(sql, dialect)
            if isinstance(result, SqlglotError):
                first_error = first_error or result
                continue
            statements = result
            if not any(isinstance(s, exp.Command) for s in result):
                break  # fully understood; an opaque Command might parse better elsewhere
    if statements is None:
        assert first_error is not None
        return [_error_problem(blank_comments(sql), first_error, engine)]
    problems: list[TextProblem] = []
    if single and len(statements) > 1:
        starts = _statement_starts(sql, _DIALECTS[engine][0]) or [(1, 1)]
        line, col = starts[0]
        problems.append(_one_statement(line, col, len(statements), engine))
    if query and statements and not isinstance(statements[0], exp.Query):
        kind = type(statements[0]).__name__.upper()
        problems.append(TextProblem(1, 1, f"expected a SELECT query, got a {kind} statement"))
    return problems


def _one_statement(line: int, col: int, count: int, engine: Engine) -> TextProblem:
    return TextProblem(
        line,
        col,
        f"{count} SQL statements; {_ENGINE_NAMES[engine]} runs one statement per query — put "
        "each in its own task",
    )


def _athena_problems(text: str, sql: str, *, single: bool, query: bool) -> list[TextProblem]:
    """Athena SQL parsed completely (sql_parse): every statement, not only its first words."""
    wrong_start = _wrong_first_word(sql, blank_comments(sql), "Athena")
    if wrong_start is not None:
        return [wrong_start]
    parsed = parse(text)
    problems = list(parsed.problems)
    statements = parsed.statements
    if single and len(statements) > 1:
        problems.append(
            _one_statement(statements[1].line, statements[1].col, len(statements), "athena")
        )
    if query and statements and statements[0].kind != "select":
        node = statements[0].node
        kind = type(node).__name__.upper() if node is not None else "COMMAND"
        problems.append(TextProblem(1, 1, f"expected a SELECT query, got a {kind} statement"))
    return problems


def condition_problems(text: str) -> list[TextProblem]:
    """Problems of a boolean SQL condition such as `ds = '{{ ds }}'` (for where/expression)."""
    prefix = "SELECT 1 WHERE "
    problems = sql_problems(prefix + text, engine="athena")
    return [
        TextProblem(p.line, max(1, p.col - len(prefix)) if p.line == 1 else p.col, p.message)
        for p in problems
    ]
