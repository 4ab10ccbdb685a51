"""Bugs the spec fuzzers (test_spec_fuzz.py) found, each pinned by its smallest example."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from fuzz_support import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from mwaa_elt.cli import app
from mwaa_elt.spec import resolve_pipeline, validate_paths
from mwaa_elt.spec.stage_vars import expressions, position
from mwaa_elt.spec.yaml_source import load_yaml
from mwaa_elt.stage import Stage

Check = Callable[..., list[tuple[int, int, str]]]


def test_a_quoted_value_cannot_break_a_message_into_lines_or_drive_the_terminal(
    check: Check, valid: str
) -> None:
    """Messages quote spec values; a newline or an escape sequence in one made
    `path:line:col: message` span lines (a forged second problem) or recolour the terminal."""
    hostile = 'retry_delay: "1\\nfake.yaml:1:1: forged \\e[31mred\\t"\n'
    problems = check(valid.replace("tasks:\n", hostile + "tasks:\n"))
    assert problems == [
        (
            6,
            1,
            "retry_delay: '1\\nfake.yaml:1:1: forged \\x1b[31mred\\t' is not a duration; write a "
            "number and a unit: 30s, 5m, 1h, 1d or a combination such as 1h30m",
        )
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            b"a: 1\rb: 2\n",
            (
                1,
                5,
                "carriage return without a line feed (old Mac line ending); save the file "
                "with LF or CRLF line endings",
            ),
        ),
        (
            "a: 1\nb: x\u2028y\n".encode(),
            (
                2,
                5,
                "U+2028 is a line break to YAML but not to editors; remove it, or write it "
                "as \\u2028 inside a double-quoted string",
            ),
        ),
        (
            "a: x\x85y\n".encode(),
            (
                1,
                5,
                "U+0085 is a line break to YAML but not to editors; remove it, or write it "
                "as \\u0085 inside a double-quoted string",
            ),
        ),
    ],
)
def test_line_breaks_only_yaml_counts_are_refused_where_they_are(
    raw: bytes, expected: tuple[int, int, str]
) -> None:
    """YAML 1.1 counts a lone CR, NEL, LS and PS as line breaks, editors and our own line
    numbers do not: every later problem pointed at the wrong line (found with CR-only files)."""
    doc, problems = load_yaml(raw)
    assert doc is None
    assert [(p.mark.line, p.mark.col, p.message) for p in problems] == [expected]


def test_crlf_files_and_escaped_separators_still_load() -> None:
    doc, problems = load_yaml(b'a: 1\r\nb: "x\\u2028y"\r\n')
    assert problems == [] and doc is not None
    assert doc.data == {"a": 1, "b": "x\u2028y"}


@pytest.mark.parametrize(
    ("raw", "mark"),
    [(b"a: 1\nr", (2, 2)), (b"a: 1\nb: [1, 2", (2, 9)), (b'a: "open', (1, 9))],
)
def test_an_error_at_the_end_of_a_file_points_at_its_last_line(
    raw: bytes, mark: tuple[int, int]
) -> None:
    """libyaml reports the end of a stream that lacks a final newline on the line after it: a
    line no editor shows (found by truncating specs)."""
    _, problems = load_yaml(raw)
    assert [(p.mark.line, p.mark.col) for p in problems] == [mark]


@pytest.mark.parametrize(
    ("raw", "mark"),
    [
        ("é: ☃\x00".encode(), (1, 5)),
        ("\ufeffé: \x00".encode(), (1, 4)),
        (b"a: 1\n" + "ü".encode() + b": \xff", (2, 4)),
    ],
)
def test_binary_and_non_utf8_bytes_are_located_in_characters(
    raw: bytes, mark: tuple[int, int]
) -> None:
    """Columns counted bytes, so every multi-byte character before the bad byte moved the mark
    to the right of where an editor shows it (found by fuzzing bytes)."""
    _, problems = load_yaml(raw)
    assert [(p.mark.line, p.mark.col) for p in problems] == [mark]


def test_sql_and_scripts_render_exactly_as_validated(
    write_spec: Callable[..., Path], stages: dict[str, Stage]
) -> None:
    """SQL files and scripts were read again with universal newlines: a CR or CR LF inside a SQL
    string literal became LF in the DAG (found by fuzzing rendered DAGs); a BOM was kept."""
    sql = "\ufeffSELECT 'a\r\nb\rc' AS v -- x\r\n"
    script = "print('''a\r\nb''')\r\n"  # valid Python: Spark scripts must compile
    spec = write_spec(
        "pipeline: demo\ndescription: d\nowner: analytics\nstart_date: 2024-01-01\ntasks:\n"
        "  - id: q\n    athena: {sql_file: sql/q.sql}\n"
        "  - id: s\n    spark: {script: scripts/s.py}\n",
        files={"sql/q.sql": sql, "scripts/s.py": script},
    )
    report = validate_paths([spec], stages)
    assert report.ok, report.problems
    resolved = resolve_pipeline(report.pipelines["demo"], stages["dev"])
    tasks = {task.id: task for task in resolved.tasks}
    assert tasks["q"].sql == sql.removeprefix("\ufeff")
    assert tasks["s"].script_text == script


@pytest.mark.parametrize("tag", ["{{", "{%", "{#"])
def test_alert_addresses_are_plain_text(check: Check, valid: str, tag: str) -> None:
    """Airflow 3's SMTP notifier renders its addresses: `{{ }}` in one was replaced and `{%`
    made the failure alert itself fail, while Airflow 2 sent it as written."""
    spec = valid.replace("tasks:\n", f"on_failure: {{email: ['a{tag}x@example.com']}}\ntasks:\n")
    assert check(spec) == [
        (
            6,
            22,
            f"on_failure.email[0]: 'a{tag}x@example.com' contains '{tag}'; Airflow renders alert "
            "addresses as templates, so it would not be sent as written: write the address as "
            "plain text",
        )
    ]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT '{{ " + "(" * 5_000 + "'",
        "SELECT '{{ db.ops ~ " + "(" * 5_000 + "1" + ")" * 5_000 + " }}'",
        "SELECT '{% if " + "(" * 5_000 + " %}'",
    ],
)
def test_deeply_nested_jinja_is_a_located_problem_not_a_recursion_error(
    check: Check, valid: str, sql: str
) -> None:
    """Jinja's parser recurses per nesting level: validation raised RecursionError."""
    problems = check(valid.replace('{sql: "SELECT 1"}', f'{{sql: "{sql}"}}'))
    assert problems == [
        (
            8,
            28,
            "tasks[0].athena.sql: Jinja template error: nested too deeply to parse; Airflow "
            "could not render it either",
        )
    ]


@pytest.mark.parametrize(
    "expression",
    [
        "{{ lake.uri * 1000 }}",
        "{{ lake.uri | center(1000) }}",
        "{{ lake.uri.ljust(1000) }}",
        "{{ stage.name ~ (9 ** 99) }}",
        "{{ lake.uri.upper }}",
        "{{ db.ops if stage.name else 'x' }}",
    ],
)
def test_render_time_expressions_read_stage_variables_and_compute_nothing(
    check: Check, valid: str, expression: str
) -> None:
    """mwaa-elt evaluated any expression naming a stage variable, in every stage, when
    validating and rendering: `{{ lake.uri * 10**9 }}` hung validation and exhausted memory."""
    problems = check(valid.replace('{sql: "SELECT 1"}', f"{{sql: \"SELECT '{expression}'\"}}"))
    assert problems == [
        (
            8,
            28,
            f"tasks[0].athena.sql: '{expression}' computes a value at render time; a stage "
            "variable is a plain reference such as {{ db.movielens }} or {{ lake.uri }}, with "
            "any other text outside the braces",
        )
    ]


def test_plain_references_and_joins_still_resolve(check: Check, valid: str) -> None:
    sql = "SELECT '{{ db.ops }} {{ db['analytics'] ~ '.t' }} {{- lake.uri -}} {{ (stage.name) }}'"
    assert check(valid.replace('{sql: "SELECT 1"}', f'{{sql: "{sql}"}}')) == []


def test_validate_prints_quoted_spec_text_as_written(scratch_project: Path) -> None:
    """rich turned ':smile:' in a quoted value into an emoji, so the printed problem was not
    the problem (found by comparing CLI output with the library's problems)."""
    folder = scratch_project / "pipelines" / "demo"
    folder.mkdir(parents=True)
    (folder / "demo.yaml").write_text(
        "pipeline: demo\ndescription: d\nowner: analytics\nstart_date: 2024-01-01\n"
        "retry_delay: ':smile: [bold]x[/bold]'\ntasks:\n  - id: a\n    athena: {sql: SELECT 1}\n"
    )
    result = CliRunner().invoke(app, ["validate", "-C", str(scratch_project)])
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0].endswith(
        "demo.yaml:5:1: retry_delay: ':smile: [bold]x[/bold]' is not a duration; write a number "
        "and a unit: 30s, 5m, 1h, 1d or a combination such as 1h30m"
    )


@pytest.mark.parametrize(
    ("field", "value", "uri"),
    [
        ("key", "s3://bucket", "s3://bucket"),
        ("key", "s3:///key", "s3:///key"),
        ("key", "{{ lake.bucket }}/landing/x", "{bucket}/landing/x"),
        ("prefix", "s3://bucket/", "s3://bucket/"),
    ],
)
def test_a_wait_for_s3_target_that_cannot_render_is_refused_by_validate(
    check: Check, valid: str, stages: dict[str, Stage], field: str, value: str, uri: str
) -> None:
    """Validation let these through and rendering refused them: `validate` said ok and
    `render` failed (found by rendering every spec the fuzzers' mutations left valid)."""
    spec = valid.replace('athena: {sql: "SELECT 1"}', f"wait_for_s3: {{{field}: '{value}'}}")
    resolved = uri.format(bucket=stages["dev"].data_lake_bucket)
    assert check(spec) == [
        (
            8,
            19,
            f"tasks[0].wait_for_s3.{field}: '{value}' is '{resolved}' in stage dev, not "
            "s3://<bucket>/<key>; write {{ lake.bucket_uri }}<key>, {{ lake.uri }}<key> or "
            "s3://<bucket>/<key>",
        )
    ]


def test_an_unload_folder_may_hold_any_character(check: Check, valid: str) -> None:
    """A line break in the folder gave the wrong message: 'must be inside this stage's own
    prefix' although it was."""
    spec = valid.replace(
        'athena: {sql: "SELECT 1"}', 'unload: {sql: SELECT 1, to: "{{ lake.uri }}a\\nb/"}'
    )
    assert check(spec) == []


@fuzz_settings(max_examples=200)
@given(
    text=st.lists(
        st.sampled_from(["{{ ds }}", "{{ db.ops\n}}", "\n", "\n\n", "x", "{{", "}}", "é"]),
        max_size=40,
    ).map("".join)
)
def test_expression_positions_are_counted_incrementally_and_exactly(text: str) -> None:
    """`expressions` counted each expression's line from the start of the text: quadratic, a
    minute to validate a 1 MB SQL file full of {{ ds }} (found with the fuzzers' long texts);
    it now counts from the previous expression and must give the same positions."""
    found = [(e.line, e.col) for e in expressions(text)]
    assert found == [position(text, m.start()) for m in re.finditer(r"\{\{(.*?)\}\}", text, re.S)]


def test_unknown_dependencies_get_bounded_suggestions(check: Check) -> None:
    """Each unknown depends_on entry was compared with every task id and listed them all: a
    spec of 4,000 tasks naming missing ones took 111 s and printed 4,000 lists of 4,000 ids."""
    tasks = "".join(
        f"  - {{id: task_{i}, athena: {{sql: SELECT 1}}, depends_on: [task_{i}x]}}\n"
        for i in range(25)
    )
    spec = (
        f"pipeline: demo\ndescription: d\nowner: analytics\nstart_date: 2024-01-01\ntasks:\n{tasks}"
    )
    messages = [message for _, _, message in check(spec)]
    assert messages[:20] == [
        f"tasks[{i}].depends_on: 'task_{i}x' is not a task of this pipeline; did you mean "
        f"'task_{i}'?"
        for i in range(20)
    ]
    listed = ", ".join(f"task_{i}" for i in range(10))
    assert messages[20:] == [
        f"tasks[{i}].depends_on: 'task_{i}x' is not a task of this pipeline; tasks: {listed}, "
        "... (25 in all)"
        for i in range(20, 25)
    ]
