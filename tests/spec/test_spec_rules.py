"""One test per validation rule: the exact message, at the line (and column) of the offending key."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from mwaa_elt.spec import validate_paths
from mwaa_elt.stage import Stage

Check = Callable[..., list[tuple[int, int, str]]]


def edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def test_the_valid_demo_has_no_problem(check: Check) -> None:
    assert check() == []


def test_a_list_at_the_top_is_not_a_spec(check: Check) -> None:
    assert check("- pipeline: demo\n") == [
        (
            1,
            1,
            "expected a mapping of keys (pipeline:, owner:, tasks: ...), got a list; see pipelines/ for examples",
        )
    ]


def test_unknown_key_suggests_the_close_one(check: Check, valid: str) -> None:
    assert check(edit(valid, "schedule:", "shedule:")) == [
        (4, 1, "unknown key 'shedule'; did you mean 'schedule'?")
    ]


def test_unknown_key_in_a_task_suggests_the_close_one(check: Check, valid: str) -> None:
    assert check(edit(valid, "{sql_file: sql", "{sql_fil: sql")) == [
        (10, 14, "tasks[1].athena: unknown key 'sql_fil'; did you mean 'sql_file'?")
    ]


def test_missing_required_key_names_it_and_says_what_it_is(check: Check, valid: str) -> None:
    assert check(edit(valid, "owner: analytics\n", "")) == [
        (
            1,
            1,
            "missing required key 'owner' — The team that answers for this pipeline (not 'airflow').",
        )
    ]


def test_wrong_type_says_what_was_expected_and_how_to_fix(check: Check, valid: str) -> None:
    assert check(edit(valid, "owner: analytics\n", "owner: analytics\ntags: [2024]\n")) == [
        (4, 8, "tags[0]: expected text, got the number 2024; quote it: '2024'")
    ]


def test_owner_airflow_is_refused(check: Check, valid: str) -> None:
    assert check(edit(valid, "owner: analytics", "owner: airflow")) == [
        (
            3,
            1,
            "owner: 'airflow' is Airflow's placeholder owner; name the team that answers for this pipeline, e.g. analytics",
        )
    ]


@pytest.mark.parametrize("name", ["Demo", "1demo", "demo-x", "d" * 65])
def test_pipeline_name_must_be_an_identifier(check: Check, valid: str, name: str) -> None:
    problems = check(edit(valid, "pipeline: demo", f"pipeline: {name}"))
    assert (
        1,
        1,
        f"pipeline: '{name}' is not valid; use 1-64 lower-case letters, digits and '_', starting with a letter",
    ) in problems


def test_task_id_must_be_an_identifier(check: Check, valid: str) -> None:
    assert check(edit(valid, "id: first", "id: First-task").replace("[first]", "[]")) == [
        (
            7,
            5,
            "tasks[0].id: 'First-task' is not valid; use 1-64 lower-case letters, digits and '_', starting with a letter",
        )
    ]


def test_file_name_must_equal_the_pipeline(check: Check, valid: str) -> None:
    assert check(valid, name="other") == [
        (
            1,
            1,
            "pipeline: 'demo' must equal the file name 'other'; rename the file to demo.yaml or set pipeline: other",
        )
    ]


def test_a_task_has_exactly_one_kind(check: Check, valid: str) -> None:
    text = edit(
        valid,
        '    athena: {sql: "SELECT 1"}\n',
        '    athena: {sql: "SELECT 1"}\n    wait_for_s3: {key: "s3://b/k"}\n',
    )
    assert check(text) == [
        (
            7,
            5,
            "tasks[0]: task 'first' has 2 kinds (athena, wait_for_s3); give exactly one of: athena, unload, wait_for_s3, wait_for_partition, check, hive, spark, trino",
        )
    ]


def test_sql_and_sql_file_are_exclusive(check: Check, valid: str) -> None:
    assert check(
        edit(valid, '{sql: "SELECT 1"}', '{sql: "SELECT 1", sql_file: sql/second.sql}')
    ) == [(8, 5, "tasks[0].athena: gives both of sql and sql_file; give exactly one")]


def test_duplicate_task_ids(check: Check, valid: str) -> None:
    text = valid + '  - id: first\n    athena: {sql: "SELECT 2"}\n'
    assert check(text) == [
        (12, 5, "tasks[2].id: duplicate task id 'first' (first at line 7); task ids must be unique")
    ]


def test_depends_on_a_missing_task_suggests_the_close_one(check: Check, valid: str) -> None:
    assert check(edit(valid, "depends_on: [first]", "depends_on: [frist]")) == [
        (
            11,
            18,
            "tasks[1].depends_on: 'frist' is not a task of this pipeline; did you mean 'first'?",
        )
    ]


def test_a_cycle_is_named(check: Check, valid: str) -> None:
    text = edit(
        valid,
        '    athena: {sql: "SELECT 1"}\n',
        '    athena: {sql: "SELECT 1"}\n    depends_on: [second]\n',
    )
    assert check(text) == [
        (9, 5, "dependency cycle: first -> second -> first; remove one of these depends_on entries")
    ]


def test_a_task_depending_on_itself_is_a_cycle(check: Check, valid: str) -> None:
    assert check(edit(valid, "depends_on: [first]", "depends_on: [second]")) == [
        (11, 5, "dependency cycle: second -> second; remove one of these depends_on entries")
    ]


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (
            '"61 * * * *"',
            "schedule: '61 * * * *' is not a valid cron expression ([61 * * * *] is not acceptable, out of range); expected 5 fields 'minute hour day-of-month month day-of-week' such as '0 6 * * *', or a preset: @once, @hourly, @daily, @weekly, @monthly, @yearly",
        ),
        (
            '"0 6 * *"',
            "schedule: '0 6 * *' has 4 fields, not a cron expression; expected 5 fields 'minute hour day-of-month month day-of-week' such as '0 6 * * *', or a preset: @once, @hourly, @daily, @weekly, @monthly, @yearly",
        ),
        (
            '"@dialy"',
            "schedule: '@dialy' is not a schedule preset; did you mean '@daily'? allowed: @once, @hourly, @daily, @weekly, @monthly, @yearly",
        ),
        (
            "{after: [nope]}",
            "schedule.after[0]: 'nope' is not valid; write <pipeline>.<dataset>, e.g. movielens_scifi.scifi_export",
        ),
        ("5", "schedule: expected text, got the number 5; quote it: '5'"),
    ],
)
def test_bad_schedules(check: Check, valid: str, schedule: str, message: str) -> None:
    problems = check(edit(valid, 'schedule: "0 6 * * *"', f"schedule: {schedule}"))
    assert problems and problems[0][0] == 4 and problems[0][2] == message


@pytest.mark.parametrize("schedule", ["null", "none", "'@daily'", "'*/15 2-4 * * MON-FRI'"])
def test_good_schedules(check: Check, valid: str, schedule: str) -> None:
    assert check(edit(valid, 'schedule: "0 6 * * *"', f"schedule: {schedule}")) == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "2024/01/01",
            "start_date: '2024/01/01' is not a date in the form YYYY-MM-DD (ISO 8601), e.g. 2024-01-01",
        ),
        (
            "2024-13-01",
            "start_date: '2024-13-01' is not a valid date (month must be in 1..12); e.g. 2024-01-01",
        ),
        (
            "yesterday",
            "start_date: 'yesterday' is not a date in the form YYYY-MM-DD (ISO 8601), e.g. 2024-01-01",
        ),
    ],
)
def test_start_date_format(check: Check, valid: str, value: str, message: str) -> None:
    assert check(edit(valid, "start_date: 2024-01-01", f"start_date: {value}")) == [(5, 1, message)]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "5 minutes",
            "retry_delay: '5 minutes' is not a duration; write a number and a unit: 30s, 5m, 1h, 1d or a combination such as 1h30m",
        ),
        (
            "300",
            "retry_delay: '300' is not a duration; write a number and a unit: 30s, 5m, 1h, 1d or a combination such as 1h30m (e.g. 300s)",
        ),
        ("0m", "retry_delay: '0m' is zero; a duration must be positive"),
    ],
)
def test_duration_format(check: Check, valid: str, value: str, message: str) -> None:
    text = edit(
        valid, "start_date: 2024-01-01\n", f"start_date: 2024-01-01\nretry_delay: {value}\n"
    )
    assert check(text) == [(6, 1, message)]


def test_retries_must_be_at_least_one(check: Check, valid: str) -> None:
    text = edit(valid, "start_date: 2024-01-01\n", "start_date: 2024-01-01\nretries: 0\n")
    assert check(text) == [(6, 1, "retries: 0 is too small; the minimum is 1")]


def test_unknown_stage_in_overrides(check: Check, valid: str) -> None:
    text = edit(valid, "tasks:", "stages:\n  prd: {paused: true}\ntasks:")
    assert check(text) == [
        (
            7,
            3,
            "stages: 'prd' is not a stage; did you mean 'prod'? known stages: dev, staging, prod",
        )
    ]


def test_inline_sql_that_does_not_parse_points_into_the_yaml_line(check: Check, valid: str) -> None:
    assert check(edit(valid, '{sql: "SELECT 1"}', '{sql: "SELECT a FROM t WHERE"}')) == [
        (
            8,
            36,
            "tasks[0].athena.sql: SQL does not parse as Athena SQL at 'WHERE': something is missing before this point",
        )
    ]


def test_misspelt_statement_keyword_suggests_the_right_one(check: Check, valid: str) -> None:
    assert check(edit(valid, '{sql: "SELECT 1"}', '{sql: "SELEC 1"}')) == [
        (
            8,
            20,
            "tasks[0].athena.sql: 'SELEC' does not start Athena SQL; did you mean 'SELECT'?",
        )
    ]


def test_block_sql_error_maps_to_its_yaml_line_and_column(check: Check, valid: str) -> None:
    block = "    athena:\n      sql: |\n        SELECT a\n        FROM t\n        WHERE a = = 1\n"
    assert check(edit(valid, '    athena: {sql: "SELECT 1"}\n', block)) == [
        (
            12,
            19,
            "tasks[0].athena.sql: SQL does not parse as Athena SQL at '=': something is missing before this point",
        )
    ]


def test_sql_file_error_names_the_sql_file_and_its_line(
    write_spec: Callable[..., Path], stages: dict[str, Stage], valid: str
) -> None:
    path = write_spec(
        valid,
        files={
            "sql/second.sql": "-- a comment\nSELECT *\nFROM {{ db.movielens }}.t\nWHERE ds = '{{ ds }}' AND\n"
        },
    )
    problems = validate_paths([path], stages).problems
    assert [(p.path, p.line, p.col, p.message) for p in problems] == [
        (
            path.parent / "sql" / "second.sql",
            4,
            23,
            "SQL does not parse as Athena SQL at 'AND': something is missing before this point",
        )
    ]


def test_run_time_jinja_does_not_break_sql_parsing(check: Check, valid: str) -> None:
    sql = "SELECT * FROM {{ db.movielens }}.t WHERE ds = '{{ ds }}' {% if params.full %}AND x = {{ macros.ds_add(ds, 1) }}{% else %}AND y = 1{% endif %}\n"
    assert check(valid, files={"sql/second.sql": sql}) == []


def test_athena_ddl_parses(check: Check, valid: str) -> None:
    ddl = (
        "CREATE EXTERNAL TABLE IF NOT EXISTS {{ db.movielens }}.t (a INT, b STRING)\n"
        "PARTITIONED BY (ds STRING)\n"
        "ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe'\n"
        "STORED AS TEXTFILE\nLOCATION '{{ lake.bucket_uri }}landing/t/'\n"
        "TBLPROPERTIES ('skip.header.line.count' = '1')\n"
    )
    assert check(valid, files={"sql/second.sql": ddl}) == []


def test_athena_runs_one_statement_per_task(
    write_spec: Callable[..., Path], stages: dict[str, Stage], valid: str
) -> None:
    path = write_spec(valid, files={"sql/second.sql": "SELECT 1;\nSELECT 2;\n"})
    assert [(p.line, p.col, p.message) for p in validate_paths([path], stages).problems] == [
        (2, 1, "2 SQL statements; Athena runs one statement per query — put each in its own task")
    ]


def test_jinja_syntax_error_is_reported(
    write_spec: Callable[..., Path], stages: dict[str, Stage], valid: str
) -> None:
    path = write_spec(valid, files={"sql/second.sql": "SELECT 1\nWHERE ds = '{{ ds }'\n"})
    assert [(p.line, p.message) for p in validate_paths([path], stages).problems] == [
        (2, "Jinja template error: unexpected '}'")
    ]


def test_unknown_database(check: Check, valid: str) -> None:
    assert check(edit(valid, '{sql: "SELECT 1"}', '{sql: "SELECT * FROM {{ db.unknown }}.t"}')) == [
        (
            8,
            34,
            "tasks[0].athena.sql: 'unknown' is not a Glue database of any stage; known: movielens, analytics, ops",
        )
    ]


def test_unknown_stage_variable(check: Check, valid: str) -> None:
    assert check(edit(valid, '{sql: "SELECT 1"}', "{sql: \"SELECT '{{ lake.url }}'\"}")) == [
        (
            8,
            28,
            "tasks[0].athena.sql: 'lake.url' is not a stage variable; lake has: bucket, bucket_uri, uri, prefix",
        )
    ]


def test_hard_coded_database_of_a_stage(check: Check, valid: str) -> None:
    assert check(edit(valid, '{sql: "SELECT 1"}', '{sql: "SELECT * FROM prod_analytics.t"}')) == [
        (
            8,
            34,
            "tasks[0].athena.sql: hard-coded name 'prod_analytics' of stage prod; write {{ db.analytics }}",
        )
    ]


def test_hard_coded_bucket_and_prefix_in_a_sql_file(
    write_spec: Callable[..., Path], stages: dict[str, Stage], valid: str
) -> None:
    bucket = stages["dev"].data_lake_bucket
    sql = f"SELECT '{{{{ lake.bucket_uri }}}}dev/x',\n  's3://{bucket}/y'\n"
    path = write_spec(valid, files={"sql/second.sql": sql})
    assert [(p.line, p.col, p.message) for p in validate_paths([path], stages).problems] == [
        (
            1,
            30,
            "hard-coded prefix 'dev/' of stage dev; write {{ lake.uri }} instead of {{ lake.bucket_uri }}dev/",
        ),
        (
            2,
            9,
            f"hard-coded name '{bucket}' of stage dev; write {{{{ lake.uri }}}} (this stage's prefix) or {{{{ lake.bucket_uri }}}}",
        ),
    ]


def test_prefix_of_no_stage(
    write_spec: Callable[..., Path], stages: dict[str, Stage], valid: str
) -> None:
    path = write_spec(valid, files={"sql/second.sql": "SELECT '{{ lake.bucket_uri }}raw/x'\n"})
    assert [(p.line, p.col, p.message) for p in validate_paths([path], stages).problems] == [
        (
            1,
            30,
            "prefix 'raw/' of the data lake belongs to no stage; shared prefixes: landing/; a stage's own data is under {{ lake.uri }}",
        )
    ]


def test_mixing_render_time_and_run_time_in_one_expression(check: Check, valid: str) -> None:
    assert check(edit(valid, '{sql: "SELECT 1"}', '{sql: "SELECT * FROM {{ db.ops ~ ds }}"}')) == [
        (
            8,
            34,
            "tasks[0].athena.sql: '{{ db.ops ~ ds }}' mixes render-time (db) and run-time (ds) variables; split it into two {{ }}, e.g. {{ db.movielens }}.t_{{ ds_nodash }}",
        )
    ]


@pytest.mark.parametrize(
    ("file", "message"),
    [
        (
            "../other/x.sql",
            "tasks[1].athena.sql_file: '../other/x.sql' leaves the pipeline's folder; keep SQL and scripts inside {dir}/",
        ),
        (
            "/etc/x.sql",
            "tasks[1].athena.sql_file: '/etc/x.sql' is absolute; write a path relative to the spec's folder, e.g. sql/create_movies.sql",
        ),
        (
            "sql/secnd.sql",
            "tasks[1].athena.sql_file: file not found: {dir}/sql/secnd.sql; did you mean 'sql/second.sql'?",
        ),
        ("sql/second.txt", "tasks[1].athena.sql_file: 'sql/second.txt' should be a .sql file"),
    ],
)
def test_referenced_paths(
    check: Check, valid: str, tmp_path: Path, file: str, message: str
) -> None:
    assert check(edit(valid, "sql_file: sql/second.sql", f"sql_file: {file}")) == [
        (10, 14, message.format(dir=tmp_path / "demo"))
    ]


def test_symlink_out_of_the_folder_is_refused(
    check: Check, valid: str, write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    outside = tmp_path / "secret.sql"
    outside.write_text("SELECT 1\n")
    path = write_spec(valid)
    os.symlink(outside, path.parent / "sql" / "link.sql")
    assert check(edit(valid, "sql_file: sql/second.sql", "sql_file: sql/link.sql")) == [
        (
            10,
            14,
            f"tasks[1].athena.sql_file: 'sql/link.sql': sql/link.sql is a symbolic link (to {outside}); a pipeline folder holds regular files only, and mwaa-elt never follows a link; replace the link with a copy of the file, or delete it",
        )
    ]


EMR = """\
pipeline: demo
description: EMR demo.
owner: analytics
start_date: 2024-01-01
tasks:
  - id: clean
    hive: {script: scripts/clean.hql, args: {ds: "{{ ds }}"}}
  - id: agg
    spark: {script: scripts/agg.py, args: ["--ds", "{{ ds }}"]}
"""
EMR_FILES = {
    "scripts/clean.hql": "SELECT * FROM t WHERE ds = '${ds}';\n",
    "scripts/agg.py": "print('hi')\n",
}


def test_emr_pipeline_uses_stage_defaults(check: Check) -> None:
    assert check(EMR, files=EMR_FILES) == []


def test_emr_script_missing(check: Check, tmp_path: Path) -> None:
    assert check(EMR, files={"scripts/agg.py": ""}) == [
        (
            7,
            12,
            f"tasks[0].hive.script: file not found: {tmp_path / 'demo' / 'scripts' / 'clean.hql'}",
        )
    ]


def test_spark_script_must_be_python(check: Check) -> None:
    assert check(EMR.replace("scripts/agg.py", "scripts/agg.jar"), files=EMR_FILES) == [
        (9, 13, "tasks[1].spark.script: 'scripts/agg.jar' should be a .py file")
    ]


def test_trino_needs_trino_on_the_cluster(check: Check) -> None:
    text = EMR + '  - id: report\n    trino: {sql: "SELECT 1"}\n'
    problems = check(text, files=EMR_FILES)
    assert problems == [
        (
            11,
            5,
            f"tasks[2].trino: needs Trino on the cluster, but in stage {stage} the applications are Hadoop, Hive, Spark; add Trino to cluster.applications",
        )
        for stage in ("dev", "prod", "staging")  # sorted messages
    ]


def test_existing_cluster_id_format(check: Check) -> None:
    text = EMR.replace("tasks:", "cluster: {existing_cluster_id: j-abc}\ntasks:")
    assert check(text, files=EMR_FILES) == [
        (
            5,
            11,
            "cluster.existing_cluster_id: 'j-abc' is not valid; expected an EMR cluster id such as j-2AXXXXXXGAPLF",
        )
    ]


def test_existing_cluster_excludes_cluster_settings(check: Check) -> None:
    text = EMR.replace(
        "tasks:", "cluster: {existing_cluster_id: j-ABC123, core_instance_count: 3}\ntasks:"
    )
    assert check(text, files=EMR_FILES) == [
        (
            5,
            1,
            "cluster: existing_cluster_id targets a running cluster, so core_instance_count cannot apply; remove them or remove existing_cluster_id",
        )
    ]


def test_cluster_without_emr_tasks(check: Check, valid: str) -> None:
    text = edit(valid, "tasks:", "cluster: {core_instance_count: 3}\ntasks:")
    assert check(text) == [
        (6, 1, "cluster: no task runs on EMR (hive, spark, trino); remove cluster")
    ]


def test_run_time_jinja_in_a_hive_script_is_refused(
    write_spec: Callable[..., Path], stages: dict[str, Stage]
) -> None:
    files = {
        **EMR_FILES,
        "scripts/clean.hql": "SELECT 1;\nSELECT * FROM t WHERE ds = '{{ ds }}';\n",
    }
    path = write_spec(EMR, files=files)
    assert [
        (p.path.name, p.line, p.col, p.message) for p in validate_paths([path], stages).problems
    ] == [
        (
            "clean.hql",
            2,
            29,
            "'{{ ds }}' is a run-time variable, but scripts are uploaded to S3 as they are and Airflow does not render them; pass it in the task's args (hive: ${name}, spark: sys.argv)",
        )
    ]


def test_stage_override_of_cluster_is_merged_per_stage(check: Check) -> None:
    text = EMR.replace(
        "tasks:",
        "stages:\n  prod: {cluster: {existing_cluster_id: j-ABC}}\ncluster: {core_instance_count: 3}\ntasks:",
    )
    assert check(text, files=EMR_FILES) == [
        (
            6,
            10,
            "stages.prod.cluster: in stage prod existing_cluster_id targets a running cluster, so core_instance_count cannot apply; remove them",
        )
    ]


def test_unload_target_must_be_inside_the_stage_prefix(check: Check, valid: str) -> None:
    text = edit(
        valid,
        '    athena: {sql: "SELECT 1"}\n',
        '    unload: {sql: "SELECT 1", to: "{{ lake.bucket_uri }}landing/"}\n',
    )
    assert check(text) == [
        (
            8,
            31,
            "tasks[0].unload.to: unload clears '{{ lake.bucket_uri }}landing/' before writing, so it must be a folder inside this stage's own prefix: write {{ lake.uri }}<folder>/, e.g. {{ lake.uri }}exports/scifi/",
        )
    ]


def test_unload_needs_a_select(check: Check, valid: str) -> None:
    text = edit(
        valid,
        '    athena: {sql: "SELECT 1"}\n',
        '    unload: {sql: "DROP TABLE x", to: "{{ lake.uri }}x/"}\n',
    )
    assert check(text) == [
        (8, 20, "tasks[0].unload.sql: expected a SELECT query, got a DROP statement")
    ]


def test_check_table_must_be_a_table_reference(check: Check, valid: str) -> None:
    text = edit(
        valid,
        '    athena: {sql: "SELECT 1"}\n',
        '    check: {table: "t; DROP TABLE x", row_count_min: 1}\n',
    )
    assert check(text) == [
        (
            8,
            13,
            "tasks[0].check.table: 't; DROP TABLE x' is not a table reference; write {{ db.<database> }}.<table>, e.g. {{ db.movielens }}.ratings (the table name is letters, digits and '_')",
        )
    ]


def test_check_columns_must_be_names(check: Check, valid: str) -> None:
    text = edit(
        valid,
        '    athena: {sql: "SELECT 1"}\n',
        '    check: {table: "{{ db.ops }}.t", not_null: ["a); DROP TABLE x; --"]}\n',
    )
    assert check(text) == [
        (
            8,
            49,
            "tasks[0].check.not_null[0]: 'a); DROP TABLE x; --' is not valid; a column name is letters, digits and '_' only (no quotes, spaces or SQL)",
        )
    ]


def test_check_needs_an_assertion(check: Check, valid: str) -> None:
    text = edit(valid, '    athena: {sql: "SELECT 1"}\n', '    check: {table: "{{ db.ops }}.t"}\n')
    assert check(text) == [
        (8, 5, "tasks[0].check: names a table but no assertion; add row_count_min and/or not_null")
    ]


def test_partition_expression_must_parse(check: Check, valid: str) -> None:
    text = edit(
        valid,
        '    athena: {sql: "SELECT 1"}\n',
        '    wait_for_partition: {table: "{{ db.ops }}.t", expression: "ds=\'{{ ds }}\'; DROP TABLE t"}\n',
    )
    assert check(text) == [
        (
            8,
            79,
            "tasks[0].wait_for_partition.expression: 2 SQL statements; Athena runs one statement per query — put each in its own task",
        )
    ]


def test_wait_for_s3_needs_an_s3_location(check: Check, valid: str) -> None:
    text = edit(
        valid, '    athena: {sql: "SELECT 1"}\n', '    wait_for_s3: {prefix: "landing/x/"}\n'
    )
    assert check(text) == [
        (
            8,
            19,
            "tasks[0].wait_for_s3.prefix: 'landing/x/' is not an S3 location; start with {{ lake.bucket_uri }}, {{ lake.uri }} or s3://",
        )
    ]


def test_all_problems_of_a_file_at_once(check: Check, valid: str) -> None:
    text = edit(valid, "owner: analytics", "owner: airflow")
    text = edit(text, '{sql: "SELECT 1"}', '{sql: "SELEC 1"}')
    text = edit(text, "depends_on: [first]", "depends_on: [nope]")
    assert [line for line, _, _ in check(text)] == [3, 8, 11]


def test_sns_topic_must_be_an_alert_topic_of_the_stages(tmp_path):
    from mwaa_elt.spec import validate_paths
    from mwaa_elt.stage import load_all_stages

    stages = load_all_stages(Path(__file__).resolve().parents[2] / "stacks")
    folder = tmp_path / "alerting"
    folder.mkdir()
    spec = folder / "alerting.yaml"
    spec.write_text(
        "pipeline: alerting\ndescription: x\nowner: analytics\nstart_date: 2024-01-01\n"
        "on_failure: {sns_topic: pager}\ntasks:\n  - id: a\n    athena: {sql: SELECT 1}\n"
    )
    problems = [str(p) for p in validate_paths([spec], stages).problems]
    assert problems == [
        f"{spec}:5:25: on_failure.sns_topic: 'pager' is not an alert topic of stage dev, "
        "staging, prod (alertTopics in stacks/Pulumi.<stage>.yaml); known: data-alerts"
    ]
