"""Judging an answer: columns, order, numbers, dates and NULLs as an analyst means them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from mwaa_elt.sqltest.compare import compare
from mwaa_elt.sqltest.model import Expect


def expect(**fields) -> Expect:
    return Expect.model_validate(fields)


COLUMNS = ["id", "name"]


def test_rows_match_in_any_order_by_default():
    verdict = compare(
        expect(rows=[{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]),
        COLUMNS,
        [(2, "b"), (1, "a")],
    )
    assert verdict.passed


def test_ordered_rows_report_the_positions_that_differ():
    verdict = compare(
        expect(ordered=True, rows=[{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]),
        COLUMNS,
        [(2, "b"), (1, "a")],
    )
    assert not verdict.passed
    assert verdict.diff is not None
    assert [p for p, _, _ in verdict.diff.misplaced] == [0, 1]


def test_duplicates_count():
    verdict = compare(expect(rows=[{"id": 1, "name": "a"}]), COLUMNS, [(1, "a"), (1, "a")])
    assert not verdict.passed
    assert verdict.diff is not None and verdict.diff.unexpected == ((1, "a"),)


def test_an_unnamed_answer_column_fails_unless_partial():
    rows = [{"id": 1}]
    full = compare(expect(rows=rows), COLUMNS, [(1, "a")])
    assert not full.passed and "name" in (full.reason or "") and "partial" in (full.reason or "")
    assert compare(expect(partial=True, rows=rows), COLUMNS, [(1, "a")]).passed


def test_an_expected_column_the_answer_lacks_fails():
    verdict = compare(expect(partial=True, rows=[{"idx": 1}]), COLUMNS, [(1, "a")])
    assert not verdict.passed and "idx" in (verdict.reason or "")


def test_a_column_left_out_of_one_expected_row_means_null():
    rows = [{"id": 1, "name": "a"}, {"id": 2}]
    assert compare(expect(rows=rows), COLUMNS, [(1, "a"), (2, None)]).passed
    assert not compare(expect(rows=rows), COLUMNS, [(1, "a"), (2, "b")]).passed


def test_numbers_compare_by_value_and_precision_rounds():
    assert compare(expect(rows=[{"x": 0.3}]), ["x"], [(0.1 + 0.2,)]).passed
    assert compare(expect(rows=[{"x": 3}]), ["x"], [(Decimal("3.00"),)]).passed
    assert not compare(expect(rows=[{"x": 3.33}]), ["x"], [(10 / 3,)]).passed
    assert compare(expect(precision=2, rows=[{"x": 3.33}]), ["x"], [(10 / 3,)]).passed
    assert not compare(expect(rows=[{"x": 1}]), ["x"], [(True,)]).passed
    assert not compare(expect(rows=[{"x": "1"}]), ["x"], [(1,)]).passed


def test_dates_and_times_compare_with_their_iso_text():
    assert compare(expect(rows=[{"d": "2024-03-05"}]), ["d"], [(dt.date(2024, 3, 5),)]).passed
    moment = dt.datetime(2024, 3, 5, 6, 0)
    assert compare(expect(rows=[{"t": "2024-03-05 06:00:00"}]), ["t"], [(moment,)]).passed
    assert compare(expect(rows=[{"t": "2024-03-05T06:00"}]), ["t"], [(moment,)]).passed
    aware = dt.datetime(2024, 3, 5, 6, 0, tzinfo=dt.UTC)
    assert compare(expect(rows=[{"t": "2024-03-05T06:00:00Z"}]), ["t"], [(aware,)]).passed
    assert not compare(expect(rows=[{"d": "2024-03-06"}]), ["d"], [(dt.date(2024, 3, 5),)]).passed


def test_null_matches_only_null():
    assert compare(expect(rows=[{"x": None}]), ["x"], [(None,)]).passed
    assert not compare(expect(rows=[{"x": None}]), ["x"], [("",)]).passed
    assert not compare(expect(rows=[{"x": 0}]), ["x"], [(None,)]).passed


def test_nested_values():
    assert compare(
        expect(rows=[{"a": [1, 2], "m": {"k": 1}}]), ["a", "m"], [([1, 2], {"k": 1})]
    ).passed
    assert not compare(expect(rows=[{"a": [1, 2]}]), ["a"], [([2, 1],)]).passed


def test_value_needs_exactly_one_cell():
    assert compare(expect(value=True), ["ok"], [(True,)]).passed
    verdict = compare(expect(value=True), ["ok"], [(False,)])
    assert not verdict.passed and verdict.reason == "expected true, got false"
    two = compare(expect(value=1), ["a", "b"], [(1, 2)])
    assert not two.passed and "one value" in (two.reason or "")


def test_empty_expected_rows_mean_an_empty_answer():
    assert compare(expect(rows=[]), COLUMNS, []).passed
    assert not compare(expect(rows=[]), COLUMNS, [(1, "a")]).passed
