"""Athena SQL on DuckDB: one statement in, DuckDB SQL and what it means out, as data.

sqlglot's athena dialect parses (Trino for queries, CTAS, INSERT and UNLOAD; Hive for DDL) and its
duckdb dialect writes the query; this module adds what sqlglot leaves to the caller: a CTAS, an
UNLOAD, an INSERT or a `CREATE EXTERNAL TABLE` become typed statements (the SELECT in DuckDB SQL,
the table, location, format and properties), Trino functions DuckDB lacks or names differently are
rewritten, and whatever cannot be translated faithfully raises `TranslationError` with the
construct and its line and column, never a query that would answer differently. Run translated
SQL on a connection from `connect()`, which sets DuckDB to Athena's semantics (integer division,
UTC).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, TokenError, UnsupportedError
from sqlglot.helper import seq_get
from sqlglot.tokens import TokenType

from mwaa_elt.diagnostics import position

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "CONNECTION_SETTINGS",
    "Column",
    "CreateDatabase",
    "CreateExternalTable",
    "CreateTableAs",
    "CreateView",
    "DropTable",
    "InsertInto",
    "Query",
    "RepairTable",
    "SqlSyntaxError",
    "Statement",
    "TableName",
    "TranslationError",
    "Unload",
    "connect",
    "duckdb_type",
    "quote_identifier",
    "translate",
    "translate_query",
]

# What DuckDB must be told to answer as Athena does: Trino divides integers as integers
# (5 / 2 = 2), and an Athena session's time zone is UTC.
CONNECTION_SETTINGS: Mapping[str, Any] = MappingProxyType(
    {"integer_division": True, "TimeZone": "UTC"}
)


class TranslationError(Exception):
    """Athena SQL that cannot run on DuckDB as Athena would run it; line and col are 1-based."""

    def __init__(self, construct: str, line: int, col: int, reason: str) -> None:
        super().__init__(f"{line}:{col}: {construct}: {reason}")
        self.construct = construct
        self.line = line
        self.col = col
        self.reason = reason


class SqlSyntaxError(TranslationError):
    """Text that is not Athena SQL at all (sqlglot cannot parse it)."""


def quote_identifier(name: str) -> str:
    """`name` as a quoted DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class TableName:
    """A Glue table as `database.name`; on DuckDB the database is a schema of the connection."""

    database: str | None
    name: str

    @property
    def duckdb(self) -> str:
        """The quoted DuckDB name, e.g. `"analytics"."scifi"`."""
        return ".".join(quote_identifier(p) for p in (self.database, self.name) if p)

    def __str__(self) -> str:
        return f"{self.database}.{self.name}" if self.database else self.name


@dataclass(frozen=True)
class Column:
    """A column of a DDL statement: its name, the type as written in Athena, and DuckDB's type."""

    name: str
    athena_type: str
    type: str


@dataclass(frozen=True)
class Query:
    """A query (SELECT, WITH, VALUES), e.g. a data-quality check; `select` is DuckDB SQL.

    `reads` (here and on the other statements with a query) are the tables the query reads.
    """

    select: str
    reads: tuple[TableName, ...] = ()


@dataclass(frozen=True)
class CreateTableAs:
    """`CREATE TABLE t WITH (...) AS SELECT`: the table, its SELECT in DuckDB SQL, its properties.

    `format` is Athena's `format` lower-cased (Athena's default is parquet); `properties` holds
    every `WITH` property as written, lists as tuples (`partitioned_by`, `bucketed_by`).
    """

    table: TableName
    select: str
    format: str
    location: str | None
    partitioned_by: tuple[str, ...]
    properties: Mapping[str, str | tuple[str, ...]]
    if_not_exists: bool
    with_data: bool = True
    reads: tuple[TableName, ...] = ()


@dataclass(frozen=True)
class InsertInto:
    """`INSERT INTO t [(columns)] SELECT|VALUES`; `select` is DuckDB SQL."""

    table: TableName
    columns: tuple[str, ...]
    select: str
    reads: tuple[TableName, ...] = ()


@dataclass(frozen=True)
class Unload:
    """`UNLOAD (SELECT ...) TO 's3://...' WITH (format = ..., ...)`; `format` lower-cased."""

    select: str
    to: str
    format: str
    properties: Mapping[str, str | tuple[str, ...]]
    reads: tuple[TableName, ...] = ()

    @property
    def compression(self) -> str:
        """The compression as Athena names it, lower-cased ('none' when uncompressed)."""
        value = self.properties.get("compression")
        if isinstance(value, str):
            return value.lower()
        return "gzip" if self.format == "textfile" else "snappy"

    @property
    def field_delimiter(self) -> str:
        value = self.properties.get("field_delimiter")
        return value if isinstance(value, str) else ","


@dataclass(frozen=True)
class CreateExternalTable:
    """Hive `CREATE EXTERNAL TABLE`: a table over files at `location`, read in `format`.

    `format` is one of csv (OpenCSVSerde), textfile (delimited text), json, parquet, orc, avro;
    `serde_properties` and `table_properties` are as written.
    """

    table: TableName
    columns: tuple[Column, ...]
    partitioned_by: tuple[Column, ...]
    location: str | None
    format: str
    serde: str | None
    serde_properties: Mapping[str, str]
    table_properties: Mapping[str, str]
    if_not_exists: bool

    @property
    def field_delimiter(self) -> str:
        props = self.serde_properties
        default = "\x01" if self.format == "textfile" else ","
        return props.get("field.delim") or props.get("separatorChar") or default

    @property
    def quote_char(self) -> str | None:
        """The quote character; delimited text (LazySimpleSerDe) has none."""
        if self.format != "csv":
            return None
        return self.serde_properties.get("quoteChar", '"')

    @property
    def escape_char(self) -> str | None:
        props = self.serde_properties
        return props.get("escapeChar") or props.get("escape.delim")

    @property
    def skip_header_lines(self) -> int:
        value = self.table_properties.get("skip.header.line.count", "0")
        return int(value) if value.strip().isdigit() else 0


@dataclass(frozen=True)
class CreateDatabase:
    """`CREATE DATABASE|SCHEMA [IF NOT EXISTS] name` (a schema on DuckDB)."""

    name: str
    if_not_exists: bool


@dataclass(frozen=True)
class DropTable:
    """`DROP TABLE|VIEW [IF EXISTS] t`; Athena drops the metadata, never the files."""

    table: TableName
    if_exists: bool
    view: bool = False


@dataclass(frozen=True)
class CreateView:
    """`CREATE [OR REPLACE] VIEW t AS SELECT`; `select` is DuckDB SQL."""

    table: TableName
    select: str
    or_replace: bool
    reads: tuple[TableName, ...] = ()


@dataclass(frozen=True)
class RepairTable:
    """`MSCK REPAIR TABLE t`: load the partitions found under the table's location."""

    table: TableName


Statement = (
    Query
    | CreateTableAs
    | InsertInto
    | Unload
    | CreateExternalTable
    | CreateDatabase
    | DropTable
    | CreateView
    | RepairTable
)


def connect(database: str = ":memory:", *, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection set to Athena's semantics (CONNECTION_SETTINGS).

    Opening one costs far more than a small query: reuse it (e.g. one transaction per test).
    """
    import duckdb  # only callers that execute need the engine

    config = {"integer_division": "true"}
    if threads is not None:
        config["threads"] = str(threads)
    connection = duckdb.connect(database, config=config)
    # Time zones live in the icu extension, which the wheel links in but does not load itself.
    connection.execute("LOAD icu")
    connection.execute(f"SET TimeZone = '{CONNECTION_SETTINGS['TimeZone']}'")
    return connection


def translate_query(sql: str) -> str:
    """DuckDB SQL of an Athena query; TranslationError for any other statement."""
    statement = translate(sql)
    if not isinstance(statement, Query):
        raise TranslationError(
            type(statement).__name__, 1, 1, "expected a query (SELECT, WITH or VALUES)"
        )
    return statement.select


def translate(sql: str) -> Statement:
    """The one Athena statement of `sql` as a typed statement with DuckDB SQL inside."""
    text = sql.strip().removesuffix(";").rstrip()
    # Offsets in errors are into `sql`: the stripped text starts `lead` characters in.
    lead = len(sql) - len(sql.lstrip())
    unload = _UNLOAD.match(text)
    if unload:
        return _unload(sql, lead, text, unload.end() - 1)
    tree = _parse(sql, lead, text)
    return _Translator(sql, lead).statement(tree)


# -- parsing -----------------------------------------------------------------------------------


_SQLGLOT_LOG = logging.getLogger("sqlglot")
_TOKEN_REPR = re.compile(r"<Token token_type: [^>]*?, text: (.*?), line: [^>]*>")


def _parse(sql: str, lead: int, text: str) -> exp.Expression:
    try:
        # sqlglot logs a warning before it falls back to an opaque command (MSCK REPAIR ...).
        previous = _SQLGLOT_LOG.level
        _SQLGLOT_LOG.setLevel(logging.ERROR)
        try:
            trees = sqlglot.parse(text, read="athena", error_level=ErrorLevel.RAISE)
        finally:
            _SQLGLOT_LOG.setLevel(previous)
    except ParseError as exc:
        error = exc.errors[0] if exc.errors else {}
        line = error.get("line") or 1
        col = max(1, (error.get("col") or 1) - len(error.get("highlight") or " ") + 1)
        if line == 1:
            col += lead - sql.rfind("\n", 0, lead) - 1
        line += sql.count("\n", 0, lead)
        reason = _TOKEN_REPR.sub(r"'\1'", str(error.get("description") or exc).split("\n")[0])
        raise SqlSyntaxError("syntax", line, col, f"not valid Athena SQL: {reason}") from None
    except TokenError as exc:
        raise SqlSyntaxError(
            "syntax", *position(sql, lead), f"not valid Athena SQL: {exc}"
        ) from None
    trees = [t for t in trees if t is not None]
    if len(trees) != 1:
        raise TranslationError(
            "statements",
            *position(sql, lead),
            f"{len(trees)} statements; Athena runs exactly one statement per query",
        )
    return trees[0]


def _split_properties(
    props: exp.Properties | None,
) -> tuple[list[exp.Expression], dict[str, str | tuple[str, ...]]]:
    """The typed property nodes, and the generic `key = value` ones as plain data."""
    typed: list[exp.Expression] = []
    plain: dict[str, str | tuple[str, ...]] = {}
    for prop in props.expressions if props is not None else ():
        if type(prop) is exp.Property:
            plain[prop.name.lower()] = _value(prop.args["value"])
        else:
            typed.append(prop)
    return typed, plain


def _value(node: exp.Expression) -> str | tuple[str, ...]:
    if isinstance(node, exp.Array | exp.Tuple | exp.Schema):
        return tuple(str(_value(e)) for e in node.expressions)
    if isinstance(node, exp.Literal | exp.Var | exp.Identifier | exp.Column):
        return node.name
    if isinstance(node, exp.Boolean):
        return "true" if node.this else "false"
    return node.sql("athena")


def _table(node: exp.Expression) -> TableName:
    table = node.this if isinstance(node, exp.Schema) else node
    if not isinstance(table, exp.Table):
        raise TypeError(f"not a table: {node!r}")
    return TableName(table.db or None, table.name)


# -- statements --------------------------------------------------------------------------------

_SERDE_FORMATS = {
    "org.apache.hadoop.hive.serde2.opencsvserde": "csv",
    "org.apache.hadoop.hive.serde2.lazy.lazysimpleserde": "textfile",
    "org.openx.data.jsonserde.jsonserde": "json",
    "org.apache.hive.hcatalog.data.jsonserde": "json",
    "org.apache.hadoop.hive.ql.io.parquet.serde.parquethivese": "parquet",
    "org.apache.hadoop.hive.ql.io.parquet.serde.parquethiveserde": "parquet",
    "org.apache.hadoop.hive.ql.io.orc.orcserde": "orc",
    "org.apache.hadoop.hive.serde2.avro.avroserde": "avro",
}
_STORED_AS = {
    "textfile": "textfile",
    "parquet": "parquet",
    "orc": "orc",
    "avro": "avro",
    "jsonfile": "json",
    "ion": "ion",
}


class _Translator:
    """Turns one parsed statement into a typed statement; `sql` is the text errors point into."""

    def __init__(self, sql: str, lead: int) -> None:
        self.sql = sql
        self.lead = lead

    def where(self, node: exp.Expression | None) -> tuple[int, int]:
        """The 1-based line and column of `node` in the caller's text."""
        # Only some nodes carry a position (names, functions): take the first one inside the
        # node, else the nearest enclosing one, else the start of the statement.
        inside = (
            [n.meta["start"] for n in node.walk() if n._meta and "start" in n.meta] if node else []
        )
        if inside:
            return position(self.sql, self.lead + min(inside))
        parent = node.parent if node is not None else None
        while parent is not None:
            if parent._meta and "start" in parent.meta:
                return position(self.sql, self.lead + parent.meta["start"])
            parent = parent.parent
        return position(self.sql, self.lead)

    def fail(self, node: exp.Expression | None, construct: str, reason: str) -> TranslationError:
        line, col = self.where(node)
        return TranslationError(construct, line, col, reason)

    def statement(self, tree: exp.Expression) -> Statement:
        if isinstance(tree, exp.Query):
            return Query(self.query(tree), _reads(tree))
        if isinstance(tree, exp.Create):
            return self.create(tree)
        if isinstance(tree, exp.Insert):
            return self.insert(tree)
        if isinstance(tree, exp.Drop):
            kind = (tree.args.get("kind") or "").upper()
            tables = tree.args.get("tables") or [tree.this]
            if kind in {"TABLE", "VIEW"} and len(tables) == 1:
                return DropTable(_table(tables[0]), bool(tree.args.get("exists")), kind == "VIEW")
            raise self.fail(None, f"DROP {kind}", "only DROP TABLE and DROP VIEW are translated")
        if isinstance(tree, exp.Command) and tree.name.upper() == "MSCK REPAIR":
            match = re.fullmatch(r"(?is)\s*table\s+([\w.`\"]+)\s*", tree.expression.name)
            if match:
                table = sqlglot.to_table(match.group(1).replace("`", '"'), dialect="athena")
                return RepairTable(TableName(table.db or None, table.name))
        construct = tree.name.upper() if isinstance(tree, exp.Command) else tree.key.upper()
        raise self.fail(None, construct, "this statement has no DuckDB translation")

    def create(self, tree: exp.Create) -> Statement:
        kind = (tree.args.get("kind") or "").upper()
        exists = bool(tree.args.get("exists"))
        if kind in {"DATABASE", "SCHEMA"}:
            return CreateDatabase(tree.this.name, exists)
        if kind == "VIEW" and isinstance(tree.expression, exp.Query):
            return CreateView(
                _table(tree.this),
                self.query(tree.expression),
                bool(tree.args.get("replace")),
                _reads(tree.expression),
            )
        if kind != "TABLE":
            raise self.fail(None, f"CREATE {kind}", "this statement has no DuckDB translation")
        typed, plain = _split_properties(tree.args.get("properties"))
        if isinstance(tree.expression, exp.Query):
            return self.ctas(tree, typed, plain)
        if not isinstance(tree.this, exp.Schema):
            raise self.fail(None, "CREATE TABLE", "a table needs columns or AS SELECT")
        return self.external_table(tree, typed, plain)

    def ctas(
        self,
        tree: exp.Create,
        typed: list[exp.Expression],
        plain: dict[str, str | tuple[str, ...]],
    ) -> CreateTableAs:
        props = dict(plain)
        for prop in typed:
            if isinstance(prop, exp.FileFormatProperty):
                props["format"] = _value(prop.this)
            elif isinstance(prop, exp.PartitionedByProperty):
                props["partitioned_by"] = _value(prop.this)
            elif isinstance(prop, exp.LocationProperty):
                props["external_location"] = _value(prop.this)
            elif isinstance(prop, exp.WithDataProperty):
                props["with_data"] = "false" if prop.args.get("no") else "true"
            else:
                raise self.fail(prop, prop.sql("athena"), "this CTAS property is not supported")
        if isinstance(tree.this, exp.Schema):
            raise self.fail(tree.this, "CREATE TABLE (columns) AS", "a CTAS takes no column list")
        fmt = props.get("format", "parquet")
        location = props.get("external_location")
        partitions = props.get("partitioned_by", ())
        return CreateTableAs(
            table=_table(tree.this),
            select=self.query(tree.expression),
            format=str(fmt).lower(),
            location=location if isinstance(location, str) else None,
            partitioned_by=tuple(partitions) if isinstance(partitions, tuple) else (partitions,),
            properties=MappingProxyType(props),
            if_not_exists=bool(tree.args.get("exists")),
            with_data=props.get("with_data", "true") == "true",
            reads=_reads(tree.expression),
        )

    def external_table(
        self,
        tree: exp.Create,
        typed: list[exp.Expression],
        plain: dict[str, str | tuple[str, ...]],
    ) -> CreateExternalTable:
        schema = tree.this
        columns = tuple(self.column(c) for c in schema.expressions)
        partitions: tuple[Column, ...] = ()
        location: str | None = None
        fmt: str | None = None
        serde: str | None = None
        serde_props: dict[str, str] = {}
        for prop in typed:
            if isinstance(prop, exp.ExternalProperty):
                continue
            if isinstance(prop, exp.PartitionedByProperty) and isinstance(prop.this, exp.Schema):
                partitions = tuple(self.column(c) for c in prop.this.expressions)
            elif isinstance(prop, exp.LocationProperty):
                location = prop.this.name
            elif isinstance(prop, exp.FileFormatProperty):
                stored = prop.name.lower() if prop.this is not None else ""
                if stored not in _STORED_AS:
                    raise self.fail(prop, prop.sql("hive"), "this storage format is not supported")
                fmt = fmt if stored == "textfile" and fmt else _STORED_AS[stored]
            elif isinstance(prop, exp.RowFormatSerdeProperty):
                serde = prop.this.name
                known = _SERDE_FORMATS.get(serde.lower())
                if known is None:
                    raise self.fail(prop, f"SERDE '{serde}'", "this SerDe is not supported")
                fmt = known
                nested = prop.args.get("serde_properties")
                serde_props.update(self.string_props(nested))
            elif isinstance(prop, exp.RowFormatDelimitedProperty):
                fmt = "textfile"
                for key, name in (
                    ("fields", "field.delim"),
                    ("escaped", "escape.delim"),
                    ("lines", "line.delim"),
                    ("collection_items", "collection.delim"),
                    ("map_keys", "mapkey.delim"),
                    ("null", "serialization.null.format"),
                ):
                    if prop.args.get(key) is not None:
                        serde_props[name] = prop.args[key].name
            elif isinstance(prop, exp.SerdeProperties):
                serde_props.update(self.string_props(prop))
            else:
                raise self.fail(prop, prop.sql("hive"), "this table property is not supported")
        return CreateExternalTable(
            table=_table(schema),
            columns=columns,
            partitioned_by=partitions,
            location=location,
            format=fmt or "textfile",
            serde=serde,
            serde_properties=MappingProxyType(serde_props),
            table_properties=MappingProxyType({k: str(v) for k, v in plain.items()}),
            if_not_exists=bool(tree.args.get("exists")),
        )

    def string_props(self, node: exp.Expression | None) -> dict[str, str]:
        if node is None:
            return {}
        return {p.name: str(_value(p.args["value"])) for p in node.expressions}

    def column(self, node: exp.Expression) -> Column:
        if not isinstance(node, exp.ColumnDef) or node.args.get("kind") is None:
            raise self.fail(node, node.sql("hive"), "expected a column name and type")
        kind = node.args["kind"]
        return Column(node.name, kind.sql("hive"), self.type(kind))

    def type(self, kind: exp.DataType) -> str:
        try:
            return kind.sql("duckdb", unsupported_level=ErrorLevel.RAISE)
        except UnsupportedError as exc:
            raise self.fail(kind, kind.sql("athena"), str(exc).split("\n")[0]) from None

    def insert(self, tree: exp.Insert) -> InsertInto:
        target = tree.this
        columns: tuple[str, ...] = ()
        if isinstance(target, exp.Schema):
            columns = tuple(c.name for c in target.expressions)
        if tree.args.get("overwrite") or tree.args.get("partition"):
            raise self.fail(None, "INSERT OVERWRITE", "Athena inserts only with INSERT INTO")
        source = tree.expression
        if not isinstance(source, exp.Query | exp.Values):
            raise self.fail(None, "INSERT", "expected INSERT INTO t SELECT ... or VALUES ...")
        return InsertInto(_table(target), columns, self.query(source), _reads(source))

    def query(self, tree: exp.Expression) -> str:
        """DuckDB SQL of a query, after the rewrites sqlglot does not do (made in place: the
        tree was parsed for this translation alone)."""
        _name_like_athena(tree)
        for node in list(tree.walk()):
            self.check(node)
        # Children before parents (reversed breadth-first order), so a rewrite sees its
        # arguments already rewritten and a rewritten node's arguments are never skipped.
        for node in reversed(list(tree.walk(bfs=True))):
            new = self.rewrite(node)
            if new is not node:
                if node is tree:
                    tree = new
                else:
                    node.replace(new)
        try:
            return tree.sql("duckdb", unsupported_level=ErrorLevel.RAISE)
        except UnsupportedError as exc:
            raise self.unsupported(tree, exc) from None

    def unsupported(self, tree: exp.Expression, exc: UnsupportedError) -> TranslationError:
        """Locate the smallest part of `tree` sqlglot cannot write for DuckDB."""
        culprit: exp.Expression = tree
        for node in tree.walk():
            try:
                node.sql("duckdb", unsupported_level=ErrorLevel.RAISE)
            except UnsupportedError:
                culprit = node  # walk is breadth-first: later failures are deeper
            except Exception:  # fragments that are not valid on their own
                continue
        construct = self.construct(culprit)
        return self.fail(culprit, construct, str(exc).split("\n")[0])

    def construct(self, node: exp.Expression) -> str:
        meta = node.meta if node._meta else {}
        if isinstance(node, exp.Func) and "start" in meta:
            start = self.lead + meta["start"]
            name = re.match(r"[\w$]+", self.sql[start:])
            if name:
                return f"{name.group()}()"
        if isinstance(node, exp.Anonymous):
            return f"{node.name}()"
        return node.sql("athena")[:60]

    def check(self, node: exp.Expression) -> None:
        """Refuse what would run on DuckDB but answer differently."""
        if isinstance(node, exp.Anonymous) and node.name.lower() == "format_datetime":
            fmt = seq_get(node.expressions, 1)
            if not (isinstance(fmt, exp.Literal) and fmt.is_string) or len(node.expressions) != 2:
                raise self.fail(node, "format_datetime()", "the Joda format must be a literal")
            _joda(fmt.name, lambda why: self.fail(fmt, f"'{fmt.name}'", why))
        elif isinstance(node, exp.Anonymous):
            name = node.name.lower()
            if name not in _REWRITES and name not in _SAME_IN_DUCKDB:
                raise self.fail(
                    node,
                    f"{node.name}()",
                    "DuckDB has no equivalent of this function; compute it another way "
                    "(or test this query on Athena)",
                )
        elif isinstance(node, exp.ParseDatetime):
            fmt = node.args.get("format")
            if not (isinstance(fmt, exp.Literal) and fmt.is_string):
                raise self.fail(node, self.construct(node), "the Joda format must be a literal")
            _joda(fmt.name, lambda why: self.fail(fmt, f"'{fmt.name}'", why))
        elif isinstance(node, exp.StrToTime | exp.TimeToStr):
            fmt = node.args.get("format")
            if fmt is not None and not (isinstance(fmt, exp.Literal) and fmt.is_string):
                raise self.fail(node, self.construct(node), "the format must be a literal")
        elif isinstance(node, exp.Column) and node.name.startswith("$"):
            raise self.fail(node, f'"{node.name}"', "Athena's hidden columns are not on DuckDB")

    def rewrite(self, node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Anonymous) and node.name.lower() == "format_datetime":
            this, fmt = node.expressions
            return exp.TimeToStr(this=this, format=exp.Literal.string(_joda(fmt.name, _never)))
        if isinstance(node, exp.Anonymous):
            fix = _REWRITES.get(node.name.lower())
            if fix is not None:
                return fix(node)
        elif isinstance(node, exp.ParseDatetime):
            fmt = node.args["format"]
            return exp.StrToTime(this=node.this, format=exp.Literal.string(_joda(fmt.name, _never)))
        elif isinstance(node, exp.DateDiff):
            # Trino counts whole units between the two; DuckDB's date_diff counts boundaries
            # crossed (23:00 to 01:00 is one day), its date_sub whole units.
            unit = exp.Literal.string((node.text("unit") or "day").lower())
            return _anon("DATE_SUB", unit, node.expression, node.this)
        elif isinstance(node, exp.RegexpExtract):
            # No match: Trino answers NULL, DuckDB an empty string.
            group = node.args.get("group")
            arguments = (node.this, node.expression, *([group] if group is not None else []))
            extract = _anon("REGEXP_EXTRACT", *arguments)
            return exp.Case(
                ifs=[exp.If(this=_anon("REGEXP_MATCHES", node.this, node.expression), true=extract)]
            )
        elif isinstance(node, exp.Div):
            # Trino fails on a division by zero; DuckDB would answer NULL.
            divisor = exp.Case(
                ifs=[
                    exp.If(
                        this=exp.EQ(this=node.expression, expression=exp.Literal.number(0)),
                        true=_anon("ERROR", exp.Literal.string("Division by zero")),
                    )
                ],
                default=node.expression,
            )
            return exp.Div(this=node.this, expression=exp.Paren(this=divisor))
        return node


def _reads(tree: exp.Expression) -> tuple[TableName, ...]:
    """The tables a query reads, in order of appearance, without its own CTEs."""
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    found: dict[TableName, int] = {}
    for table in tree.find_all(exp.Table):
        if not table.name or (not table.db and table.name.lower() in ctes):
            continue
        name = TableName(table.db or None, table.name)
        start = min(
            (n.meta["start"] for n in table.walk() if n._meta and "start" in n.meta), default=0
        )
        found[name] = min(found.get(name, start), start)
    return tuple(sorted(found, key=found.__getitem__))


def _name_like_athena(tree: exp.Expression) -> None:
    """Name unnamed result columns `_col<position>` as Athena does (DuckDB names them by text)."""
    first = tree
    while isinstance(first, exp.SetOperation):
        first = first.this
    if not isinstance(first, exp.Select):
        return
    for index, projection in enumerate(first.expressions):
        if not isinstance(projection, exp.Alias | exp.Column | exp.Star):
            projection.replace(exp.alias_(projection.copy(), f"_col{index}"))


# -- functions ---------------------------------------------------------------------------------

# Functions sqlglot does not know that DuckDB has under the same name and meaning.
_SAME_IN_DUCKDB = frozenset(
    {
        "map_values",
        "json_array_length",
        "levenshtein",
        "hamming",
        "url_decode",
        "url_encode",
        "to_base64",
        "bit_count",
    }
)


def _anon(name: str, *args: exp.Expression) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=list(args))


def _millisecond(node: exp.Anonymous) -> exp.Expression:
    # Trino: the millisecond of the second (0-999); DuckDB: of the minute (0-59999).
    return exp.Mod(
        this=_anon("MILLISECOND", *node.expressions), expression=exp.Literal.number(1000)
    )


_REWRITES: dict[str, Callable[[exp.Anonymous], exp.Expression]] = {
    "every": lambda n: exp.LogicalAnd(this=n.expressions[0]),
    "codepoint": lambda n: _anon("UNICODE", *n.expressions),
    "hamming_distance": lambda n: _anon("HAMMING", *n.expressions),
    "arrays_overlap": lambda n: _anon("LIST_HAS_ANY", *n.expressions),
    "millisecond": _millisecond,
    "from_iso8601_timestamp_nanos": lambda n: exp.cast(n.expressions[0], "TIMESTAMPTZ"),
}

# Joda-Time pattern letters (Trino's format_datetime / parse_datetime) as strftime directives.
_JODA = {
    "yyyy": "%Y",
    "yy": "%y",
    "YYYY": "%Y",
    "MMMM": "%B",
    "MMM": "%b",
    "MM": "%m",
    "M": "%-m",
    "dd": "%d",
    "d": "%-d",
    "HH": "%H",
    "H": "%-H",
    "hh": "%I",
    "h": "%-I",
    "mm": "%M",
    "m": "%-M",
    "ss": "%S",
    "s": "%-S",
    "SSSSSS": "%f",
    "SSS": "%g",
    "a": "%p",
    "EEEE": "%A",
    "EEE": "%a",
    "DDD": "%j",
    "ZZ": "%z",
    "Z": "%z",
}
_JODA_TOKEN = re.compile(r"'[^']*'|([A-Za-z])\1*|[^A-Za-z']+")


def _never(why: str) -> Exception:
    raise AssertionError(why)  # formats are checked before they are rewritten


def _joda(pattern: str, fail: Callable[[str], Exception]) -> str:
    """The strftime format of a Joda-Time pattern; `fail(reason)` for letters without one."""
    out: list[str] = []
    for match in _JODA_TOKEN.finditer(pattern):
        token = match.group()
        if token.startswith("'"):
            out.append(token[1:-1].replace("%", "%%") or "'")
        elif token[0].isalpha():
            directive = _JODA.get(token)
            if directive is None:
                raise fail(f"Joda pattern '{token}' has no DuckDB equivalent")
            out.append(directive)
        else:
            out.append(token.replace("%", "%%"))
    return "".join(out)


# -- UNLOAD ------------------------------------------------------------------------------------


# UNLOAD after any comments, up to its opening parenthesis.
_UNLOAD = re.compile(r"(?is)(?:\s*(?:--[^\n]*(?:\n|$)|/\*.*?\*/))*\s*unload\s*\(")


def _unload(sql: str, lead: int, text: str, base: int) -> Unload:
    """`UNLOAD (query) TO 'uri' WITH (k = v, ...)`, which sqlglot leaves as an opaque command."""
    translator = _Translator(sql, lead)
    # sqlglot tokenizes UNLOAD as a command that swallows the rest: tokenize from the '('.
    body = text[base:]
    try:
        tokens = sqlglot.tokenize(body, read="trino")
    except TokenError as exc:
        raise SqlSyntaxError(
            "UNLOAD", *position(sql, lead), f"not valid Athena SQL: {exc}"
        ) from None
    depth, close = 0, -1
    for i, token in enumerate(tokens):
        if token.token_type == TokenType.L_PAREN:
            depth += 1
        elif token.token_type == TokenType.R_PAREN:
            depth -= 1
            if depth == 0:
                close = i
                break

    def bad(at: int, what: str) -> SqlSyntaxError:
        offset = base + tokens[at].start if at < len(tokens) else len(text)
        line, col = position(sql, lead + offset)
        return SqlSyntaxError("UNLOAD", line, col, f"expected {what}")

    if close < 0:
        raise bad(len(tokens), "')' closing UNLOAD's query")
    inner_start, inner_end = base + tokens[0].end + 1, base + tokens[close].start
    rest = tokens[close + 1 :]
    if len(rest) < 2 or rest[0].text.upper() != "TO" or rest[1].token_type != TokenType.STRING:
        raise bad(close + 1, "TO 's3://bucket/prefix/' after UNLOAD's query")
    to = rest[1].text
    props: dict[str, str | tuple[str, ...]] = {}
    tail = text[base + rest[1].end + 1 :].strip()
    if tail:
        if not tail.upper().startswith("WITH"):
            raise bad(close + 3, "WITH (property = value, ...) or the end of the statement")
        with_tree = _parse(
            "CREATE TABLE x " + tail + " AS SELECT 1", 0, "CREATE TABLE x " + tail + " AS SELECT 1"
        )
        typed, plain = _split_properties(with_tree.args.get("properties"))
        props.update(plain)
        for prop in typed:
            if isinstance(prop, exp.FileFormatProperty):
                props["format"] = _value(prop.this)
            elif isinstance(prop, exp.PartitionedByProperty):
                props["partitioned_by"] = _value(prop.this)
    # Offsets inside the query keep pointing into the caller's text.
    query_sql = re.sub(r"[^\n]", " ", sql[: lead + inner_start]) + text[inner_start:inner_end]
    tree = _parse(query_sql, 0, query_sql)
    if not isinstance(tree, exp.Query):
        raise translator.fail(None, "UNLOAD", "UNLOAD's parentheses must hold a query")
    select = _Translator(query_sql, 0).query(tree)
    fmt = props.get("format")
    if fmt is None:
        raise SqlSyntaxError("UNLOAD", *position(sql, lead), "expected WITH (format = '...')")
    return Unload(
        select=select,
        to=to,
        format=str(fmt).lower(),
        properties=MappingProxyType(props),
        reads=_reads(tree),
    )


# -- types -------------------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def duckdb_type(athena_type: str) -> str:
    """DuckDB's name for an Athena (Hive DDL or Trino) column type, e.g. `array<string>`."""
    try:
        kind = exp.DataType.build(athena_type, dialect="athena")
    except (ParseError, TokenError, ValueError) as exc:
        raise TranslationError(athena_type, 1, 1, f"not an Athena type: {exc}") from None
    try:
        return kind.sql("duckdb", unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as exc:
        raise TranslationError(athena_type, 1, 1, str(exc).split("\n")[0]) from None
