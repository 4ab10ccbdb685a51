"""Render-time stage variables resolve per stage; Airflow's run-time Jinja stays byte for byte."""

from __future__ import annotations

import pytest

from mwaa_elt.errors import ConfigError
from mwaa_elt.spec import resolve_stage_vars
from mwaa_elt.spec.stage_vars import placeholder_text
from mwaa_elt.stage import Stage

TEMPLATE = """\
-- {{ stage.name }} in {{ athena.workgroup }}
SELECT * FROM {{ db.movielens }}.ratings
WHERE ds = '{{ ds }}'{% if params.full %} OR ds = '{{ macros.ds_add(ds, -1) }}'{% endif %}
-- {{ lake.uri }}x/ {{lake.bucket_uri}} {{ lake.prefix }} {{ athena.results_uri }}
"""


@pytest.mark.parametrize("name", ["dev", "staging", "prod"])
def test_each_stage_gets_its_own_names(stages: dict[str, Stage], name: str) -> None:
    stage = stages[name]
    resolved = resolve_stage_vars(TEMPLATE, stage, source="t.sql", line_offset=0)
    bucket = stage.data_lake_bucket
    assert resolved == (
        f"-- {name} in {stage.athena_workgroup}\n"
        f"SELECT * FROM {name}_movielens.ratings\n"
        "WHERE ds = '{{ ds }}'{% if params.full %} OR ds = '{{ macros.ds_add(ds, -1) }}'{% endif %}\n"
        f"-- s3://{bucket}/{name}/x/ s3://{bucket}/ {name}/ {stage.athena_results_uri}\n"
    )


def test_text_without_stage_variables_is_unchanged(stages: dict[str, Stage]) -> None:
    text = "{%- set x = 1 -%}\n{{ ds }} {{ dag_run.conf.get('x') }} {# note #} {{ '{{' }}\n"
    assert resolve_stage_vars(text, stages["dev"], source="t.sql") == text


def test_unknown_database_is_a_located_error(stages: dict[str, Stage]) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_stage_vars(
            "SELECT 1\nFROM {{ db.unknown }}.t\n", stages["dev"], source="q.sql", line_offset=10
        )
    assert info.value.messages == [
        "q.sql:12:6: 'unknown' is not a Glue database of any stage; known: movielens, analytics, ops"
    ]


def test_every_bad_reference_is_reported(stages: dict[str, Stage]) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_stage_vars("{{ db }} {{ stage.id }}", stages["prod"], source="q.sql")
    assert info.value.messages == [
        "q.sql:1:1: 'db' needs an attribute: write {{ db.movielens }}",
        "q.sql:1:10: 'stage.id' is not a stage variable; stage has: name",
    ]


def test_placeholders_keep_lines_and_columns() -> None:
    text = "SELECT '{{ ds }}'\n{% if x %}AND a{% else %}AND b{% endif %}\n{# c #}x"
    result = placeholder_text(text)
    assert len(result) == len(text)
    assert [line.rstrip() for line in result.split("\n")] == [
        "SELECT 'j_______'",
        "          AND a",
        "       x",
    ]
    assert [len(line) for line in result.split("\n")] == [len(line) for line in text.split("\n")]
