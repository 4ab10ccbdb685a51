"""Athena SQL parsed completely, once per text: statements as sqlglot trees with positions.

Jinja is replaced by placeholders of the same length first (`{{ db.x }}` becomes `j0________`,
numbered, so a name or a string built from it can be mapped back to the expression), so every
line and column is the one the analyst wrote. A statement sqlglot only understands as an
opaque `Command` is an error (located where the parser stopped), except for the few Athena
statements it never models (MSCK, SHOW, ...) and UNLOAD, which is taken apart here.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError
from sqlglot.tokens import Token, TokenType

from mwaa_elt.diagnostics import position
from mwaa_elt.spec.stage_vars import Expression, TextProblem, expressions, placeholder_text

DIALECT = "athena"  # routes DDL to Hive's grammar and queries/CTAS/INSERT to Trino's
# Statements are split, and linted, on Trino's tokens: Athena's tokenizer folds what it does not
# model (UNLOAD, MSCK) into one opaque token.
TOKENS = "trino"
# Statements Athena runs that sqlglot keeps as an opaque Command: nothing in them to analyse.
OPAQUE_OK = frozenset({"MSCK", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "OPTIMIZE", "VACUUM"})
_CLAUSE_AFTER_LIST = frozenset(
    {
        TokenType.FROM,
        TokenType.WHERE,
        TokenType.GROUP_BY,
        TokenType.ORDER_BY,
        TokenType.HAVING,
        TokenType.LIMIT,
        TokenType.R_PAREN,
    }
)
_JOIN_END = frozenset(
    {
        TokenType.JOIN,
        TokenType.WHERE,
        TokenType.GROUP_BY,
        TokenType.ORDER_BY,
        TokenType.HAVING,
        TokenType.LIMIT,
        TokenType.UNION,
        TokenType.EXCEPT,
        TokenType.INTERSECT,
        TokenType.SEMICOLON,
        TokenType.COMMA,
    }
)


@dataclass(frozen=True)
class Templated:
    """A text with every Jinja tag replaced by blanks or a numbered placeholder of its length."""

    text: str  # the original
    sql: str  # what the parser reads
    exprs: tuple[Expression, ...]  # exprs[i] is written as placeholders[i] in `sql`
    placeholders: tuple[str, ...]

    def expression_at(self, name: str) -> Expression | None:
        """The `{{ }}` a placeholder name stands for (the whole name must be the placeholder)."""
        for expr, holder in zip(self.exprs, self.placeholders, strict=True):
            if holder == name:
                return expr
        return None

    def restore(self, value: str) -> str:
        """`value` (a string or name from `sql`) with each placeholder back as its Jinja text."""
        if "j" not in value:
            return value
        for expr, holder in zip(self.exprs, self.placeholders, strict=True):
            if holder and holder in value:
                value = value.replace(holder, self.text[expr.start : expr.end])
        return value


@lru_cache(maxsize=4096)
def templated(text: str) -> Templated:
    """`text` ready for the SQL parser, positions kept (see the module's docstring)."""
    chars = list(placeholder_text(text))
    exprs: list[Expression] = []
    holders: list[str] = []
    for expr in expressions(text):
        index = len(exprs)
        holder = f"j{index}"
        width = expr.end - expr.start
        if chars[expr.start] != "j" or len(holder) >= width:
            holder = ""  # inside a Jinja comment or a dropped branch, or too short to number
        else:
            holder = holder + "_" * (width - len(holder))
            chars[expr.start : expr.end] = holder
        exprs.append(expr)
        holders.append(holder)
    return Templated(text, "".join(chars), tuple(exprs), tuple(holders))


@dataclass(frozen=True)
class Statement:
    """One parsed statement: `node` is sqlglot's tree (for UNLOAD, its query)."""

    kind: str  # select, ctas, create_table, create_view, create_database, insert, drop_table,
    # drop_database, drop_view, delete, alter, unload, opaque, other
    node: exp.Expression | None
    line: int
    col: int
    start: int  # offset of the first token
    unload_to: str | None = None  # UNLOAD's TO literal, placeholders in place
    unload_to_at: tuple[int, int] = (1, 1)


@dataclass(frozen=True)
class Parsed:
    """Every statement of a text, or the first problem that stops parsing it."""

    statements: tuple[Statement, ...]
    problems: tuple[TextProblem, ...]


@dataclass(frozen=True)
class _Problem:
    """A problem whose message may quote the text at its position ({near}, `width` chars)."""

    line: int
    col: int
    message: str
    width: int = 0


@contextmanager
def quiet_sqlglot() -> Iterator[None]:
    # sqlglot logs a warning when it falls back to an opaque Command; we report our own way.
    logger = logging.getLogger("sqlglot")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


# Quoted text first, so that `--` or `/*` inside a string or a quoted name is not a comment.
_QUOTED_OR_COMMENT = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/", re.DOTALL)


def blank_comments(sql: str) -> str:
    """`sql` with its -- and /* */ comments blanked, every position and string kept."""
    return _QUOTED_OR_COMMENT.sub(
        lambda m: m.group() if m.group()[0] in "'\"" else re.sub(r"[^\n]", " ", m.group()), sql
    )


@lru_cache(maxsize=1024)  # the SQL check and the analysis of one spec ask about the same text
def parse(text: str) -> Parsed:
    """`text` (Jinja allowed) parsed as Athena SQL; cached on the text without its comments."""
    sql = templated(text).sql
    # Copies of a spec that differ only in comments (or trailing blanks) share the work.
    statements, raw = _parse_sql(blank_comments(sql).rstrip())
    lines = text.split("\n") if raw else []
    problems = []
    for problem in raw:
        near = ""
        if problem.width and problem.line <= len(lines):
            # Quoted from the analyst's text, never from the placeholders the parser read.
            quoted = lines[problem.line - 1][problem.col - 1 : problem.col - 1 + problem.width]
            near = f" at '{quoted}'" if quoted.strip() else ""
        message = problem.message.replace("{near}", near)
        line, col = problem.line, problem.col
        typo = _typo_at(lines, line, col) if problem.width else None
        if typo is not None:
            col, word, keyword = typo
            message = f"{message}; did you mean {keyword} instead of '{word}'?"
        problems.append(TextProblem(line, col, message))
    return Parsed(statements, tuple(problems))


_KEYWORDS = ("SELECT", "FROM", "WHERE", "GROUP", "ORDER", "HAVING", "LIMIT", "JOIN", "UNION")


def _typo_at(lines: list[str], line: int, col: int) -> tuple[int, str, str] | None:
    """A misspelt keyword where the parser stopped, or just before (`GROPU BY`, `FORM t`)."""
    if line > len(lines):
        return None
    text = lines[line - 1]
    candidates = [re.match(r"[A-Za-z]+", text[col - 1 :])]
    before = re.search(r"([A-Za-z]+)\s+$", text[: col - 1])
    candidates.append(before)
    for match in candidates:
        if match is None:
            continue
        start = col - 1 + match.start() if match is candidates[0] else match.start(1)
        word = match.group(0) if match is candidates[0] else match.group(1)
        if word.upper() in _KEYWORDS or word.upper() in {"BY", "ON", "AS"}:
            continue
        close = difflib.get_close_matches(word.upper(), _KEYWORDS, n=1, cutoff=0.7)
        if close:
            return start + 1, word, close[0]
    return None


@lru_cache(maxsize=4096)
def _parse_sql(sql: str) -> tuple[tuple[Statement, ...], tuple[_Problem, ...]]:
    try:
        tokens = sqlglot.Dialect.get_or_raise(TOKENS).tokenize(sql)
    except SqlglotError as exc:
        return (), (_located(exc, "does not parse"),)
    if not tokens:
        return (), (_Problem(1, 1, "no SQL statement; write the SQL to run"),)
    statements: list[Statement] = []
    problems: list[_Problem] = []
    for chunk in _split(tokens):
        found = _statement(sql, chunk[0].start, chunk[-1].end + 1, chunk)
        if isinstance(found, _Problem):
            problems.append(found)
            break
        statements.append(found)
        problems.extend(_lint(sql, chunk))
    return tuple(statements), tuple(problems)


def _split(tokens: list[Token]) -> list[list[Token]]:
    chunks: list[list[Token]] = [[]]
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            chunks.append([])
        else:
            chunks[-1].append(token)
    return [c for c in chunks if c]


def _statement(sql: str, start: int, end: int, chunk: list[Token]) -> Statement | _Problem:
    text = _keep_lines(sql, start) + sql[start:end]  # keeps offsets, lines and columns
    line, col = position(sql, start)
    first = chunk[0].text.upper()
    if first == "UNLOAD":
        return _unload(sql, chunk, line, col)
    with quiet_sqlglot():
        try:
            nodes = [n for n in sqlglot.parse(text, read=DIALECT) if n is not None]
        except ParseError as exc:
            return _located(exc, "does not parse")
        except Exception as exc:  # sqlglot raises plain errors on some malformed input
            return _Problem(line, col, f"SQL does not parse as Athena SQL: {exc}")
    if not nodes:
        return _Problem(line, col, "no SQL statement; write the SQL to run")
    node = nodes[0]
    if isinstance(node, exp.Command):
        if first in OPAQUE_OK:
            return Statement("opaque", None, line, col, start)
        return _opaque_problem(sql, chunk, line, col)
    return Statement(_kind(node), node, line, col, start)


def _keep_lines(sql: str, start: int) -> str:
    """Blank text standing in for `sql[:start]`: same lines and columns, no statements."""
    before = sql[:start]
    return re.sub(r"[^\n]", " ", before)


def _kind(node: exp.Expression) -> str:
    if isinstance(node, exp.Query):
        return "select"
    if isinstance(node, exp.Create):
        kind = str(node.args.get("kind") or "").upper()
        if kind == "TABLE":
            return "ctas" if isinstance(node.expression, exp.Query) else "create_table"
        return {
            "VIEW": "create_view",
            "DATABASE": "create_database",
            "SCHEMA": "create_database",
        }.get(kind, "other")
    if isinstance(node, exp.Drop):
        kind = str(node.args.get("kind") or "").upper()
        return {"TABLE": "drop_table", "DATABASE": "drop_database", "SCHEMA": "drop_database"}.get(
            kind, "drop_view" if kind == "VIEW" else "other"
        )
    if isinstance(node, exp.Insert):
        return "insert"
    if isinstance(node, exp.Delete):
        return "delete"
    if isinstance(node, exp.Alter):
        return "alter"
    return "other"


def _located(error: SqlglotError, what: str) -> _Problem:
    """The parser's error at the position it names; quoted text is the analyst's own."""
    details = error.errors[0] if isinstance(error, ParseError) and error.errors else {}
    line = int(details.get("line") or 1)
    end_col = int(details.get("col") or 1)
    highlight = str(details.get("highlight") or "")
    col = max(1, end_col - len(highlight) + 1) if "\n" not in highlight else end_col
    description = str(details.get("description") or str(error).splitlines()[0])
    description = re.sub(r" but got <Token .*", "", description)
    if description.startswith("Required keyword"):
        description = "something is missing before this point"
    elif description.startswith("Invalid expression / Unexpected token"):
        description = "unexpected token"
    width = len(highlight) if "\n" not in highlight else 0
    return _Problem(line, col, f"SQL {what} as Athena SQL{{near}}: {description}", width)


def _opaque_problem(sql: str, chunk: list[Token], line: int, col: int) -> _Problem:
    """Where the parser gave up on a statement it kept as opaque text."""
    first = chunk[0].text.upper()
    if first in {"CREATE", "INSERT"}:
        # CREATE TABLE ... WITH (...) AS <query>: the query is where the mistake usually is.
        depth = 0
        for before, token in pairwise(chunk):
            if token.token_type == TokenType.L_PAREN:
                depth += 1
            elif token.token_type == TokenType.R_PAREN:
                depth -= 1
            elif (
                depth == 0
                and before.token_type == TokenType.ALIAS
                and token.token_type
                in {
                    TokenType.SELECT,
                    TokenType.WITH,
                    TokenType.L_PAREN,
                }
            ):
                query = _keep_lines(sql, token.start) + sql[token.start : chunk[-1].end + 1]
                with quiet_sqlglot():
                    try:
                        sqlglot.parse_one(query, read=DIALECT)
                    except ParseError as exc:
                        return _located(exc, "does not parse")
                    except Exception:  # fall through to the statement-level message
                        pass
                break
    return _Problem(
        line,
        col,
        f"the Athena SQL parser does not understand this {first} statement{{near}}; fix it, or "
        "if it is valid Athena SQL the parser does not know, give the task "
        "skip_sql_checks: <why>",
        len(first),
    )


def _unload(sql: str, chunk: list[Token], line: int, col: int) -> Statement | _Problem:
    """UNLOAD (<query>) TO '<s3 uri>' WITH (...): the query parsed, the target kept."""
    tokens = chunk[1:]
    if not tokens or tokens[0].token_type != TokenType.L_PAREN:
        return _Problem(line, col, "UNLOAD needs (<query>) TO 's3://...' WITH (...)")
    depth = 0
    close = None
    for index, token in enumerate(tokens):
        if token.token_type == TokenType.L_PAREN:
            depth += 1
        elif token.token_type == TokenType.R_PAREN:
            depth -= 1
            if depth == 0:
                close = index
                break
    rest = tokens[close + 1 :] if close is not None else []
    if close is None or len(rest) < 2 or rest[0].text.upper() != "TO":
        return _Problem(line, col, "UNLOAD needs (<query>) TO 's3://...' WITH (...)")
    if rest[1].token_type != TokenType.STRING:
        at = position(sql, rest[1].start)
        return _Problem(*at, "UNLOAD TO needs a quoted 's3://...' location")
    inner_start, inner_end = tokens[0].end + 1, tokens[close].start
    query = _keep_lines(sql, inner_start) + sql[inner_start:inner_end]
    with quiet_sqlglot():
        try:
            node = sqlglot.parse_one(query, read=DIALECT)
        except ParseError as exc:
            return _located(exc, "does not parse")
        except Exception as exc:
            return _Problem(line, col, f"SQL does not parse as Athena SQL: {exc}")
    if not isinstance(node, exp.Query):
        return _Problem(line, col, "UNLOAD exports a query: write UNLOAD (SELECT ...) TO ...")
    to_at = position(sql, rest[1].start)
    return Statement("unload", node, line, col, chunk[0].start, rest[1].text, to_at)


def _lint(sql: str, chunk: list[Token]) -> list[_Problem]:
    """What sqlglot forgives but Athena refuses: a comma before FROM, a JOIN without ON."""
    problems: list[_Problem] = []
    if chunk[-1].token_type == TokenType.COMMA:
        line, col = position(sql, chunk[-1].start)
        problems.append(
            _Problem(line, col, "trailing comma at the end of the statement; remove the comma")
        )
    for before, token in pairwise(chunk):
        if before.token_type == TokenType.COMMA and token.token_type in _CLAUSE_AFTER_LIST:
            line, col = position(sql, before.start)
            what = token.text.upper() if token.token_type != TokenType.R_PAREN else "')'"
            problems.append(
                _Problem(
                    line, col, f"trailing comma before {what}; Athena refuses it: remove the comma"
                )
            )
    for index, token in enumerate(chunk):
        if token.token_type != TokenType.JOIN:
            continue
        previous = chunk[index - 1].token_type if index else None
        if previous in {TokenType.CROSS, TokenType.NATURAL}:
            continue
        depth = 0
        satisfied = False
        for later in chunk[index + 1 :]:
            if later.token_type == TokenType.L_PAREN:
                depth += 1
            elif later.token_type == TokenType.R_PAREN:
                depth -= 1
                if depth < 0:
                    break
            elif depth == 0 and later.token_type in {TokenType.ON, TokenType.USING}:
                satisfied = True
                break
            elif depth == 0 and later.token_type in _JOIN_END:
                break
        if not satisfied:
            line, col = position(sql, token.start)
            problems.append(
                _Problem(
                    line,
                    col,
                    "JOIN without ON or USING; Athena requires a join condition: add "
                    "ON <condition>, or write CROSS JOIN if every pair is meant",
                )
            )
    return problems
