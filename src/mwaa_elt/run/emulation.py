"""Make the sandbox's Athena and EMR do real work, so a local run proves what a DAG does.

moto records Athena queries without running them and leaves EMR steps RUNNING forever. moto has
no hook for either (its documented extension points only set canned query results and state
transitions), so `installed()` adds two narrow overrides of backend methods, and restores them:

- `AthenaBackend.start_query_execution`: after moto has recorded the execution, the statement
  runs on DuckDB (queries translated by `duckdb_athena`, the project's shared translation).
  Tables come from moto's Glue catalog and their files from moto's S3, copied to a scratch
  folder; CREATE TABLE, CTAS, INSERT and UNLOAD write their files back to moto's S3 and their
  tables to moto's Glue. The execution ends SUCCEEDED with
  its result set (moto's own store of query results), or FAILED with the engine's message as its
  StateChangeReason; a wrapper of `AthenaResponse.get_query_execution` adds that reason to the
  response, which moto leaves out.
- `ElasticMapReduceBackend.add_job_flow_steps`: each step is checked as EMR would find it, not
  run: its script must be in the sandbox's S3, a PySpark script must compile and every Hive
  `${var}` must be passed with `-d`; the step ends COMPLETED, or FAILED with the reason.

Every statement and step is recorded in `JOURNAL`, so a run can report rows written and reasons.
"""

from __future__ import annotations

import gzip
import io
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any

import sqlglot
from sqlglot import exp

# What the SQL of an Athena statement is parsed as; DuckDB is what it runs on.
ATHENA = "athena"
DUCKDB = "duckdb"
DEFAULT_CATALOG = "awsdatacatalog"

PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
LAZY_SERDE = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
OPEN_CSV_SERDE = "org.apache.hadoop.hive.serde2.OpenCSVSerde"
JSON_SERDES = ("org.openx.data.jsonserde.JsonSerDe", "org.apache.hive.hcatalog.data.JsonSerDe")
INPUT_FORMATS = {
    "PARQUET": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "TEXTFILE": "org.apache.hadoop.mapred.TextInputFormat",
    "JSON": "org.apache.hadoop.mapred.TextInputFormat",
}


class AthenaError(Exception):
    """A statement Athena would reject: `ERROR_CODE: message`, as Athena words its reasons."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(f"{code}: {message}")


# -- the journal -------------------------------------------------------------------------------


@dataclass
class QueryRecord:
    """One Athena statement the sandbox ran: its outcome, reason and the rows it wrote."""

    execution_id: str
    query: str
    database: str
    state: str
    reason: str | None = None
    rows_written: int | None = None
    rows_returned: int | None = None
    written_to: str | None = None
    seconds: float = 0.0
    at: float = field(default_factory=time.time)  # epoch seconds: which run it belongs to


@dataclass
class StepRecord:
    """One EMR step the sandbox checked: COMPLETED, or FAILED with the reason."""

    cluster_id: str
    step_id: str
    name: str
    state: str
    reason: str | None = None
    script: str | None = None
    at: float = field(default_factory=time.time)


@dataclass
class Journal:
    """What the emulation did since the last `clear()`; read by the local run for its report."""

    queries: list[QueryRecord] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def clear(self) -> None:
        with self.lock:
            self.queries.clear()
            self.steps.clear()


JOURNAL = Journal()

# -- the S3 and Glue of the sandbox --------------------------------------------------------------


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` → (bucket, key)."""
    if not uri.startswith("s3://"):
        raise AthenaError("INVALID_INPUT", f"{uri!r} is not an s3:// location")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


class Storage:
    """moto's in-process S3 of one account: list, read and write objects without HTTP."""

    def __init__(self, account_id: str) -> None:
        from moto.s3.models import s3_backends

        self.backend = s3_backends[account_id]["aws"]

    def keys(self, uri: str) -> list[str]:
        """Keys of live objects under the prefix `uri`, sorted."""
        from moto.s3.models import FakeKey

        bucket_name, prefix = split_s3_uri(uri)
        try:
            bucket = self.backend.get_bucket(bucket_name)
        except Exception:
            raise AthenaError(
                "HIVE_UNKNOWN_ERROR", f"bucket {bucket_name} does not exist"
            ) from None
        return sorted(
            name
            for name, key in list(bucket.keys.items())
            if name.startswith(prefix) and isinstance(key, FakeKey)
        )

    def read(self, bucket: str, key: str) -> bytes | None:
        try:
            found = self.backend.get_object(bucket, key)
        except Exception:
            return None
        return None if found is None else bytes(found.value)

    def write(self, bucket: str, key: str, data: bytes) -> None:
        self.backend.put_object(bucket, key, data)


def _data_files(storage: Storage, location: str) -> list[tuple[str, str]]:
    """(bucket, key) of the data files under a table location, as Hive lists them.

    Hive skips names starting with `_` or `.` (`_SUCCESS`, `.crc`) and folder markers.
    """
    bucket, _ = split_s3_uri(location)
    files = []
    for key in storage.keys(location if location.endswith("/") else location + "/"):
        name = PurePosixPath(key).name
        if not name or name.startswith(("_", ".")) or key.endswith(("/", "_$folder$")):
            continue
        files.append((bucket, key))
    return files


class Catalog:
    """moto's in-process Glue Data Catalog of one account and region."""

    def __init__(self, account_id: str, region: str) -> None:
        from moto.glue.models import glue_backends

        self.backend = glue_backends[account_id][region]

    def has_database(self, name: str) -> bool:
        return name in self.backend.databases

    def create_database(self, name: str, location: str | None) -> None:
        database_input: dict[str, Any] = {"Name": name}
        if location:
            database_input["LocationUri"] = location
        self.backend.create_database(name, database_input)

    def drop_database(self, name: str) -> None:
        self.backend.delete_database(name)

    def table(self, database: str, name: str) -> dict[str, Any] | None:
        if not self.has_database(database):
            return None
        found = self.backend.databases[database].tables.get(name)
        return None if found is None else found.as_dict()

    def table_names(self, database: str) -> list[str]:
        return (
            sorted(self.backend.databases[database].tables) if self.has_database(database) else []
        )

    def create_table(self, database: str, table_input: dict[str, Any]) -> None:
        self.backend.create_table(database, table_input["Name"], table_input)

    def drop_table(self, database: str, name: str) -> None:
        self.backend.delete_table(database, name)


# -- types ----------------------------------------------------------------------------------------


def hive_type(duckdb_type: str) -> str:
    """The Glue (Hive) column type for a DuckDB result type, e.g. VARCHAR → string."""
    try:
        return exp.DataType.build(duckdb_type, dialect=DUCKDB).sql(dialect="hive").lower()
    except Exception:  # a type Hive cannot spell (e.g. a UNION): keep DuckDB's name
        return duckdb_type.lower()


def duckdb_type(glue_type: str) -> str:
    """The DuckDB type for a Glue (Hive) column type, e.g. string → VARCHAR."""
    return exp.DataType.build(glue_type, dialect="hive").sql(dialect=DUCKDB)


def athena_type(duckdb_type_name: str) -> str:
    """The type name Athena reports in ColumnInfo for a DuckDB result type."""
    try:
        return exp.DataType.build(duckdb_type_name, dialect=DUCKDB).sql(dialect=ATHENA).lower()
    except Exception:
        return duckdb_type_name.lower()


def athena_text(value: Any) -> str | None:
    """A value as Athena's result set spells it (`true`, `2024-01-01 00:00:00.000`)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    if isinstance(value, date | Decimal):
        return str(value)
    return str(value)


# -- one statement on DuckDB --------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What a statement produced: a result set, and for writes where and how many rows."""

    columns: tuple[tuple[str, str], ...] = ()  # (name, athena type)
    rows: tuple[tuple[str | None, ...], ...] = ()
    rows_written: int | None = None
    written_to: str | None = None


def _position(table: exp.Expression) -> str:
    """`line L:C: ` where a (qualified) table name starts, as Athena words positions."""
    node = table.args.get("db") or table.this if isinstance(table, exp.Table) else table
    meta = getattr(node, "meta", None)
    if isinstance(meta, dict) and "line" in meta and "col" in meta:
        return f"line {meta['line']}:{max(int(meta['col']) - len(node.name) + 1, 1)}: "
    return ""


def _literal(node: exp.Expression | None) -> str | None:
    if node is None:
        return None
    if isinstance(node, exp.Literal | exp.Var | exp.Identifier):
        return str(node.this)
    return node.sql(dialect=ATHENA).strip("'")


def _properties(create: exp.Create) -> dict[str, Any]:
    """A CREATE statement's properties (WITH (...), TBLPROPERTIES, LOCATION, SerDe) by name."""
    props: dict[str, Any] = {}
    container = create.args.get("properties")
    for prop in container.expressions if container else []:
        if isinstance(prop, exp.ExternalProperty):
            props["external"] = True
        elif isinstance(prop, exp.FileFormatProperty):
            props["format"] = (_literal(prop.this) or "").upper()
        elif isinstance(prop, exp.LocationProperty):
            props["location"] = _literal(prop.this)
        elif isinstance(prop, exp.RowFormatSerdeProperty):
            props["serde"] = _literal(prop.this)
            serde_props = prop.args.get("serde_properties")
            props["serde_params"] = {
                _literal(p.this): _literal(p.args.get("value"))
                for p in (serde_props.expressions if serde_props else [])
            }
        elif isinstance(prop, exp.RowFormatDelimitedProperty):
            props["serde"] = LAZY_SERDE
            params = {}
            if prop.args.get("fields"):
                params["field.delim"] = _literal(prop.args["fields"])
            if prop.args.get("escaped"):
                params["escape.delim"] = _literal(prop.args["escaped"])
            props["serde_params"] = params
        elif isinstance(prop, exp.PartitionedByProperty):
            props["partitioned_by"] = prop.this
        elif isinstance(prop, exp.Property):
            name = (_literal(prop.this) or "").lower()
            value = prop.args.get("value")
            if isinstance(value, exp.Array):
                props[name] = [_literal(v) for v in value.expressions]
            else:
                props[name] = _literal(value)
    return props


_UNLOAD = re.compile(
    r"^\s*UNLOAD\s*\((?P<query>.*)\)\s*TO\s*'(?P<to>[^']*)'\s*(?:WITH\s*\((?P<with>.*)\))?\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_WITH_PROPERTY = re.compile(r"(\w+)\s*=\s*(?:'([^']*)'|ARRAY\s*\[([^\]]*)\])", re.IGNORECASE)
# Hive variables a script reads: ${name} or ${hivevar:name}; ${hiveconf:x}, ${env:x} are others'.
HIVE_VARIABLE = re.compile(r"\$\{(?:hivevar:)?([A-Za-z_][A-Za-z0-9_.]*)\}")


class AthenaOnDuckDB:
    """Runs one Athena statement against the sandbox's Glue catalog and S3 on DuckDB."""

    def __init__(self, account_id: str, region: str) -> None:
        self.storage = Storage(account_id)
        self.catalog = Catalog(account_id, region)

    def execute(self, query: str, database: str, execution_id: str, results_uri: str) -> Outcome:
        unload = _UNLOAD.match(query)
        if unload:
            return self._unload(unload, database, execution_id)
        statement = self._parse(query)
        if isinstance(statement, exp.Create) and statement.kind in ("DATABASE", "SCHEMA"):
            return self._create_database(statement)
        if isinstance(statement, exp.Drop) and statement.kind in ("DATABASE", "SCHEMA"):
            return self._drop_database(statement)
        if isinstance(statement, exp.Drop) and statement.kind in ("TABLE", "VIEW"):
            return self._drop_table(statement, database)
        if isinstance(statement, exp.Create) and statement.kind == "TABLE":
            if statement.expression is not None:
                return self._ctas(statement, database, execution_id, results_uri)
            return self._create_table(statement, database)
        if isinstance(statement, exp.Insert):
            return self._insert(statement, database, execution_id)
        if isinstance(statement, exp.Query):
            return self._select(statement, database)
        if isinstance(statement, exp.Command) and statement.name.upper() == "MSCK":
            return Outcome()  # partitions are read from the folders, so there is nothing to add
        kind = statement.key.upper() if not isinstance(statement, exp.Command) else statement.name
        raise AthenaError(
            "NOT_SUPPORTED",
            f"{kind} statements are not run by the local Athena emulation (it runs SELECT, "
            "CREATE/DROP DATABASE and TABLE, CTAS, INSERT INTO and UNLOAD)",
        )

    # -- parsing and loading --------------------------------------------------------------

    @staticmethod
    def _parse(query: str) -> exp.Expression:
        try:
            statements = [s for s in sqlglot.parse(query, read=ATHENA) if s is not None]
        except sqlglot.errors.ParseError as error:
            first = error.errors[0] if error.errors else {}
            where = f"line {first.get('line')}:{first.get('col')}: " if first else ""
            raise AthenaError(
                "SYNTAX_ERROR", f"{where}{first.get('description') or error}"
            ) from None
        if len(statements) != 1:
            raise AthenaError("INVALID_INPUT", "Only one sql statement is allowed")
        return statements[0]

    def _qualified(self, table: exp.Table, database: str) -> tuple[str, str]:
        return (table.db or database).lower(), table.name.lower()

    def _glue_table(self, table: exp.Table, database: str) -> dict[str, Any]:
        db, name = self._qualified(table, database)
        if not self.catalog.has_database(db):
            raise AthenaError("SCHEMA_NOT_FOUND", f"{_position(table)}Schema '{db}' does not exist")
        found = self.catalog.table(db, name)
        if found is None:
            raise AthenaError(
                "TABLE_NOT_FOUND",
                f"{_position(table)}Table '{DEFAULT_CATALOG}.{db}.{name}' does not exist",
            )
        return found

    @contextmanager
    def _engine(self) -> Iterator[tuple[Any, Path]]:
        from mwaa_elt.duckdb_athena import connect  # Athena's semantics: integer division, UTC

        scratch = Path(tempfile.mkdtemp(prefix="mwaa-elt-athena-"))
        con = connect(threads=1)
        try:
            yield con, scratch
        finally:
            con.close()
            shutil.rmtree(scratch, ignore_errors=True)

    def _result_table(self, con: Any, scratch: Path, query: exp.Expression, database: str) -> None:
        """`query`'s rows as the table `__result`; its errors surface before anything is written."""
        self._load_tables(con, scratch, query, database)
        self._run(con, query).fetchall()
        con.execute(f"CREATE TABLE __result AS {translate(query)}")

    def _load_tables(self, con: Any, scratch: Path, query: exp.Expression, database: str) -> None:
        """Create every table the query reads as a DuckDB table holding the files' rows."""
        ctes = {cte.alias_or_name.lower() for cte in query.find_all(exp.CTE)}
        loaded: set[tuple[str, str]] = set()
        for table in query.find_all(exp.Table):
            if not table.name or (not table.db and table.name.lower() in ctes):
                continue
            key = self._qualified(table, database)
            if key in loaded:
                continue
            loaded.add(key)
            self._load_table(con, scratch, key, self._glue_table(table, database))

    def _load_table(
        self, con: Any, scratch: Path, key: tuple[str, str], table: dict[str, Any]
    ) -> None:
        db, name = key
        descriptor = table.get("StorageDescriptor", {})
        columns = [(c["Name"].lower(), c["Type"]) for c in descriptor.get("Columns", [])]
        partitions = [(c["Name"].lower(), c["Type"]) for c in table.get("PartitionKeys", [])]
        location = descriptor.get("Location") or ""
        folder = scratch / db / name
        paths = []
        for bucket, object_key in _data_files(self.storage, location):
            relative = object_key[len(split_s3_uri(location)[1]) :].lstrip("/")
            path = folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(self.storage.read(bucket, object_key) or b"")
            paths.append(path.as_posix())
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{db}"')
        all_columns = columns + partitions
        typed = ", ".join(f'"{c}" {duckdb_type(t)}' for c, t in all_columns)
        if not paths:
            con.execute(f'CREATE TABLE "{db}"."{name}" ({typed})')
            return
        source = self._reader(descriptor, table.get("Parameters", {}), paths, columns, partitions)
        select = ", ".join(f'TRY_CAST("{c}" AS {duckdb_type(t)}) AS "{c}"' for c, t in all_columns)
        con.execute(f'CREATE TABLE "{db}"."{name}" AS SELECT {select} FROM {source}')

    @staticmethod
    def _reader(
        descriptor: dict[str, Any],
        parameters: dict[str, str],
        paths: list[str],
        columns: list[tuple[str, str]],
        partitions: list[tuple[str, str]],
    ) -> str:
        """A DuckDB table function reading a table's files as its SerDe would."""
        serde = descriptor.get("SerdeInfo", {})
        library = serde.get("SerializationLibrary") or LAZY_SERDE
        params = serde.get("Parameters") or {}
        files = "[" + ", ".join(_sql_string(p) for p in paths) + "]"
        hive = ", hive_partitioning = true" if partitions else ""
        if library == PARQUET_SERDE:
            return f"read_parquet({files}, union_by_name = true{hive})"
        if library in JSON_SERDES:
            return f"read_json({files}, format = 'newline_delimited'{hive})"
        if library not in (LAZY_SERDE, OPEN_CSV_SERDE):
            raise AthenaError(
                "NOT_SUPPORTED", f"the local run cannot read tables with the SerDe {library}"
            )
        # Text is read as strings and cast per column, so a bad value becomes NULL as in Athena.
        names = "{" + ", ".join(f"{_sql_string(c)}: 'VARCHAR'" for c, _ in columns) + "}"
        skip = int(parameters.get("skip.header.line.count", "0") or 0)
        if library == OPEN_CSV_SERDE:
            delim = _sql_string(params.get("separatorChar", ","))
            quote = _sql_string(params.get("quoteChar", '"'))
            escape = _sql_string(params.get("escapeChar", "\\"))
            options = f"delim = {delim}, quote = {quote}, escape = {escape}"
        else:  # LazySimpleSerDe: no quoting, \N is null
            delim = _sql_string(params.get("field.delim", "\x01"))
            options = f"delim = {delim}, quote = '', escape = '', nullstr = '\\N'"
        return (
            f"read_csv({files}, columns = {names}, {options}, header = false, skip = {skip}, "
            f"null_padding = true{hive})"
        )

    def _run(self, con: Any, query: exp.Expression) -> Any:
        """Translate an Athena query to DuckDB and run it; engine errors in Athena's words."""
        import duckdb

        sql = translate(query)
        try:
            return con.execute(sql)
        except duckdb.BinderException as error:
            text = str(error)
            code = "COLUMN_NOT_FOUND" if "not found" in text.lower() else "TYPE_MISMATCH"
            if "no function matches" in text.lower() or "cannot compare" in text.lower():
                code = "TYPE_MISMATCH"
            raise AthenaError(code, text) from None
        except duckdb.ConversionException as error:
            raise AthenaError("INVALID_CAST_ARGUMENT", str(error)) from None
        except duckdb.CatalogException as error:
            raise AthenaError("TABLE_NOT_FOUND", str(error)) from None
        except duckdb.ParserException as error:
            raise AthenaError(
                "SYNTAX_ERROR", f"{error} (in the DuckDB translation: {sql})"
            ) from None
        except duckdb.Error as error:
            raise AthenaError("GENERIC_INTERNAL_ERROR", str(error)) from None

    # -- statements --------------------------------------------------------------------------

    def _select(self, query: exp.Expression, database: str) -> Outcome:
        query = _athena_column_names(query)
        with self._engine() as (con, scratch):
            self._load_tables(con, scratch, query, database)
            cursor = self._run(con, query)
            names = [d[0] for d in cursor.description]
            types = [athena_type(str(d[1])) for d in cursor.description]
            rows = tuple(tuple(athena_text(v) for v in row) for row in cursor.fetchall())
        return Outcome(columns=tuple(zip(names, types, strict=True)), rows=rows)

    def _create_database(self, statement: exp.Create) -> Outcome:
        name = statement.this.name.lower()
        if self.catalog.has_database(name):
            if statement.args.get("exists"):
                return Outcome()
            raise AthenaError("ALREADY_EXISTS", f"Database {name} already exists")
        self.catalog.create_database(name, _properties(statement).get("location"))
        return Outcome()

    def _drop_database(self, statement: exp.Drop) -> Outcome:
        name = (statement.args.get("tables") or [statement.this])[0].name.lower()
        if not self.catalog.has_database(name):
            if statement.args.get("exists"):
                return Outcome()
            raise AthenaError("SCHEMA_NOT_FOUND", f"Database does not exist: {name}")
        if self.catalog.table_names(name) and not statement.args.get("cascade"):
            raise AthenaError(
                "SCHEMA_NOT_EMPTY", f"Database {name} is not empty. One or more tables exist."
            )
        self.catalog.drop_database(name)
        return Outcome()

    def _drop_table(self, statement: exp.Drop, database: str) -> Outcome:
        for table in statement.args.get("tables") or [statement.this]:
            db, name = self._qualified(table, database)
            if self.catalog.table(db, name) is None:
                if statement.args.get("exists"):
                    continue
                raise AthenaError("TABLE_NOT_FOUND", f"Table not found {db}.{name}")
            # Like Athena, dropping an external table leaves its files in S3.
            self.catalog.drop_table(db, name)
        return Outcome()

    def _create_table(self, statement: exp.Create, database: str) -> Outcome:
        schema = statement.this
        table = schema.this if isinstance(schema, exp.Schema) else schema
        db, name = self._qualified(table, database)
        if not self.catalog.has_database(db):
            raise AthenaError("SCHEMA_NOT_FOUND", f"Schema '{db}' does not exist")
        if self.catalog.table(db, name) is not None:
            if statement.args.get("exists"):
                return Outcome()
            raise AthenaError("ALREADY_EXISTS", f"Table {db}.{name} already exists")
        props = _properties(statement)
        if not props.get("external") and props.get("format", "") not in ("ICEBERG",):
            props.setdefault("external", True)  # Athena wants EXTERNAL; Hive tables are external
        if not props.get("location"):
            raise AthenaError(
                "INVALID_INPUT", "CREATE EXTERNAL TABLE needs a LOCATION 's3://bucket/folder/'"
            )
        columns = [
            {"Name": c.name.lower(), "Type": c.args["kind"].sql(dialect="hive").lower()}
            for c in (schema.expressions if isinstance(schema, exp.Schema) else [])
            if isinstance(c, exp.ColumnDef)
        ]
        partitions = []
        partitioned = props.get("partitioned_by")
        if isinstance(partitioned, exp.Schema):
            partitions = [
                {"Name": c.name.lower(), "Type": c.args["kind"].sql(dialect="hive").lower()}
                for c in partitioned.expressions
                if isinstance(c, exp.ColumnDef)
            ]
        file_format = props.get("format") or "TEXTFILE"
        serde = props.get("serde") or (PARQUET_SERDE if file_format == "PARQUET" else LAZY_SERDE)
        parameters = {
            k: str(v)
            for k, v in props.items()
            if "." in k and isinstance(v, str)  # TBLPROPERTIES such as skip.header.line.count
        }
        self.catalog.create_table(
            db,
            _table_input(
                name,
                columns,
                partitions,
                props["location"],
                file_format,
                serde,
                props.get("serde_params") or {},
                parameters,
            ),
        )
        return Outcome()

    def _ctas(
        self, statement: exp.Create, database: str, execution_id: str, results_uri: str
    ) -> Outcome:
        target = statement.this
        db, name = self._qualified(target, database)
        if not self.catalog.has_database(db):
            raise AthenaError(
                "SCHEMA_NOT_FOUND", f"{_position(target)}Schema '{db}' does not exist"
            )
        if self.catalog.table(db, name) is not None:
            if statement.args.get("exists"):
                return Outcome(rows_written=0)
            raise AthenaError(
                "ALREADY_EXISTS",
                f"{_position(target)}Table '{DEFAULT_CATALOG}.{db}.{name}' already exists",
            )
        props = _properties(statement)
        location = props.get("external_location") or f"{results_uri}tables/{execution_id}/"
        location = location if location.endswith("/") else location + "/"
        self._require_empty(location, f"Target directory for table '{db}.{name}'")
        file_format = (props.get("format") or "PARQUET").upper()
        partition_names = [p.lower() for p in props.get("partitioned_by") or []]
        with self._engine() as (con, scratch):
            self._result_table(con, scratch, statement.expression, database)
            described = con.execute("DESCRIBE __result").fetchall()
            written = self._write(
                con,
                scratch,
                "__result",
                location,
                file_format,
                execution_id,
                props.get("field_delimiter"),
                props.get("write_compression"),
                partition_names,
            )
        columns = [{"Name": n.lower(), "Type": hive_type(t)} for n, t, *_ in described]
        partitions = [c for c in columns if c["Name"] in partition_names]
        columns = [c for c in columns if c["Name"] not in partition_names]
        serde = PARQUET_SERDE if file_format == "PARQUET" else LAZY_SERDE
        params = (
            {"field.delim": props.get("field_delimiter") or "\x01"} if serde == LAZY_SERDE else {}
        )
        self.catalog.create_table(
            db, _table_input(name, columns, partitions, location, file_format, serde, params, {})
        )
        return Outcome(rows_written=written, written_to=location)

    def _insert(self, statement: exp.Insert, database: str, execution_id: str) -> Outcome:
        target = statement.this
        listed: list[str] = []
        if isinstance(target, exp.Schema):
            listed = [c.name.lower() for c in target.expressions]
            target = target.this
        table = self._glue_table(target, database)
        db, name = self._qualified(target, database)
        descriptor = table["StorageDescriptor"]
        columns = [(c["Name"].lower(), c["Type"]) for c in descriptor.get("Columns", [])]
        partitions = [(c["Name"].lower(), c["Type"]) for c in table.get("PartitionKeys", [])]
        all_columns = columns + partitions
        for column in listed:
            if column not in dict(all_columns):
                raise AthenaError(
                    "COLUMN_NOT_FOUND",
                    f"Insert column name does not exist in target table: {column}",
                )
        with self._engine() as (con, scratch):
            self._load_tables(con, scratch, statement.expression, database)
            cursor = self._run(con, statement.expression)
            produced = [str(d[1]) for d in cursor.description]
            wanted = [c for c in all_columns if not listed or c[0] in listed]
            if listed:
                wanted = [(c, dict(all_columns)[c]) for c in listed]
            if len(produced) != len(wanted):
                raise AthenaError(
                    "TYPE_MISMATCH",
                    f"Insert query has mismatched column sizes: Table: [{len(wanted)}], "
                    f"Query: [{len(produced)}]",
                )
            con.execute(f"CREATE TABLE __query AS {translate(statement.expression)}")
            query_names = [r[0] for r in con.execute("DESCRIBE __query").fetchall()]
            by_name = dict(zip([c for c, _ in wanted], query_names, strict=True))
            select = ", ".join(
                f'CAST("{by_name[c]}" AS {duckdb_type(t)}) AS "{c}"'
                if c in by_name
                else f'CAST(NULL AS {duckdb_type(t)}) AS "{c}"'
                for c, t in all_columns
            )
            try:
                con.execute(f"CREATE TABLE __result AS SELECT {select} FROM __query")
            except Exception as error:
                table_types = ", ".join(t for _, t in wanted)
                query_types = ", ".join(hive_type(t) for t in produced)
                raise AthenaError(
                    "TYPE_MISMATCH",
                    f"Insert query has mismatched column types: Table: [{table_types}], "
                    f"Query: [{query_types}] ({error})",
                ) from None
            serde = descriptor.get("SerdeInfo", {})
            file_format = (
                "PARQUET"
                if serde.get("SerializationLibrary") == PARQUET_SERDE
                else (
                    "TEXTFILE"
                    if serde.get("SerializationLibrary", LAZY_SERDE) == LAZY_SERDE
                    else ""
                )
            )
            if not file_format:
                raise AthenaError(
                    "NOT_SUPPORTED",
                    f"the local run cannot write into {db}.{name} (SerDe "
                    f"{serde.get('SerializationLibrary')})",
                )
            delimiter = (serde.get("Parameters") or {}).get("field.delim", "\x01")
            location = descriptor["Location"]
            written = self._write(
                con,
                scratch,
                "__result",
                location if location.endswith("/") else location + "/",
                file_format,
                execution_id,
                delimiter,
                "NONE" if file_format == "TEXTFILE" else None,
                [c for c, _ in partitions],
            )
        return Outcome(rows_written=written, written_to=descriptor["Location"])

    def _unload(self, match: re.Match[str], database: str, execution_id: str) -> Outcome:
        query = self._parse(match.group("query"))
        if not isinstance(query, exp.Query):
            raise AthenaError("SYNTAX_ERROR", "UNLOAD takes a SELECT in parentheses")
        props: dict[str, Any] = {}
        for key, value, array in _WITH_PROPERTY.findall(match.group("with") or ""):
            props[key.lower()] = (
                [v.strip().strip("'").lower() for v in array.split(",")] if array else value
            )
        location = match.group("to")
        location = location if location.endswith("/") else location + "/"
        self._require_empty(location, "UNLOAD destination")
        file_format = (props.get("format") or "PARQUET").upper()
        with self._engine() as (con, scratch):
            self._result_table(con, scratch, query, database)
            written = self._write(
                con,
                scratch,
                "__result",
                location,
                file_format,
                execution_id,
                props.get("field_delimiter"),
                props.get("compression"),
                props.get("partitioned_by") or [],
            )
        return Outcome(rows_written=written, written_to=location)

    # -- writing ------------------------------------------------------------------------------

    def _require_empty(self, location: str, what: str) -> None:
        if _data_files(self.storage, location):
            raise AthenaError("HIVE_PATH_ALREADY_EXISTS", f"{what} already exists: {location}")

    def _write(
        self,
        con: Any,
        scratch: Path,
        table: str,
        location: str,
        file_format: str,
        execution_id: str,
        delimiter: str | None,
        compression: str | None,
        partitions: list[str],
    ) -> int:
        """Write a DuckDB table's rows as files under `location` in S3; the row count."""
        count = int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        if file_format not in ("PARQUET", "TEXTFILE", "JSON"):
            raise AthenaError("NOT_SUPPORTED", f"the local run cannot write {file_format} files")
        out = scratch / "__out"
        out.mkdir()
        groups: list[tuple[str, str]] = [("", f"SELECT * FROM {table}")]
        if partitions:
            keys = ", ".join(f'"{p}"' for p in partitions)
            values = con.execute(f"SELECT DISTINCT {keys} FROM {table} ORDER BY {keys}").fetchall()
            rest = [
                r[0] for r in con.execute(f"DESCRIBE {table}").fetchall() if r[0] not in partitions
            ]
            picked = ", ".join(f'"{c}"' for c in rest)
            groups = []
            for row in values:
                folder = "/".join(f"{p}={v}" for p, v in zip(partitions, row, strict=True)) + "/"
                where = " AND ".join(
                    f'"{p}" IS NULL' if v is None else f'"{p}" = {_sql_string(str(v))}'
                    for p, v in zip(partitions, row, strict=True)
                )
                groups.append((folder, f"SELECT {picked} FROM {table} WHERE {where}"))
        bucket, prefix = split_s3_uri(location)
        gzip_text = file_format != "PARQUET" and (compression or "GZIP").upper() == "GZIP"
        for index, (folder, select) in enumerate(groups):
            path = out / f"part-{index}"
            if file_format == "PARQUET":
                con.execute(f"COPY ({select}) TO {_sql_string(path.as_posix())} (FORMAT PARQUET)")
                data = path.read_bytes()
                suffix = ".parquet"
            elif file_format == "JSON":
                con.execute(f"COPY ({select}) TO {_sql_string(path.as_posix())} (FORMAT JSON)")
                data = path.read_bytes()
                suffix = ".json"
            else:
                data = _text_rows(con.execute(select).fetchall(), delimiter or "\x01")
                suffix = ""
            if gzip_text:
                data, suffix = gzip.compress(data, mtime=0), suffix + ".gz"
            key = f"{prefix}{folder}{execution_id}_{index:05d}{suffix}"
            self.storage.write(bucket, key, data)
        return count


def _athena_column_names(query: exp.Expression) -> exp.Expression:
    """Name unnamed result columns `_col0`, `_col1`… as Athena does (DuckDB would spell them)."""
    if not isinstance(query, exp.Select):
        return query
    query = query.copy()
    for index, column in enumerate(query.expressions):
        if not isinstance(column, exp.Alias | exp.Column | exp.Star):
            column.replace(exp.alias_(column.copy(), f"_col{index}"))
    return query


def _text_rows(rows: list[tuple[Any, ...]], delimiter: str) -> bytes:
    """Rows as Hive text: one line per row, `\\N` for null, no quoting (LazySimpleSerDe)."""
    buffer = io.StringIO()
    for row in rows:
        cells = ["\\N" if v is None else athena_text(v) or "" for v in row]
        buffer.write(delimiter.join(cells) + "\n")
    return buffer.getvalue().encode("utf-8")


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _table_input(
    name: str,
    columns: list[dict[str, str]],
    partitions: list[dict[str, str]],
    location: str,
    file_format: str,
    serde: str,
    serde_params: dict[str, Any],
    parameters: dict[str, str],
) -> dict[str, Any]:
    """A Glue TableInput as Athena writes one for an external table."""
    return {
        "Name": name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"EXTERNAL": "TRUE", "classification": file_format.lower(), **parameters},
        "PartitionKeys": partitions,
        "StorageDescriptor": {
            "Columns": columns,
            "Location": location,
            "InputFormat": INPUT_FORMATS.get(file_format, INPUT_FORMATS["TEXTFILE"]),
            "SerdeInfo": {
                "SerializationLibrary": serde,
                "Parameters": {str(k): str(v) for k, v in serde_params.items()},
            },
        },
    }


def translate(query: exp.Expression) -> str:
    """Athena (Trino) SQL as DuckDB SQL, through the project's shared translation."""
    from mwaa_elt.duckdb_athena import TranslationError, translate_query

    if isinstance(query, exp.Values):  # INSERT ... VALUES: literal rows, nothing to rewrite
        return query.sql(dialect=DUCKDB)
    try:
        return translate_query(query.sql(dialect=ATHENA))
    except TranslationError as error:
        raise AthenaError("NOT_SUPPORTED", f"the local run cannot translate {error}") from None


# -- EMR steps ----------------------------------------------------------------------------------


_SPARK_OPTIONS_WITHOUT_VALUE = {"--verbose", "--supervise", "--version", "--help"}


def check_step(args: list[str], jar: str, storage: Storage) -> tuple[str | None, str | None]:
    """(script, failure reason or None) for an EMR step, judged without running it."""
    if jar.startswith("s3://"):
        bucket, key = split_s3_uri(jar)
        return jar, None if storage.read(bucket, key) is not None else f"jar {jar} does not exist"
    if not args:
        return None, "the step has no arguments"
    if args[0] == "hive-script":
        script = next((args[i + 1] for i, a in enumerate(args[:-1]) if a == "-f"), None)
        if script is None:
            return None, "hive-script without -f <script>"
        passed = {
            args[i + 1].split("=", 1)[0]
            for i, a in enumerate(args[:-1])
            if a in ("-d", "--define", "--hivevar")
        }
        text, reason = _script_text(script, storage)
        if text is None:
            return script, reason
        used = sorted(set(HIVE_VARIABLE.findall(text)))
        missing = [v for v in used if v not in passed]
        if missing:
            names = ", ".join(missing)
            return script, (
                f"Hive variables used by {script} but not passed with -d: {names}; "
                f"add them to the task's args"
            )
        return script, None
    if args[0] == "spark-submit":
        rest = args[1:]
        index = 0
        while index < len(rest) and rest[index].startswith("--"):
            index += 1 if rest[index] in _SPARK_OPTIONS_WITHOUT_VALUE else 2
        if index >= len(rest):
            return None, "spark-submit without an application"
        script = rest[index]
        if not script.startswith("s3://"):
            return script, None  # a local path on the cluster: not in the sandbox to check
        text, reason = _script_text(script, storage)
        if text is None or not script.endswith(".py"):
            return script, reason
        try:
            compile(text, script, "exec")
        except SyntaxError as error:
            return script, f"{script}, line {error.lineno}: SyntaxError: {error.msg}"
        return script, None
    return None, None  # another command-runner command: nothing the sandbox can check


def _script_text(uri: str, storage: Storage) -> tuple[str | None, str | None]:
    if not uri.startswith("s3://"):
        return None, f"{uri} is not an s3:// location"
    bucket, key = split_s3_uri(uri)
    data = storage.read(bucket, key)
    if data is None:
        return None, f"script {uri} does not exist"
    return data.decode("utf-8", errors="replace"), None


# -- the overrides ------------------------------------------------------------------------------

_LOCK = threading.RLock()
_ORIGINALS: dict[str, Any] = {}


def _start_query_execution(
    self: Any, query: str, context: Any, config: Any, workgroup: str, execution_parameters: Any
) -> str:
    execution_id = _ORIGINALS["start_query_execution"](
        self, query, context, config, workgroup, execution_parameters
    )
    execution = self.executions[execution_id]
    database = ((context or {}).get("Database") or "default").lower()
    output = (config or {}).get("OutputLocation") or ""
    results_uri = output.rsplit("/", 1)[0] + "/" if output else ""
    started = time.monotonic()
    record = QueryRecord(execution_id, query, database, "RUNNING")
    with _LOCK:
        try:
            outcome = AthenaOnDuckDB(self.account_id, self.region_name).execute(
                query, database, execution_id, results_uri
            )
        except AthenaError as error:
            record.state, record.reason = "FAILED", str(error)
        except Exception as error:  # an emulation gap must fail the query, not the server
            record.state, record.reason = "FAILED", f"GENERIC_INTERNAL_ERROR: {error}"
        else:
            record.state = "SUCCEEDED"
            record.rows_written, record.written_to = outcome.rows_written, outcome.written_to
            if outcome.columns:
                record.rows_returned = len(outcome.rows)
                self.query_results[execution_id] = _results(outcome)
                self._store_query_result_in_s3(execution_id)
    record.seconds = time.monotonic() - started
    execution.status = record.state
    execution.state_change_reason = record.reason
    execution.end_time = time.time()
    with JOURNAL.lock:
        JOURNAL.queries.append(record)
    return execution_id


def _results(outcome: Outcome) -> Any:
    from moto.athena.models import QueryResults

    header = [{"Data": [{"VarCharValue": name} for name, _ in outcome.columns]}]
    rows = [
        {"Data": [{} if v is None else {"VarCharValue": v} for v in row]} for row in outcome.rows
    ]
    info = [
        {
            "CatalogName": "hive",
            "SchemaName": "",
            "TableName": "",
            "Name": name,
            "Label": name,
            "Type": kind,
            "Precision": 0,
            "Scale": 0,
            "Nullable": "UNKNOWN",
            "CaseSensitive": False,
        }
        for name, kind in outcome.columns
    ]
    return QueryResults(rows=header + rows, column_info=info)


def _get_query_execution(self: Any) -> str:
    import json

    body = _ORIGINALS["get_query_execution"](self)
    execution = self.athena_backend.executions.get(self._get_param("QueryExecutionId"))
    reason = getattr(execution, "state_change_reason", None)
    if not reason:
        return body
    data = json.loads(body)
    data["QueryExecution"]["Status"]["StateChangeReason"] = reason
    data["QueryExecution"]["Status"]["AthenaError"] = {
        "ErrorCategory": 2,  # a user error, as Athena classifies SQL mistakes
        "ErrorType": 1006,
        "Retryable": False,
        "ErrorMessage": reason,
    }
    return json.dumps(data)


def _add_job_flow_steps(self: Any, job_flow_id: str, steps: list[dict[str, Any]]) -> list[Any]:
    from moto.core.utils import utcnow

    added = _ORIGINALS["add_job_flow_steps"](self, job_flow_id, steps)
    storage = Storage(self.account_id)
    for step in added:
        script, reason = check_step([str(a) for a in step.args], step.jar, storage)
        step.state = "FAILED" if reason else "COMPLETED"
        step.last_state_change_reason = reason
        step.start_date_time = step.end_date_time = utcnow()
        with JOURNAL.lock:
            JOURNAL.steps.append(
                StepRecord(job_flow_id, step.id, step.name, step.state, reason, script)
            )
    cluster = self.clusters[job_flow_id]
    if cluster.state == "RUNNING":
        cluster.state = "WAITING"  # a cluster kept alive waits for the next step
    return added


@contextmanager
def installed() -> Iterator[Journal]:
    """Install the Athena and EMR overrides in moto for the `with` block; yields the journal."""
    from moto.athena.models import AthenaBackend
    from moto.athena.responses import AthenaResponse
    from moto.emr.models import ElasticMapReduceBackend

    targets = [
        (AthenaBackend, "start_query_execution", _start_query_execution),
        (AthenaResponse, "get_query_execution", _get_query_execution),
        (ElasticMapReduceBackend, "add_job_flow_steps", _add_job_flow_steps),
    ]
    with _LOCK:
        if _ORIGINALS:
            raise RuntimeError("the local-run emulation is already installed")
        for owner, name, replacement in targets:
            _ORIGINALS[name] = getattr(owner, name)
            setattr(owner, name, replacement)
    JOURNAL.clear()
    try:
        yield JOURNAL
    finally:
        with _LOCK:
            for owner, name, _ in targets:
                setattr(owner, name, _ORIGINALS.pop(name))
