"""A SQL unit test file, `pipelines/<name>/tests/*.yaml`, as pydantic models.

Field rules live here; rules that need the pipeline or a stage (does the task exist, does it
run SQL, is the table's database a stage's) are checked when a test is prepared (`plan.py`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from mwaa_elt.spec.model import Identifier, SqlName

SCHEMA_ID = "https://mwaa-elt.dev/schema/test.schema.json"
# A frozen logical date: a day (midnight UTC) or a moment, in UTC unless an offset is given.
LOGICAL_DATE = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2})?(Z|[+-]\d{2}:?\d{2})?)?$"
LOGICAL_DATE_RE = re.compile(LOGICAL_DATE)
TABLE_KEY = r"^([A-Za-z_][A-Za-z0-9_]*|\{\{[^{}]*\}\})\.[A-Za-z_][A-Za-z0-9_]*$"

# What a cell may hold: YAML scalars, and lists / mappings for ARRAY, MAP and ROW columns.
_CELL_SCHEMA = {
    "anyOf": [
        {"type": ["string", "number", "boolean", "null"]},
        {"type": "array"},
        {"type": "object"},
    ]
}
_ROW_SCHEMA = {
    "type": "object",
    "additionalProperties": _CELL_SCHEMA,
    "description": "One row: column name → value; a column left out is NULL.",
}
Row = Annotated[dict[str, Any], WithJsonSchema(_ROW_SCHEMA)]


class _Spec(BaseModel):
    # Strict, as pipeline specs are: YAML already typed every value.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _rows_shorthand(value: Any) -> Any:
    """`table: [rows...]` is short for `table: {rows: [rows...]}`."""
    return {"rows": value} if isinstance(value, list) else value


class GivenTable(_Spec):
    """Rows of a table the task reads; types come from `columns`, else from the pipeline's own
    CREATE EXTERNAL TABLE of that table, else from the values."""

    columns: dict[SqlName, str] | None = Field(
        default=None,
        description="Column name → Athena type (int, bigint, double, string, date, "
        "timestamp, array<string>, ...). Optional.",
    )
    rows: list[Row] = Field(description="The table's rows; an empty list is an empty table.")


Given = Annotated[
    GivenTable,
    BeforeValidator(_rows_shorthand),
    WithJsonSchema(
        {
            "anyOf": [
                GivenTable.model_json_schema(),
                {"type": "array", "items": _ROW_SCHEMA, "description": "The table's rows."},
            ]
        }
    ),
]


class Expect(_Spec):
    """What the task's query must answer: its rows, or the single value of a check."""

    rows: list[Row] | None = Field(
        default=None, description="The expected rows: column name → value."
    )
    value: Annotated[Any, WithJsonSchema({"type": ["string", "number", "boolean", "null"]})] = (
        Field(
            default=None,
            description="The one value of a one-row, one-column answer, e.g. true or false for a "
            "data-quality check.",
        )
    )
    partial: bool = Field(
        default=False,
        description="Compare only the columns the expected rows name; other columns are ignored.",
    )
    ordered: bool = Field(
        default=False,
        description="Rows must come in this order (default: any order, as SQL promises).",
    )
    precision: int | None = Field(
        default=None,
        ge=0,
        le=15,
        description="Round floating-point answers to this many decimal places before comparing "
        "(default: equal up to 1e-9 relative).",
    )

    @model_validator(mode="after")
    def _one_answer(self) -> Expect:
        has_value = "value" in self.model_fields_set
        if (self.rows is None) == (not has_value):
            given = "both" if has_value else "neither"
            raise ValueError(f"gives {given} of rows and value; give exactly one")
        if has_value and (self.partial or self.ordered):
            raise ValueError("partial and ordered apply to rows, not to a single value")
        return self


class SqlTest(_Spec):
    """One test: a task's query run on the given rows must answer what `expect` says."""

    name: Identifier = Field(description="The test's name, unique in its file.")
    description: str | None = Field(default=None, description="What the test protects.")
    task: Identifier = Field(
        description="Id of the task under test: an athena (CTAS, INSERT or query), unload, "
        "check or trino task."
    )
    stage: Identifier = Field(
        default="dev",
        description="Resolve stage variables ({{ db.x }}, {{ lake.uri }}) as "
        "this stage does (default dev).",
    )
    logical_date: str | None = Field(
        default=None,
        pattern=LOGICAL_DATE,
        description="Frozen logical date for Airflow macros ({{ ds }}, {{ ts_nodash }}...): "
        "YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS], UTC (default: the pipeline's start_date).",
    )
    given: dict[Annotated[str, Field(pattern=TABLE_KEY)], Given] = Field(
        default_factory=dict,
        description="Tables the task reads, as <database>.<table> with the database's logical "
        "name (movielens.movies) or a stage variable ({{ db.movielens }}.movies).",
    )
    expect: Expect = Field(description=Expect.__doc__)


class SqlTestFile(_Spec):
    """SQL unit tests of one pipeline's tasks, run on DuckDB by `mwaa-elt test`."""

    model_config = ConfigDict(
        title="mwaa-elt SQL tests",
        json_schema_extra={"$id": SCHEMA_ID},
    )

    tests: list[SqlTest] = Field(min_length=1, description="The tests of this file.")


def sqltest_json_schema() -> dict[str, Any]:
    """The test file's JSON Schema (draft 2020-12), derived from the models."""
    from mwaa_elt.spec.schema import SCHEMA_DIALECT

    return {"$schema": SCHEMA_DIALECT, **SqlTestFile.model_json_schema(mode="validation")}


def sqltest_json_schema_text() -> str:
    """The schema as the text of `pipelines/test.schema.json` (sorted keys, final newline)."""
    import json

    return json.dumps(sqltest_json_schema(), indent=2, sort_keys=True) + "\n"
