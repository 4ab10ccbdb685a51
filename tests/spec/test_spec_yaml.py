"""Loading: hostile or malformed YAML gives one located problem, never an exception."""

from __future__ import annotations

import pytest

from mwaa_elt.spec.yaml_source import MAX_DEPTH, MAX_SPEC_BYTES, Mark, load_yaml


def only_problem(raw: bytes) -> tuple[int, int, str]:
    doc, problems = load_yaml(raw)
    assert doc is None
    assert len(problems) == 1
    return problems[0].mark.line, problems[0].mark.col, problems[0].message


def test_keys_and_values_keep_their_line_and_column() -> None:
    doc, problems = load_yaml(b"a: 1\nb:\n  - x\n  - {c: d}\n")
    assert not problems and doc is not None
    assert doc.data == {"a": 1, "b": ["x", {"c": "d"}]}
    assert doc.key_marks[("b",)] == Mark(2, 1)
    assert doc.key_marks[("b", 1)] == Mark(4, 5)
    assert doc.key_marks[("b", 1, "c")] == Mark(4, 6)
    assert doc.value_marks[("a",)] == Mark(1, 4)


def test_dates_stay_text_so_the_model_can_check_the_format() -> None:
    doc, _ = load_yaml(b"start_date: 2024-01-01\n")
    assert doc is not None and doc.data == {"start_date": "2024-01-01"}


def test_yes_and_on_as_keys_stay_names() -> None:
    doc, _ = load_yaml(b"on: 1\nyes: 2\n")
    assert doc is not None and doc.data == {"on": 1, "yes": 2}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            b"",
            (
                1,
                1,
                "empty file; a spec starts with 'pipeline: <name>' (see pipelines/ for examples)",
            ),
        ),
        (
            b"# nothing\n",
            (
                1,
                1,
                "empty file; a spec starts with 'pipeline: <name>' (see pipelines/ for examples)",
            ),
        ),
        (b"a:\n\tb: 1\n", (2, 1, "tab character; YAML indentation must use spaces, not tabs")),
        (
            b"a: 1\nb: c: d\n",
            (
                2,
                5,
                "invalid YAML: mapping values are not allowed in this context; a value containing ': ' must be quoted",
            ),
        ),
        (b"a: 1\na: 2\n", (2, 1, "duplicate key 'a' (first at line 1)")),
        (
            b"a: &x 1\nb: *x\n",
            (
                1,
                4,
                "YAML anchor '&x' is not allowed; write the value out in full where it is needed",
            ),
        ),
        (
            b"a: 1\n---\nb: 2\n",
            (2, 1, "a second YAML document ('---'); a spec file holds exactly one pipeline"),
        ),
        (
            b"a: !!python/object:os.system x\n",
            (
                1,
                4,
                "YAML tag 'tag:yaml.org,2002:python/object:os.system' is not allowed; write a plain value",
            ),
        ),
        (
            b"a: 1\nb: \xff\n",
            (2, 4, "byte 0xff is not UTF-8; save the file as UTF-8 (a spec is text)"),
        ),
        (b"a: 1\n\x00\x01", (2, 1, "binary content (NUL byte); a spec is UTF-8 text")),
        (b"a: \x07\n", (1, 4, "control character U+0007; a spec is plain text")),
    ],
)
def test_malformed_yaml_is_one_located_problem(raw: bytes, expected: tuple[int, int, str]) -> None:
    assert only_problem(raw) == expected


def test_nesting_is_limited() -> None:
    line, col, message = only_problem(b"a: " + b"[" * 10_000)
    assert (line, col) == (1, 4 + MAX_DEPTH - 1)
    assert message == f"nested deeper than {MAX_DEPTH} levels; a spec is never this deep"


@pytest.mark.parametrize("opener", [b"[", b"{a: "])
def test_nesting_limit_is_ours_however_deep_the_input(opener: bytes) -> None:
    # 10,000 levels: far past the YAML library's own limit, which reads ahead of our events.
    shallow = only_problem(b"k:\n  a: " + opener * (MAX_DEPTH + 1))
    deep = only_problem(b"k:\n  a: " + opener * 10_000)
    assert deep == shallow
    assert deep[2] == f"nested deeper than {MAX_DEPTH} levels; a spec is never this deep"


def test_brackets_in_quoted_values_and_comments_are_not_nesting() -> None:
    text = (
        b"a: '" + b"[" * 2000 + b"'\n"
        b'b: "' + b"{" * 2000 + b'"  # ' + b"[" * 2000 + b"\n"
        b"c: [[1, 2], {d: [3]}]\n"
    )
    doc, problems = load_yaml(text)
    assert problems == []
    assert doc is not None and doc.data["c"] == [[1, 2], {"d": [3]}]


def test_quoted_brackets_do_not_hide_deep_nesting_after_them() -> None:
    line, _, message = only_problem(b"a: '" + b"[" * 2000 + b"'\nb: " + b"[" * 10_000)
    assert line == 2
    assert message.startswith(f"nested deeper than {MAX_DEPTH} levels")


def test_alias_bomb_is_refused_at_the_first_anchor() -> None:
    bomb = b"a: &a [x, x, x, x, x, x, x, x, x]\n" + b"".join(
        b"%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n" % ((c, c, c - 1) + (c - 1,) * 8)
        for c in range(ord("b"), ord("k"))
    )
    # Refused at the first anchor, so the 9**10-element expansion is never built.
    line, col, message = only_problem(bomb)
    assert (line, col) == (1, 4)
    assert message.startswith("YAML anchor '&a' is not allowed")


def test_oversized_file_is_refused_before_parsing() -> None:
    line, col, message = only_problem(b"a: " + b"x" * MAX_SPEC_BYTES)
    assert (line, col) == (1, 1)
    assert message.startswith(f"file is {MAX_SPEC_BYTES + 3} bytes; the limit is {MAX_SPEC_BYTES}")


def test_largest_allowed_file_loads() -> None:
    # Its cost is measured by `make bench`, never asserted here: timings depend on the machine.
    line = b"k: [a, b, {c: d}]\n"
    raw = b"x:\n" + b"".join(b"  k%d%s" % (i, line[1:]) for i in range(MAX_SPEC_BYTES // 24))
    assert len(raw) <= MAX_SPEC_BYTES
    doc, problems = load_yaml(raw)
    assert doc is not None and not problems
