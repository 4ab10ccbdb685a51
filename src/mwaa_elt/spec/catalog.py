"""The stage catalog: databases a stage provisions, tables pipelines create, declared sources.

Tables are named logically (`analytics.scifi` for `{{ db.analytics }}.scifi`), so one catalog
serves every stage. A pipeline's own tables are known when its file is checked; tables of the
other pipelines only when all specs are validated together, so reads that the pipeline cannot
resolve itself are handed on (`PendingRead`) to the checks across specs.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from functools import lru_cache

from sqlglot import exp
from sqlglot.errors import OptimizeError, SqlglotError

from mwaa_elt.spec.sql_parse import Statement, Templated, quiet_sqlglot, templated

_DB_VAR = re.compile(r"^\s*db\.([A-Za-z_][A-Za-z0-9_]*)\s*$")
_SYSTEM_DATABASES = frozenset({"information_schema"})


@dataclass
class Table:
    """A table of the catalog: who creates it, where its data is, its columns when known."""

    name: str  # logical: <database>.<table>
    task: str | None  # the creating task of this pipeline; None for a declared source
    columns: tuple[str, ...] | None = None
    location: str | None = None  # as written, Jinja in place


@dataclass(frozen=True)
class TableRef:
    """A table named in a statement, at its position."""

    name: str | None  # logical <database>.<table>; None when the name is built at run time
    database: str | None  # logical database, or the literal one written
    literal_database: bool  # the database was written as text, not {{ db.x }}
    line: int
    col: int
    written: str


@dataclass(frozen=True)
class PendingRead:
    """A read the pipeline does not resolve itself: another pipeline must create the table."""

    table: str
    line: int
    col: int


@dataclass
class Catalog:
    """The tables one pipeline can see while its own file is checked."""

    databases: tuple[str, ...]  # logical names every stage provisions
    tables: dict[str, Table] = field(default_factory=dict)


def table_ref(tpl: Templated, table: exp.Table) -> TableRef:
    """The logical name of a sqlglot table node, resolving `{{ db.x }}` placeholders."""
    db_node = table.args.get("db")
    name_node = table.this
    meta = (db_node or name_node).meta if isinstance(db_node or name_node, exp.Identifier) else {}
    line, col = int(meta.get("line", 1)), int(meta.get("col", 1))
    if db_node is not None and isinstance(db_node, exp.Identifier):
        col = max(1, col - len(db_node.name) + 1)
    elif isinstance(name_node, exp.Identifier):
        col = max(1, col - len(name_node.name) + 1)
    written = tpl.restore(".".join(p for p in (table.db, table.name) if p))
    name = table.name
    if tpl.expression_at(name) is not None or any(h and h in name for h in tpl.placeholders):
        return TableRef(None, None, False, line, col, written)
    if db_node is None or not table.db:
        return TableRef(None, None, True, line, col, written)
    expr = tpl.expression_at(table.db)
    if expr is not None:
        match = _DB_VAR.match(expr.inner)
        if match is None:
            return TableRef(None, None, False, line, col, written)
        database = match.group(1)
        return TableRef(f"{database}.{name.lower()}", database, False, line, col, written)
    if any(h and h in table.db for h in tpl.placeholders):
        return TableRef(None, None, False, line, col, written)
    database = table.db.lower()
    return TableRef(f"{database}.{name.lower()}", database, True, line, col, written)


@lru_cache(maxsize=1024)
def field_table_ref(text: str) -> TableRef | None:
    """The table a spec field names (`{{ db.analytics }}.scifi`), or None when it names none."""
    tpl = templated(text)
    if "." not in tpl.sql:
        return None
    try:
        node = exp.to_table(tpl.sql, dialect="athena")
    except SqlglotError:
        return None  # the field's own check reports it
    return table_ref(tpl, node)


def database_problem(ref: TableRef, catalog: Catalog) -> str | None:
    """A table's database must be one the stages provision, written as {{ db.<name> }}."""
    if ref.database is None and ref.literal_database:
        return (
            f"table '{ref.written}' names no database; Athena would look in 'default': write "
            f"{{{{ db.<database> }}}}.{ref.written} (databases: {', '.join(catalog.databases)})"
        )
    if ref.database is None or ref.database in _SYSTEM_DATABASES:
        return None
    if ref.literal_database:
        close = difflib.get_close_matches(ref.database, catalog.databases, n=1)
        hint = (
            f"did you mean {{{{ db.{close[0]} }}}}?"
            if close
            else (
                f"databases the stages provision: {', '.join(catalog.databases)} (glueDatabases in "
                "stacks/Pulumi.<stage>.yaml)"
            )
        )
        return (
            f"database '{ref.database}' is not one the stages provision; name databases as "
            f"{{{{ db.<name> }}}}: {hint}"
        )
    return None  # {{ db.x }} of an unknown x is reported by the stage-variable check


def did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f"did you mean '{close[0]}'?"
    return "create it in an earlier task (CREATE TABLE / CTAS), or declare it under sources:"


def cte_names(node: exp.Expression) -> set[str]:
    return {cte.alias_or_name.lower() for cte in node.find_all(exp.CTE)}


def target_of(statement: Statement) -> exp.Table | None:
    """The table a statement creates, fills, drops or deletes from."""
    node = statement.node
    if statement.kind in {"ctas", "create_table", "create_view", "insert", "drop_table",
                          "drop_view", "delete", "alter"}:  # fmt: skip
        target = node.this if node is not None else None
        if isinstance(node, exp.Drop) and node.args.get("tables"):
            target = node.args["tables"][0]
        if isinstance(target, exp.Schema):
            target = target.this
        return target if isinstance(target, exp.Table) else None
    return None


def declared_columns(statement: Statement) -> tuple[str, ...] | None:
    """The columns of a CREATE TABLE's column list (partition columns included)."""
    node = statement.node
    if not isinstance(node, exp.Create) or not isinstance(node.this, exp.Schema):
        return None
    columns = [c.name.lower() for c in node.this.expressions if isinstance(c, exp.ColumnDef)]
    properties = node.args.get("properties")
    for prop in properties.expressions if properties else []:
        if isinstance(prop, exp.PartitionedByProperty) and isinstance(prop.this, exp.Schema):
            columns += [
                c.name.lower() for c in prop.this.expressions if isinstance(c, exp.ColumnDef)
            ]
    return tuple(columns)


def query_of(statement: Statement) -> exp.Query | None:
    node = statement.node
    if isinstance(node, exp.Query):
        return node
    if isinstance(node, (exp.Create, exp.Insert)) and isinstance(node.expression, exp.Query):
        return node.expression
    return None


def column_problems(
    tpl: Templated, query: exp.Query, refs: dict[str, str], catalog: Catalog
) -> tuple[list[tuple[int, int, str]], tuple[str, ...] | None]:
    """Unknown columns of `query` (all of whose tables have known columns) and its output
    columns; `refs` maps each placeholder database name to its logical database."""
    tables: dict[str, tuple[str, ...]] = {}
    for table in query.find_all(exp.Table):
        ref = table_ref(tpl, table)
        if ref.name is None:
            if table.name.lower() in cte_names(query):
                continue
            return [], None
        known = catalog.tables.get(ref.name)
        if known is None or known.columns is None:
            return [], None
        tables[ref.name] = known.columns
    # Keyed by the tree itself: parsed trees are cached and shared by every text that parses to
    # the same SQL (sql_parse.parse), so copies are qualified once, without generating SQL text
    # for a key; and positions in a verdict always come from this very tree.
    key = (id(query), tuple(sorted(refs.items())), tuple(sorted(tables.items())))
    return _qualified(key, query, refs)


_Verdict = tuple[list[tuple[int, int, str]], tuple[str, ...] | None]


def _qualified(
    key: tuple[int, tuple[tuple[str, str], ...], tuple[tuple[str, tuple[str, ...]], ...]],
    query: exp.Query,
    refs: dict[str, str],
) -> _Verdict:
    found = _QUALIFIED.get(key)
    if found is None or found[0] is not query:
        if len(_QUALIFIED) > 4096:
            _QUALIFIED.clear()
        # The entry holds the tree, so the id in its key cannot be reused meanwhile.
        found = (query, _qualify(query, dict(key[2]), refs))
        _QUALIFIED[key] = found
    problems, names = found[1]
    return list(problems), names


_QUALIFIED: dict[tuple, tuple[exp.Query, _Verdict]] = {}  # type: ignore[type-arg]


def _qualify(
    query: exp.Query, tables: dict[str, tuple[str, ...]], refs: dict[str, str]
) -> tuple[list[tuple[int, int, str]], tuple[str, ...] | None]:
    # Imported here: the optimizer is heavy to import, and most commands never qualify.
    from sqlglot.optimizer.qualify import qualify
    from sqlglot.schema import MappingSchema

    copy = query.copy()
    for table in copy.find_all(exp.Table):
        if table.db in refs:
            table.set("db", exp.to_identifier(refs[table.db]))
    mapping: dict[str, dict[str, dict[str, str]]] = {}
    for name, columns in tables.items():
        database, _, table_name = name.partition(".")
        mapping.setdefault(database, {})[table_name] = dict.fromkeys(columns, "VARCHAR")
    with quiet_sqlglot():
        try:
            qualified = qualify(
                copy,
                schema=MappingSchema(mapping, dialect="athena"),
                dialect="athena",
                validate_qualify_columns=True,
                identify=False,
            )
        except OptimizeError as exc:
            return [_unknown_column(query, str(exc), tables)], None
        except (SqlglotError, Exception):  # beyond the optimizer: no verdict on columns
            return [], None
    if isinstance(qualified, exp.Query):
        names = tuple(n.lower() for n in qualified.named_selects)
        if names and "*" not in names:
            return [], names
    return [], None


def _unknown_column(
    query: exp.Query, message: str, tables: dict[str, tuple[str, ...]]
) -> tuple[int, int, str]:
    match = re.search(r"Column '([^']+)' could not be resolved", message)
    known = sorted({c for cols in tables.values() for c in cols})
    if match:
        name = match.group(1).strip('"').split(".")[-1]
        line, col = 1, 1
        for column in query.find_all(exp.Column):
            if column.name.lower() == name.lower() and isinstance(column.this, exp.Identifier):
                meta = column.this.meta
                line = int(meta.get("line", 1))
                col = max(1, int(meta.get("col", 1)) - len(column.name) + 1)
                break
        close = difflib.get_close_matches(name.lower(), known, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"columns: {', '.join(known[:20])}"
        return line, col, f"unknown column '{name}' in {', '.join(sorted(tables))}; {hint}"
    line = 1
    return line, 1, f"columns do not resolve: {message.splitlines()[0]}"
