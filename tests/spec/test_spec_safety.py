"""Safety gates of validation (issue 9, items 9-12): links, bundle size, secrets, EMR scripts,
dates and time zones, and the Airflow ids the generator adds."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from mwaa_elt.errors import ConfigError
from mwaa_elt.promote.bundle import pipeline_bundle, pipeline_files, unpack
from mwaa_elt.render import render_pipelines
from mwaa_elt.spec import discover_specs, validate_paths
from mwaa_elt.spec.folder import MAX_BUNDLE_BYTES
from mwaa_elt.spec.scripts import hive_parse_problems, hive_variable_problems
from mwaa_elt.spec.secrets import secret_problems
from mwaa_elt.stage import Stage

ROOT = Path(__file__).resolve().parents[2]
HEAD = "pipeline: demo\ndescription: d\nowner: analytics\nstart_date: 2024-01-01\n"
ATHENA = HEAD + "tasks:\n  - id: load\n    athena: {sql_file: sql/load.sql}\n"
EMR = HEAD + "cluster: {applications: [Hadoop, Hive, Spark]}\ntasks:\n"


def problems_of(path: Path, stages: dict[str, Stage]) -> list[str]:
    return [str(p) for p in validate_paths([path], stages).problems]


# -- secrets ------------------------------------------------------------------------------------


def test_the_shipped_examples_hold_no_secret_finding() -> None:
    files = {
        p: p.read_text()
        for p in (ROOT / "pipelines").rglob("*")
        if p.suffix in {".yaml", ".sql", ".py", ".hql"}
    }
    assert len(files) >= 8
    assert secret_problems(files) == []


ORDINARY = """\
-- Ordinary SQL and YAML that must not look like secrets.
SELECT md5(to_utf8(title)) = '5d41402abc4b2a76b9719d911017c592' AS same_title,
       movie_id, 'c9a1fdac-6e08-4b2a-a8c3-2f8ddc0b7e44' AS run_uuid
FROM {{ db.movielens }}.movies_with_a_rather_long_table_name_for_testing
WHERE password_changed_at > date '2024-01-01'
  AND location = 's3://analytics-lake-example/curated/ratings_clean/ds=2024-01-01/'
"""


def test_ordinary_sql_and_yaml_are_not_taken_for_secrets() -> None:
    yaml_text = (
        "tasks:\n  - id: wait\n    wait_for_s3: {key: '{{ lake.bucket_uri }}landing/x/_SUCCESS'}\n"
        "    spark: {conf: {spark.sql.shuffle.partitions: 64, spark.executor.memory: 4g}}\n"
        "secret_rotation_days: 30\n"
    )
    found = secret_problems({Path("x.sql"): ORDINARY, Path("x.yaml"): yaml_text})
    assert found == []


def test_a_secret_is_named_by_file_line_and_kind_never_by_value() -> None:
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    text = f"SELECT 1\n-- key AKIAIOSFODNN7EXAMPLE\nSELECT '{secret}' AS aws_secret\n"
    found = secret_problems({Path("q.sql"): text})
    assert [(p.line, p.message.split(";")[0]) for p in found] == [
        (2, "this line holds what looks like a secret (AWS Access Key)"),
        (3, "this line holds what looks like a secret (Base64 High Entropy String)"),
    ]
    assert all("AKIA" not in p.message and secret not in p.message for p in found)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("q.sql", "SELECT 'AKIAIOSFODNN7EXAMPLE' AS k  -- pragma: allowlist secret\n"),
        ("s.yaml", "conf: {key: AKIAIOSFODNN7EXAMPLE}  # pragma: allowlist secret\n"),
        ("p.py", "# pragma: allowlist nextline secret\nKEY = 'AKIAIOSFODNN7EXAMPLE'\n"),
    ],
)
def test_the_allowlist_comment_marks_a_verified_false_positive(name: str, text: str) -> None:
    assert secret_problems({Path(name): text}) == []
    assert secret_problems({Path(name): text.replace("pragma: allowlist", "note:")}) != []


def test_a_secret_in_an_unreferenced_file_is_not_scanned_because_it_is_never_bundled(
    write_spec: Callable[..., Path], stages: dict[str, Stage]
) -> None:
    path = write_spec(
        ATHENA, files={"sql/load.sql": "SELECT 1\n", "notes.md": "AKIAIOSFODNN7EXAMPLE"}
    )
    assert problems_of(path, stages) == []
    assert set(unpack(pipeline_bundle(validate_paths([path], stages).pipelines["demo"]).data)) == {
        "demo.yaml",
        "sql/load.sql",
    }


# -- links, special files, bundle ----------------------------------------------------------------


def test_a_referenced_link_to_a_file_inside_the_folder_is_refused_at_the_reference(
    write_spec: Callable[..., Path], stages: dict[str, Stage]
) -> None:
    path = write_spec(ATHENA, files={"sql/real.sql": "SELECT 1\n"})
    (path.parent / "sql" / "load.sql").symlink_to("real.sql")
    found = problems_of(path, stages)
    assert any(f"{path}:7:" in p and "sql/load.sql is a symbolic link" in p for p in found), found
    assert any(p.startswith(f"{path.parent / 'sql' / 'load.sql'}:1:1:") for p in found), found


def test_a_link_to_a_folder_is_reported_without_being_walked(
    write_spec: Callable[..., Path], stages: dict[str, Stage], tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.sql").write_text("AKIAIOSFODNN7EXAMPLE")
    path = write_spec(ATHENA, files={"sql/load.sql": "SELECT 1\n"})
    (path.parent / "more").symlink_to(outside)
    found = problems_of(path, stages)
    assert len(found) == 1 and "more is a symbolic link" in found[0], found


def test_a_pipeline_folder_that_is_a_link_is_refused(
    write_spec: Callable[..., Path], stages: dict[str, Stage], tmp_path: Path
) -> None:
    path = write_spec(ATHENA, files={"sql/load.sql": "SELECT 1\n"})
    linked = tmp_path / "pipelines" / "demo"
    linked.parent.mkdir()
    linked.symlink_to(path.parent)
    found = problems_of(linked / "demo.yaml", stages)
    assert len(found) == 1 and "demo is a symbolic link" in found[0], found


def test_a_fifo_is_refused_and_never_opened(
    write_spec: Callable[..., Path], stages: dict[str, Stage]
) -> None:
    path = write_spec(ATHENA, files={"sql/load.sql": "SELECT 1\n"})
    os.mkfifo(path.parent / "sql" / "pipe.sql")
    found = problems_of(path, stages)
    assert len(found) == 1 and "pipe.sql is a FIFO" in found[0], found


def test_bundling_refuses_links_and_oversized_sources(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    (folder / "sql").mkdir(parents=True)
    spec = folder / "demo.yaml"
    spec.write_text(ATHENA)
    (folder / "sql" / "load.sql").symlink_to("/etc/passwd")
    with pytest.raises(ConfigError, match="symbolic link"):
        pipeline_files(spec, ["sql/load.sql"])
    (folder / "sql" / "load.sql").unlink()
    (folder / "sql" / "load.sql").write_bytes(b"-- x\n" * (MAX_BUNDLE_BYTES // 5 + 1))
    with pytest.raises(ConfigError, match="more than"):
        pipeline_files(spec, ["sql/load.sql"])


# -- EMR scripts ---------------------------------------------------------------------------------


def test_hive_variables_set_in_the_script_or_from_the_environment_need_no_args() -> None:
    script = (
        "SET hivevar:day=2024-01-01;\nSET tbl=ratings;\n"
        "SELECT * FROM ${db}.${hiveconf:tbl} WHERE ds = '${day}' AND u = '${env:USER}';\n"
    )
    assert hive_variable_problems(script, ["db"], "tasks[0].hive") == []
    missing = hive_variable_problems(script, [], "tasks[0].hive")
    assert [(p.line, p.col) for p in missing] == [(3, 15)]
    assert "add db: <value> to tasks[0].hive.args" in missing[0].message


def test_hive_variables_in_comments_are_ignored_and_parsing_keeps_positions() -> None:
    script = "-- uses ${nothing}\nSELECT a FROM ${db}.t WHERE WHERE x = 1;\n"
    assert hive_variable_problems(script, ["db"], "tasks[0].hive") == []
    [problem] = hive_parse_problems(script)
    assert problem.line == 2 and "does not parse as HiveQL" in problem.message


def test_the_shipped_hive_script_parses() -> None:
    text = (ROOT / "pipelines/movielens_emr/scripts/clean_ratings.hql").read_text()
    assert hive_parse_problems(text) == []


def test_a_spark_script_that_does_not_compile_names_every_stage(
    write_spec: Callable[..., Path], stages: dict[str, Stage]
) -> None:
    spec = EMR + "  - id: rank\n    spark: {script: scripts/rank.py}\n"
    path = write_spec(spec, files={"scripts/rank.py": "import sys\n\nprint(sys.argv[1)\n"})
    [problem] = problems_of(path, stages)
    assert problem.startswith(f"{path.parent / 'scripts' / 'rank.py'}:3:")
    for name in stages:
        assert name in problem


# -- dates, time zones, generated ids ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ok"),
    [("1969-12-31", False), ("1970-01-01", True), ("2099-12-31", True), ("2100-01-01", False)],
)
def test_start_date_bounds(
    write_spec: Callable[..., Path], stages: dict[str, Stage], value: str, ok: bool
) -> None:
    path = write_spec(ATHENA.replace("2024-01-01", value), files={"sql/load.sql": "SELECT 1\n"})
    found = problems_of(path, stages)
    assert (found == []) == ok, found


def test_a_timezone_goes_into_the_dag_start_date(
    write_spec: Callable[..., Path], stages: dict[str, Stage]
) -> None:
    path = write_spec(
        ATHENA.replace("start_date", "timezone: Europe/Paris\nstart_date"),
        files={"sql/load.sql": "SELECT 1\n"},
    )
    report = validate_paths(discover_specs(path.parent.parent), stages)
    assert report.ok, report.problems
    result = render_pipelines(
        report.pipelines, stages["dev"], ROOT / "dag_templates", project_root=path.parent
    )
    assert 'tz="Europe/Paris"' in result.files["dags/demo.py"].decode()


def test_a_task_id_that_equals_a_group_is_refused(
    write_spec: Callable[..., Path], stages: dict[str, Stage]
) -> None:
    spec = HEAD + (
        "tasks:\n  - id: load\n    group: raw\n    athena: {sql: SELECT 1}\n"
        "  - id: raw\n    athena: {sql: SELECT 2}\n"
    )
    [problem] = problems_of(write_spec(spec), stages)
    assert ":9:" in problem and "would come from both task 'raw' and group 'raw'" in problem
