"""Comparing a query's answer with a test's expected rows, and the difference as data."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from mwaa_elt.sqltest.model import Expect


@dataclass(frozen=True)
class RowDiff:
    """How an answer differs from the expected rows, over the compared `columns`.

    `missing`: expected rows the answer lacks; `unexpected`: answer rows nobody expected.
    With ordered rows, `misplaced` holds (position, expected, actual) pairs that differ.
    """

    columns: tuple[str, ...]
    missing: tuple[tuple[Any, ...], ...] = ()
    unexpected: tuple[tuple[Any, ...], ...] = ()
    misplaced: tuple[tuple[int, tuple[Any, ...], tuple[Any, ...]], ...] = ()


@dataclass(frozen=True)
class Verdict:
    """Pass, or why not: a one-line reason and, for rows, their difference."""

    passed: bool
    reason: str | None = None
    diff: RowDiff | None = None


def compare(expect: Expect, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Verdict:
    """Whether `rows` (with result `columns`) is what `expect` says."""
    if expect.rows is None:
        return _compare_value(expect, columns, rows)
    expected_rows = expect.rows
    named: list[str] = []
    for row in expected_rows:
        named.extend(c for c in row if c not in named)
    absent = [c for c in named if c not in columns]
    if absent:
        return Verdict(
            False,
            f"expected column(s) {', '.join(absent)} not in the answer; it has: "
            f"{', '.join(columns) or '(none)'}",
        )
    if expect.partial or not expected_rows:
        compared = tuple(named) if expected_rows else tuple(columns)
    else:
        extra = [c for c in columns if c not in named]
        if extra:
            return Verdict(
                False,
                f"the answer has column(s) {', '.join(extra)} that the expected rows do not "
                "name; name them, or set partial: true to compare only the named ones",
            )
        compared = tuple(columns)
    index = [list(columns).index(c) for c in compared]
    actual = [tuple(row[i] for i in index) for row in rows]
    wanted = [tuple(row.get(c) for c in compared) for row in expected_rows]
    precision = expect.precision
    if expect.ordered:
        misplaced = tuple(
            (pos, w, a)
            for pos, (w, a) in enumerate(zip(wanted, actual, strict=False))
            if not _same_row(w, a, precision)
        )
        missing = tuple(wanted[len(actual) :])
        unexpected = tuple(actual[len(wanted) :])
        if misplaced or missing or unexpected:
            diff = RowDiff(compared, missing, unexpected, misplaced)
            return Verdict(False, _count_reason(len(wanted), len(actual), diff), diff)
        return Verdict(True)
    unmatched = list(range(len(actual)))
    missing_rows = []
    for w in wanted:
        hit = next((i for i in unmatched if _same_row(w, actual[i], precision)), None)
        if hit is None:
            missing_rows.append(w)
        else:
            unmatched.remove(hit)
    if missing_rows or unmatched:
        diff = RowDiff(compared, tuple(missing_rows), tuple(actual[i] for i in unmatched))
        return Verdict(False, _count_reason(len(wanted), len(actual), diff), diff)
    return Verdict(True)


def _count_reason(wanted: int, got: int, diff: RowDiff) -> str:
    parts = []
    if diff.misplaced:
        parts.append(f"{len(diff.misplaced)} row(s) differ in place")
    if diff.missing:
        parts.append(f"{len(diff.missing)} expected row(s) missing")
    if diff.unexpected:
        parts.append(f"{len(diff.unexpected)} unexpected row(s)")
    return f"expected {wanted} row(s), got {got}: " + ", ".join(parts)


def _compare_value(
    expect: Expect, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> Verdict:
    if len(rows) != 1 or len(columns) != 1:
        return Verdict(
            False,
            f"expected one value, got {len(rows)} row(s) of {len(columns)} column(s); "
            "use rows: to compare several",
        )
    actual = rows[0][0]
    if _same(expect.value, actual, expect.precision):
        return Verdict(True)
    return Verdict(False, f"expected {show(expect.value)}, got {show(actual)}")


def _same_row(wanted: tuple[Any, ...], actual: tuple[Any, ...], precision: int | None) -> bool:
    return all(_same(w, a, precision) for w, a in zip(wanted, actual, strict=True))


def _same(wanted: Any, actual: Any, precision: int | None) -> bool:
    """Whether a YAML value means the answer's value (numbers, dates and nesting compared)."""
    if wanted is None or actual is None:
        return wanted is None and actual is None
    if isinstance(wanted, bool) or isinstance(actual, bool):
        return isinstance(wanted, bool) and isinstance(actual, bool) and wanted == actual
    if isinstance(wanted, int | float) and isinstance(actual, int | float | Decimal):
        if isinstance(wanted, int) and isinstance(actual, int):
            return wanted == actual
        left, right = float(wanted), float(actual)
        if math.isnan(left) or math.isnan(right):
            return math.isnan(left) and math.isnan(right)
        if precision is not None:
            return round(left, precision) == round(right, precision)
        return math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(wanted, str) and isinstance(actual, dt.date | dt.time):
        return _same_moment(wanted, actual)
    if isinstance(wanted, list) and isinstance(actual, list | tuple):
        return len(wanted) == len(actual) and all(
            _same(w, a, precision) for w, a in zip(wanted, actual, strict=True)
        )
    if isinstance(wanted, dict) and isinstance(actual, dict):
        return set(map(str, wanted)) == set(map(str, actual)) and all(
            _same(wanted[k], actual.get(k, actual.get(str(k))), precision) for k in wanted
        )
    if isinstance(wanted, str) and not isinstance(actual, str | int | float | Decimal):
        return wanted == str(actual)  # UUIDs, intervals, ...
    return type(wanted) is type(actual) and wanted == actual


def _same_moment(wanted: str, actual: dt.date | dt.time) -> bool:
    try:
        if isinstance(actual, dt.datetime):
            moment = dt.datetime.fromisoformat(wanted.replace("Z", "+00:00"))
            if (moment.tzinfo is None) != (actual.tzinfo is None):
                moment = moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment
                actual = actual.replace(tzinfo=dt.UTC) if actual.tzinfo is None else actual
            return moment == actual
        if isinstance(actual, dt.date):
            return dt.date.fromisoformat(wanted) == actual
        return dt.time.fromisoformat(wanted) == actual
    except ValueError:
        return False


def show(value: Any) -> str:
    """A value as a diff shows it: NULL, numbers and dates as written in YAML, text quoted."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {show(v)}" for k, v in value.items()) + "}"
    return str(value)


def plain(value: Any) -> Any:
    """A value as JSON can hold it (dates as ISO text, decimals as numbers)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
