"""Validation that reads SQL for its meaning: full parsing, catalog, S3 locations, templates,
check shape and re-runs (issue 9, items 1-8). The broken-pipeline corpus covers the end-to-end
refusals; these tests pin the rules' edges."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from airflow_lines import python_of_line

from mwaa_elt.spec import validate_paths
from mwaa_elt.spec.analysis import unchecked_sql
from mwaa_elt.spec.s3_locations import clear_location, location_problems, overlaps
from mwaa_elt.spec.sql_parse import parse
from mwaa_elt.spec.templates import CONTEXT, computed_name_problems, template_problems
from mwaa_elt.stage import Stage

Check = Callable[..., list[tuple[int, int, str]]]

HEAD = """\
pipeline: demo
description: A demo pipeline.
owner: analytics
schedule: "0 6 * * *"
start_date: 2024-01-01
sources:
  - table: movielens.ratings
    columns: [userid, movieid, rating]
tasks:
"""


def spec(tasks: str, head: str = HEAD) -> str:
    return head + tasks


# -- 1. parsing --------------------------------------------------------------------------------


def test_ctas_body_is_parsed_and_the_error_is_at_the_misspelt_keyword() -> None:
    sql = (
        "CREATE TABLE {{ db.analytics }}.t\n"
        "WITH (format = 'PARQUET', external_location = '{{ lake.uri }}t/') AS\n"
        "SELECT movieid FROM {{ db.movielens }}.ratings AS r\n"
        "GROPU BY movieid\n"
    )
    (problem,) = parse(sql).problems
    assert (problem.line, problem.col) == (4, 1)
    assert "did you mean GROUP instead of 'GROPU'" in problem.message


def test_an_error_at_a_template_quotes_the_template_never_the_placeholder() -> None:
    (problem,) = parse("SELECT x FROM {{ db.analytics }}.t WHERE {{ ds }} {{ ds }}").problems
    assert "j_" not in problem.message and "j0" not in problem.message
    assert "'{{ ds }}'" in problem.message


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT a,\n  b,\nFROM x.t", (2, 4, "trailing comma before FROM")),
        ("SELECT *\nFROM x.t\nJOIN x.u\nWHERE 1 = 1", (3, 1, "JOIN without ON")),
        ("SELECT * FROM x.t GROUP BY a,", (1, 29, "trailing comma at the end")),
    ],
)
def test_what_sqlglot_forgives_but_athena_refuses(sql: str, expected: tuple) -> None:
    (problem,) = parse(sql).problems
    assert (problem.line, problem.col) == expected[:2]
    assert expected[2] in problem.message


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM x.t CROSS JOIN UNNEST(a) AS u(v)",
        "SELECT * FROM x.t LEFT JOIN x.u USING (k)",
        "SELECT * FROM x.t, x.u",
        "SELECT * FROM x.t JOIN x.u ON (t.k = u.k)",
        "MSCK REPAIR TABLE x.t",
        "UNLOAD (SELECT 1 AS a) TO 's3://b/p/' WITH (format = 'TEXTFILE')",
    ],
)
def test_valid_athena_sql_parses_without_problems(sql: str) -> None:
    assert parse(sql).problems == ()


def test_skip_sql_checks_is_a_warning_not_a_silent_pass(
    write_spec: Callable[..., Path], stages: dict[str, Stage]
) -> None:
    path = write_spec(
        spec(
            "  - id: odd\n"
            "    athena:\n"
            "      sql: SELEKT whatever the parser cannot read\n"
            "      skip_sql_checks: Athena-only syntax the parser lacks\n"
        )
    )
    report = validate_paths([path], stages)
    assert report.ok, report.problems
    (warning,) = report.warnings
    assert "not analysed: Athena-only syntax the parser lacks" in warning.message
    assert warning.line == 13
    # What promotion records in the stage's manifest for this pipeline.
    assert unchecked_sql(report.pipelines["demo"]) == ("odd: Athena-only syntax the parser lacks",)


# -- 2. catalog and 5. destructive statements --------------------------------------------------


def test_a_declared_source_resolves_and_its_columns_are_checked(check: Check) -> None:
    ok = "  - id: read\n    athena: {sql: 'SELECT movieid FROM {{ db.movielens }}.ratings'}\n"
    assert check(spec(ok)) == []
    bad = ok.replace("SELECT movieid", "SELECT moveid")
    ((line, col, message),) = check(spec(bad))
    assert (line, col) == (11, 27)
    assert "unknown column 'moveid'" in message and "did you mean 'movieid'" in message


def test_a_ctas_projection_gives_its_table_columns_downstream(check: Check) -> None:
    tasks = (
        "  - id: build\n"
        "    athena:\n"
        "      sql: |\n"
        "        CREATE TABLE {{ db.analytics }}.top\n"
        "        WITH (format = 'PARQUET', external_location = '{{ lake.uri }}top/')\n"
        "        AS SELECT movieid, avg(rating) AS avg_rating\n"
        "        FROM {{ db.movielens }}.ratings GROUP BY movieid\n"
        "  - id: read\n"
        "    athena: {sql: 'SELECT avg_ratin FROM {{ db.analytics }}.top'}\n"
        "    depends_on: [build]\n"
    )
    ((line, _, message),) = check(spec(tasks))
    assert line == 18 and "did you mean 'avg_rating'" in message


def test_a_table_of_another_pipeline_resolves_when_validated_together(
    write_spec: Callable[..., Path], stages: dict[str, Stage]
) -> None:
    producer = write_spec(
        spec(
            "  - id: make\n"
            "    athena: {sql: \"CREATE TABLE {{ db.analytics }}.shared WITH (format = 'PARQUET') "
            'AS SELECT 1 AS one"}\n'
        ).replace("pipeline: demo", "pipeline: producer"),
        name="producer",
    )
    consumer = write_spec(
        spec("  - id: use\n    athena: {sql: 'SELECT one FROM {{ db.analytics }}.shared'}\n"),
    )
    assert validate_paths([producer, consumer], stages).ok
    alone = validate_paths([consumer], stages).problems
    assert ["'analytics.shared' is created by no task" in p.message for p in alone] == [True]


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("DROP TABLE {{ db.movielens }}.ratings", "DROP TABLE on"),
        ("DELETE FROM {{ db.movielens }}.ratings WHERE rating < 1", "DELETE on"),
        ("INSERT OVERWRITE TABLE {{ db.movielens }}.ratings SELECT 1, 2, 3.0", "INSERT OVERWRITE"),
        ("DROP DATABASE {{ db.analytics }} CASCADE", "DROP DATABASE is refused"),
    ],
)
def test_destructive_statements_only_on_own_tables(check: Check, sql: str, fragment: str) -> None:
    messages = [m for _, _, m in check(spec(f'  - id: x\n    athena: {{sql: "{sql}"}}\n'))]
    assert any(fragment in m for m in messages), messages


# -- 3. S3 locations and 8. re-runs ------------------------------------------------------------


def test_write_locations_per_stage(stages: dict[str, Stage]) -> None:
    dev = stages["dev"]
    lake = f"s3://{dev.data_lake_bucket}/"
    assert location_problems(f"{lake}dev/t/{{{{ ds }}}}/", "write", "x", dev, stages) == []
    assert "write prefix" in location_problems(f"{lake}landing/t/", "write", "x", dev, stages)[0]
    assert "folder of its own" in location_problems(f"{lake}dev/", "write", "x", dev, stages)[0]
    assert "may read" in location_problems(f"{lake}prod/t/", "read", "x", dev, stages)[0]
    prod_source = f"s3://{stages['prod'].source_bucket}/x/"
    assert "MWAA source bucket" in location_problems(prod_source, "write", "x", dev, stages)[0]


def test_overlap_compares_the_fixed_part_of_folders() -> None:
    assert overlaps("s3://b/dev/a/", "s3://b/dev/a/{{ ds }}/")
    assert overlaps("s3://b/dev/", "s3://b/dev/a/")
    assert not overlaps("s3://b/dev/a/", "s3://b/dev/ab/")


def test_the_generator_clears_a_ctas_folder_and_a_raw_unload_target() -> None:
    ctas = (
        "CREATE TABLE x.t WITH (external_location = 's3://b/dev/t/{{ ts_nodash }}/') "
        "AS SELECT 1 AS a"
    )
    assert clear_location(ctas) == "s3://b/dev/t/{{ ts_nodash }}/"
    assert clear_location(
        "UNLOAD (SELECT 1 AS a) TO 's3://b/dev/e/' WITH (format = 'PARQUET')"
    ) == ("s3://b/dev/e/")
    assert clear_location("CREATE TABLE x.t WITH (format = 'PARQUET') AS SELECT 1 AS a") is None
    assert clear_location("SELECT 1") is None


# -- 4. computed names and 6. strict templates -------------------------------------------------


def test_names_built_by_jinja_are_checked_like_literal_ones(stages: dict[str, Stage]) -> None:
    for text in ("{{ 'prod' ~ '_analytics' }}.t", "{{ 'pr' ~ 'od' }}_analytics.t"):
        (problem,) = computed_name_problems(text, stages)
        assert "name computed as 'prod_analytics' of stage prod" in problem.message
    assert computed_name_problems("{{ 'a' * 1000000000 }}", stages) == []  # never evaluated


@pytest.mark.parametrize(
    ("text", "majors", "fragment"),
    [
        ("{{ ts_nodahs }}", {3: ["dev"]}, "did you mean 'ts_nodash'"),
        ("{{ execution_date }}", {3: ["dev"]}, "use {{ logical_date }}"),
        ("{{ database.analytics }}", {2: ["prod"]}, "{{ db.analytics }}"),
        ("{{ macros.ds_ad(ds, 1) }}", {2: ["prod"]}, "did you mean macros.ds_add"),
    ],
)
def test_strict_template_names(text: str, majors: dict, fragment: str) -> None:
    (problem,) = template_problems(text, majors, databases=("analytics",))
    assert fragment in problem.message


def test_template_names_that_exist_pass() -> None:
    text = "{% set d = ds %}{{ d }} {{ execution_date }} {{ macros.ds_add(ds, 1) }} {{ range(2) }}"
    assert template_problems(text, {2: ["prod"]}) == []


def test_logical_date_is_refused_only_where_asset_runs_lack_it() -> None:
    majors = {3: ["dev"], 2: ["staging", "prod"]}
    (problem,) = template_problems("{{ ds }}", majors, asset_stages=frozenset({"dev", "prod"}))
    assert "stage dev (Airflow 3)" in problem.message
    assert template_problems("{{ run_id }}", majors, asset_stages=frozenset({"dev"})) == []
    assert template_problems("{{ ds }}", majors) == []


@pytest.mark.parametrize("major", [2, 3])
def test_context_names_match_the_installed_airflow(major: int) -> None:
    python = python_of_line(major)
    probe = (
        "from airflow.utils.context import KNOWN_CONTEXT_KEYS as k"
        if major == 2
        else "from airflow.sdk.definitions.context import Context; k = Context.__annotations__"
    )
    out = subprocess.run(
        [str(python), "-c", f"{probe}; import json; print(json.dumps(sorted(k)))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert set(json.loads(out.stdout.strip().splitlines()[-1])) == CONTEXT[major]


# -- 7. checks ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("SELECT count(*) FROM {{ db.movielens }}.ratings", "is not a condition"),
        ("SELECT rating > 0 FROM {{ db.movielens }}.ratings", "one row"),
        ("SELECT count(*) = 0, 1 FROM {{ db.movielens }}.ratings", "one column"),
    ],
)
def test_a_check_returns_one_row_of_one_boolean(check: Check, sql: str, fragment: str) -> None:
    messages = [m for _, _, m in check(spec(f"  - id: c\n    check: {{sql: '{sql}'}}\n"))]
    assert any(fragment in m for m in messages), messages
    ok = "SELECT count_if(rating IS NULL) = 0 FROM {{ db.movielens }}.ratings"
    assert check(spec(f"  - id: c\n    check: {{sql: '{ok}'}}\n")) == []


def test_comment_markers_inside_strings_and_quoted_names_are_not_comments() -> None:
    from mwaa_elt.spec.sql_parse import parse

    assert parse("SELECT '-- not a comment /* nor this' AS v -- a comment").problems == ()
    assert parse("SELECT 'it''s -- fine' AS \"a--b\" /* a comment */").problems == ()
