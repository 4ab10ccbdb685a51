"""Python literals for generated code: spec text goes in as data and can never become code."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

_TIMEDELTA_UNITS = (("days", 86400), ("hours", 3600), ("minutes", 60), ("seconds", 1))


def py_literal(value: Any) -> str:
    """`value` as Python source that evaluates to an equal value; strings always go through repr().

    Multi-line strings become an implicit concatenation of one repr() per line, so embedded SQL
    reads line by line in the generated file while every character is still escaped.
    """
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} has no Python literal")
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, timedelta):
        return py_timedelta(value)
    if isinstance(value, Mapping):
        items = ", ".join(f"{py_literal(k)}: {py_literal(v)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return "[" + ", ".join(py_literal(v) for v in value) + "]"
    raise TypeError(f"no Python literal for {type(value).__name__}")


def _string(value: str) -> str:
    lines = value.splitlines(keepends=True)
    if len(lines) <= 1:
        return repr(value)
    return "(" + " ".join(repr(line) for line in lines) + ")"


def py_timedelta(value: timedelta) -> str:
    """A `timedelta(...)` call in the largest whole units, e.g. `timedelta(hours=1, minutes=30)`."""
    seconds = value.total_seconds()
    if seconds != int(seconds) or seconds < 0:
        raise ValueError(f"{value!r}: durations are whole, non-negative seconds")
    rest = int(seconds)
    parts = []
    for unit, size in _TIMEDELTA_UNITS:
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{unit}={count}")
    return f"timedelta({', '.join(parts) or 'seconds=0'})"


def comment_text(value: str) -> str:
    """`value` safe inside a `#` comment: anything that could end the line is escaped."""
    return value if value.isprintable() else ascii(value)[1:-1]
