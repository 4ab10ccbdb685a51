"""A data-quality check's SQL must return, statically, one row of one boolean column."""

from __future__ import annotations

from sqlglot import exp

from mwaa_elt.spec.sql_parse import Statement
from mwaa_elt.spec.stage_vars import TextProblem

_BOOLEAN = (
    exp.Predicate,  # =, <, >, LIKE, IN, BETWEEN, IS, EXISTS...
    exp.Connector,  # AND, OR
    exp.Not,
    exp.Boolean,
)
_FIX = "write one boolean that is true when the data is right, e.g. SELECT count(*) = 0 FROM ..."


def check_shape_problems(statement: Statement) -> list[TextProblem]:
    """Why the check's query may return something other than one row with one boolean."""
    node = statement.node
    at = (statement.line, statement.col)
    if not isinstance(node, exp.Select):
        return [TextProblem(*at, f"a check is one SELECT (not a set operation); {_FIX}")]
    projections = node.expressions
    if len(projections) != 1:
        return [
            TextProblem(*at, f"a check returns one column, this returns {len(projections)}; {_FIX}")
        ]
    column = projections[0]
    value = column.this if isinstance(column, exp.Alias) else column
    if isinstance(value, exp.Paren):
        value = value.unnest()
    problems = []
    if not isinstance(value, _BOOLEAN):
        shown = value.sql("athena")[:60]
        problems.append(
            TextProblem(*at, f"a check returns a boolean, but '{shown}' is not a condition; {_FIX}")
        )
    one_row = node.args.get("from_") is None and node.args.get("from") is None
    if not one_row:
        grouped = node.args.get("group") is not None
        aggregated = bool(value.find(exp.AggFunc)) and not value.find(exp.Window)
        one_row = aggregated and not grouped
    if not one_row:
        problems.append(
            TextProblem(
                *at,
                "a check returns one row: aggregate over the table without GROUP BY (count(*), "
                "count_if(...), min/max ...), e.g. SELECT count_if(x IS NULL) = 0 FROM ...",
            )
        )
    return problems
