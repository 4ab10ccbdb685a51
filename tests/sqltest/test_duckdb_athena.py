"""Athena SQL → DuckDB: statements become data, functions answer as on Athena, the rest is refused."""

from __future__ import annotations

import datetime as dt

import pytest

from mwaa_elt.duckdb_athena import (
    Column,
    CreateDatabase,
    CreateExternalTable,
    CreateTableAs,
    CreateView,
    DropTable,
    InsertInto,
    Query,
    RepairTable,
    SqlSyntaxError,
    TableName,
    TranslationError,
    Unload,
    connect,
    duckdb_type,
    translate,
    translate_query,
)


@pytest.fixture(scope="module")
def con():
    connection = connect()
    yield connection
    connection.close()


def answer(con, athena_sql: str):
    return con.sql(translate_query(athena_sql)).fetchall()


# -- statements as data ------------------------------------------------------------------------


def test_ctas_yields_its_select_table_and_properties():
    statement = translate(
        "CREATE TABLE analytics.scifi\n"
        "WITH (format = 'PARQUET', external_location = 's3://lake/dev/scifi/',\n"
        "      partitioned_by = ARRAY['ds'], write_compression = 'ZSTD') AS\n"
        "SELECT movieid, title, '2024-01-01' AS ds FROM movielens.movies"
    )
    assert isinstance(statement, CreateTableAs)
    assert statement.table == TableName("analytics", "scifi")
    assert statement.format == "parquet"
    assert statement.location == "s3://lake/dev/scifi/"
    assert statement.partitioned_by == ("ds",)
    assert statement.properties["write_compression"] == "ZSTD"
    assert statement.select == "SELECT movieid, title, '2024-01-01' AS ds FROM movielens.movies"


def test_ctas_without_format_is_parquet_as_on_athena():
    statement = translate("CREATE TABLE a.t AS SELECT 1 AS x")
    assert isinstance(statement, CreateTableAs)
    assert (statement.format, statement.location, statement.partitioned_by) == ("parquet", None, ())


def test_unload_yields_its_select_target_and_format():
    statement = translate(
        "UNLOAD (\nSELECT * FROM analytics.scifi ORDER BY avg_rating DESC\n)\n"
        "TO 's3://lake/dev/exports/scifi/'\n"
        "WITH (format = 'TEXTFILE', field_delimiter = '|', compression = 'NONE');"
    )
    assert isinstance(statement, Unload)
    assert statement.to == "s3://lake/dev/exports/scifi/"
    assert statement.format == "textfile"
    assert statement.field_delimiter == "|"
    assert statement.compression == "none"
    assert statement.select == "SELECT * FROM analytics.scifi ORDER BY avg_rating DESC"


def test_unload_without_to_is_a_located_syntax_error():
    with pytest.raises(SqlSyntaxError) as caught:
        translate("UNLOAD (SELECT 1)\nWITH (format = 'PARQUET')")
    assert (caught.value.line, caught.value.col) == (2, 1)
    assert "TO 's3://" in caught.value.reason


def test_unload_query_errors_point_into_the_callers_text():
    with pytest.raises(TranslationError) as caught:
        translate(
            "UNLOAD (\n  SELECT url_extract_host(u) FROM t\n) TO 's3://b/x/' WITH (format = 'JSON')"
        )
    assert (caught.value.construct, caught.value.line, caught.value.col) == (
        "url_extract_host()",
        2,
        10,
    )


def test_hive_external_csv_table_yields_columns_location_and_serde_options():
    statement = translate(
        "CREATE EXTERNAL TABLE IF NOT EXISTS movielens.movies (\n"
        "  movieid INT, title STRING, tags ARRAY<STRING>, info MAP<STRING, BIGINT>\n)\n"
        "ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.OpenCSVSerde'\n"
        "WITH SERDEPROPERTIES ('separatorChar' = ';', 'quoteChar' = '\"')\n"
        "STORED AS TEXTFILE\n"
        "LOCATION 's3://lake/landing/movielens/movies/'\n"
        "TBLPROPERTIES ('skip.header.line.count' = '1')"
    )
    assert isinstance(statement, CreateExternalTable)
    assert statement.table == TableName("movielens", "movies")
    assert statement.if_not_exists
    assert statement.columns == (
        Column("movieid", "INT", "INT"),
        Column("title", "STRING", "TEXT"),
        Column("tags", "ARRAY<STRING>", "TEXT[]"),
        Column("info", "MAP<STRING, BIGINT>", "MAP(TEXT, BIGINT)"),
    )
    assert statement.location == "s3://lake/landing/movielens/movies/"
    assert statement.format == "csv"
    assert (statement.field_delimiter, statement.quote_char) == (";", '"')
    assert statement.skip_header_lines == 1


def test_hive_delimited_table_is_textfile_without_quotes():
    statement = translate(
        "CREATE EXTERNAL TABLE m.r (userid INT, rating DOUBLE)\n"
        "ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t'\n"
        "STORED AS TEXTFILE LOCATION 's3://lake/r/'"
    )
    assert isinstance(statement, CreateExternalTable)
    assert statement.format == "textfile"
    assert statement.field_delimiter == "\t"
    assert statement.quote_char is None
    assert statement.skip_header_lines == 0


def test_hive_partitioned_parquet_and_json_tables():
    parquet = translate(
        "CREATE EXTERNAL TABLE a.p (x INT) PARTITIONED BY (ds STRING, h INT) "
        "STORED AS PARQUET LOCATION 's3://b/p/'"
    )
    assert isinstance(parquet, CreateExternalTable)
    assert parquet.format == "parquet"
    assert [c.name for c in parquet.partitioned_by] == ["ds", "h"]
    json = translate(
        "CREATE EXTERNAL TABLE a.j (x INT) "
        "ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe' LOCATION 's3://b/j/'"
    )
    assert isinstance(json, CreateExternalTable)
    assert json.format == "json"


def test_unknown_serde_is_refused_not_guessed():
    with pytest.raises(TranslationError) as caught:
        translate(
            "CREATE EXTERNAL TABLE a.t (x INT)\n"
            "ROW FORMAT SERDE 'com.example.MySerDe' LOCATION 's3://b/t/'"
        )
    assert "com.example.MySerDe" in caught.value.construct


def test_insert_into_with_columns_and_values():
    insert = translate("INSERT INTO ops.runs (pipeline, ds) VALUES ('p', '2024-01-01')")
    assert insert == InsertInto(
        TableName("ops", "runs"), ("pipeline", "ds"), "VALUES ('p', '2024-01-01')"
    )
    select = translate("INSERT INTO ops.runs SELECT 'p', current_timestamp")
    assert isinstance(select, InsertInto)
    assert select.columns == ()
    assert select.select == "SELECT 'p' AS _col0, CURRENT_TIMESTAMP AS _col1"


def test_catalog_statements():
    assert translate("CREATE DATABASE IF NOT EXISTS movielens") == CreateDatabase("movielens", True)
    assert translate("DROP TABLE IF EXISTS analytics.scifi") == DropTable(
        TableName("analytics", "scifi"), True
    )
    assert translate("MSCK REPAIR TABLE analytics.events") == RepairTable(
        TableName("analytics", "events")
    )
    view = translate("CREATE OR REPLACE VIEW a.v AS SELECT approx_distinct(x) AS n FROM a.t")
    assert view == CreateView(
        TableName("a", "v"),
        "SELECT APPROX_COUNT_DISTINCT(x) AS n FROM a.t",
        True,
        (TableName("a", "t"),),
    )


def test_table_name_quotes_for_duckdb():
    assert TableName("analytics", "scifi").duckdb == '"analytics"."scifi"'
    assert str(TableName("analytics", "scifi")) == "analytics.scifi"


def test_types():
    assert duckdb_type("array<struct<a:int,b:string>>") == "STRUCT(a INT, b TEXT)[]"
    assert duckdb_type("decimal(10,2)") == "DECIMAL(10, 2)"
    with pytest.raises(TranslationError):
        duckdb_type("not a type(")


# -- answers as on Athena ----------------------------------------------------------------------


def test_integer_division_is_integer_as_in_trino(con):
    assert answer(con, "SELECT 7 / 2, -7 / 2, 7.0 / 2, CAST(7 AS DOUBLE) / 2") == [
        (3, -3, 3.5, 3.5)
    ]


@pytest.mark.parametrize(
    ("athena", "expected"),
    [
        ("date_parse('2024-03-05 10:07', '%Y-%m-%d %H:%i')", dt.datetime(2024, 3, 5, 10, 7)),
        ("parse_datetime('05/03/2024 10:07', 'dd/MM/yyyy HH:mm')", dt.datetime(2024, 3, 5, 10, 7)),
        ("format_datetime(TIMESTAMP '2024-03-05 10:07:00', 'yyyy-MM-dd''T''HH')", "2024-03-05T10"),
        ("date_format(TIMESTAMP '2024-03-05 10:07:09', '%Y%m%d %H:%i:%s')", "20240305 10:07:09"),
        ("from_iso8601_date('2024-03-05')", dt.date(2024, 3, 5)),
        (
            "CAST(from_iso8601_timestamp('2024-03-05T10:07:00Z') AS VARCHAR)",
            "2024-03-05 10:07:00+00",
        ),
        ("approx_distinct(x)", 3),
        ("regexp_like('Sci-Fi|Drama', 'Sci-?Fi')", True),
        ("element_at(ARRAY[10, 20, 30], 2)", 20),
        ("element_at(MAP(ARRAY['a'], ARRAY[1]), 'a')", 1),
        ("count_if(x > 1)", 2),
        ("arbitrary(7)", 7),
        ("date_add('day', 3, DATE '2024-02-27')", dt.datetime(2024, 3, 1)),
        ("date_diff('day', DATE '2024-02-27', DATE '2024-03-01')", 3),
        ("cardinality(ARRAY[1, 2, 3])", 3),
        ("array_join(ARRAY['a', 'b'], ',')", "a,b"),
        ("json_extract_scalar('{\"a\": {\"b\": 5}}', '$.a.b')", "5"),
        ("regexp_extract('ratings: 42', '(\\d+)', 1)", "42"),
        ("strpos('Sci-Fi', 'Fi')", 5),
        ("split_part('a,b,c', ',', 2)", "b"),
        ("max_by(x, x)", 3),
        ("millisecond(TIMESTAMP '2024-03-05 10:07:09.123')", 123),
        ("every(x > 0)", True),
        ("if(count(*) > 2, 'many', 'few')", "many"),
        ("codepoint('A')", 65),
        ("arrays_overlap(ARRAY[1, 2], ARRAY[2, 3])", True),
        ("to_unixtime(TIMESTAMP '1970-01-02 00:00:00')", 86400.0),
        # Where DuckDB's function of the same name answers differently:
        ("date_diff('day', TIMESTAMP '2024-01-01 23:00:00', TIMESTAMP '2024-01-02 01:00:00')", 0),
        ("date_diff('hour', TIMESTAMP '2024-01-01 23:00:00', TIMESTAMP '2024-01-02 01:30:00')", 2),
        ("regexp_extract('Sci-Fi', 'Horror')", None),
        ("regexp_extract('Sci-Fi|Horror', '([A-Za-z]+)[|]([A-Za-z]+)', 2)", "Horror"),
        # A rewrite inside a rewrite: both apply.
        (
            "arrays_overlap(ARRAY[millisecond(TIMESTAMP '2024-01-01 00:00:01.250')], ARRAY[250])",
            True,
        ),
    ],
)
def test_functions_answer_as_on_athena(con, athena, expected):
    rows = answer(con, f"SELECT {athena} FROM (VALUES 1, 2, 3) AS t(x)")
    assert rows[0][0] == expected


# -- refused, with the construct and where it is -----------------------------------------------


@pytest.mark.parametrize(
    ("sql", "construct", "line", "col"),
    [
        ("SELECT\n  url_extract_host(u)\nFROM t", "url_extract_host()", 2, 3),
        ("SELECT reduce(a, 0, (s, x) -> s + x, s -> s * 2) FROM t", "reduce()", 1, 8),
        ("SELECT format_datetime(ts, 'xxxx') FROM t", "'xxxx'", 1, 28),
        ("SELECT date_format(ts, fmt) FROM t", "date_format()", 1, 8),
        ('SELECT "$path" FROM t', '"$path"', 1, 8),
        ("SELECT 1;\nSELECT 2", "statements", 1, 1),
        ("MSCK REPAIR something else", "MSCK REPAIR", 1, 1),
        ("INSERT OVERWRITE TABLE a.t SELECT 1", "INSERT OVERWRITE", 1, 1),
    ],
)
def test_untranslatable_constructs_are_refused_with_their_place(sql, construct, line, col):
    with pytest.raises(TranslationError) as caught:
        translate(sql)
    error = caught.value
    assert (error.construct, error.line, error.col) == (construct, line, col)
    assert str(error).startswith(f"{line}:{col}: {construct}: ")


def test_syntax_error_points_at_the_offending_token():
    with pytest.raises(SqlSyntaxError) as caught:
        translate("\n\nSELECT a,\nFROM WHERE")
    assert caught.value.line == 4
    assert "'WHERE'" in caught.value.reason


def test_translate_query_refuses_other_statements():
    with pytest.raises(TranslationError, match="expected a query"):
        translate_query("DROP TABLE a.b")
    assert isinstance(translate("WITH x AS (SELECT 1 AS a) SELECT a FROM x"), Query)


def test_unnamed_result_columns_are_named_as_athena_names_them(con):
    sql = translate_query("SELECT x = 0, x, x + 1 AS y, 2 * x FROM (VALUES 1) AS t(x)")
    assert [d[0] for d in con.sql(sql).description] == ["_col0", "x", "y", "_col3"]


def test_unload_without_format_is_refused():
    with pytest.raises(SqlSyntaxError, match="format"):
        translate("UNLOAD (SELECT 1) TO 's3://b/x/'")


def test_statements_name_the_tables_their_query_reads():
    query = translate(
        "WITH recent AS (SELECT * FROM movielens.ratings)\n"
        "SELECT * FROM recent JOIN movielens.movies USING (movieid)\n"
        "WHERE movieid IN (SELECT movieid FROM analytics.top)"
    )
    assert query.reads == (
        TableName("movielens", "ratings"),
        TableName("movielens", "movies"),
        TableName("analytics", "top"),
    )
    ctas = translate("CREATE TABLE a.t AS SELECT * FROM b.u")
    assert ctas.reads == (TableName("b", "u"),)
    unload = translate("UNLOAD (SELECT * FROM b.u) TO 's3://x/y/' WITH (format = 'JSON')")
    assert unload.reads == (TableName("b", "u"),)


def test_unload_after_comments_is_still_an_unload():
    statement = translate(
        "-- the export (for data scientists)\n/* csv */\nUNLOAD (SELECT 1 AS x)\n"
        "TO 's3://b/x/' WITH (format = 'TEXTFILE')"
    )
    assert isinstance(statement, Unload)
    assert statement.select == "SELECT 1 AS x"


def test_division_by_zero_fails_as_on_athena_instead_of_answering_null(con):
    import duckdb

    assert answer(con, "SELECT x / y FROM (VALUES (7, 2)) AS t(x, y)") == [(3,)]
    with pytest.raises(duckdb.Error, match="Division by zero"):
        answer(con, "SELECT x / y FROM (VALUES (7, 0)) AS t(x, y)")
