"""Bugs the spec fuzzers (test_spec_fuzz.py) found, each pinned by its smallest example."""

from __future__ import annotations

from collections.abc import Callable

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
