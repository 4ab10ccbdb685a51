"""The example pipelines are documentation: they validate cleanly in every stage and resolve."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from mwaa_elt.spec import (
    discover_specs,
    load_pipelines,
    pipeline_json_schema,
    pipeline_json_schema_text,
    resolve_pipeline,
    validate_paths,
)
from mwaa_elt.spec.model import Pipeline
from mwaa_elt.spec.yaml_source import load_yaml
from mwaa_elt.stage import Stage

ROOT = Path(__file__).resolve().parents[2]
PIPELINES = ROOT / "pipelines"
EXAMPLES = discover_specs(PIPELINES)


def test_the_three_examples_are_found() -> None:
    assert [p.stem for p in EXAMPLES] == ["movielens_emr", "movielens_scifi", "scifi_quality"]


def test_specs_are_found_in_path_order_in_and_beside_their_folders(tmp_path: Path) -> None:
    """`<name>/<name>.yaml` and `<name>.yaml`, sorted as paths sort ("a" before "a-b", though
    "a-b/..." sorts before "a/..." as text); a folder without its spec holds none."""
    for name in ("a-b", "a", "b_c", "B"):
        (tmp_path / name).mkdir()
        (tmp_path / name / f"{name}.yaml").write_text("")
    (tmp_path / "a.yaml").write_text("")
    (tmp_path / "no_spec").mkdir()
    (tmp_path / "no_spec" / "other.yaml").write_text("")
    expected = sorted([*tmp_path.glob("*/*.yaml"), *tmp_path.glob("*.yaml")])
    expected.remove(tmp_path / "no_spec" / "other.yaml")
    assert discover_specs(tmp_path) == expected
    assert [p.relative_to(tmp_path).as_posix() for p in expected][:3] == [
        "B/B.yaml",
        "a/a.yaml",
        "a-b/a-b.yaml",
    ]


def test_examples_validate_cleanly_for_every_stage(stages: dict[str, Stage]) -> None:
    report = validate_paths(EXAMPLES, stages)
    assert [str(p) for p in report.problems] == []
    assert sorted(report.pipelines) == ["movielens_emr", "movielens_scifi", "scifi_quality"]


def test_downstream_pipeline_alone_does_not_find_its_dataset(stages: dict[str, Stage]) -> None:
    quality = PIPELINES / "scifi_quality" / "scifi_quality.yaml"
    problems = validate_paths([quality], stages).problems
    # Alone, its tables (created by movielens_scifi) are missing too; the schedule is the point.
    problems = [p for p in problems if p.message.startswith("schedule.after")]
    assert [(p.line, p.col, p.message) for p in problems] == [
        (
            8,
            20,
            "schedule.after: 'movielens_scifi.scifi': no pipeline 'movielens_scifi' among the specs validated together; known: scifi_quality",
        )
    ]


def test_duplicate_dag_ids_across_specs(stages: dict[str, Stage], tmp_path: Path) -> None:
    source = PIPELINES / "scifi_quality"
    copy = tmp_path / "scifi_quality"
    copy.mkdir()
    (copy / "sql").mkdir()
    (copy / "sql" / "ratings_in_range.sql").write_text(
        (source / "sql" / "ratings_in_range.sql").read_text()
    )
    (copy / "scifi_quality.yaml").write_text((source / "scifi_quality.yaml").read_text())
    problems = validate_paths([*EXAMPLES, copy / "scifi_quality.yaml"], stages).problems
    assert [(p.path, p.line, p.message) for p in problems] == [
        (
            copy / "scifi_quality.yaml",
            4,
            f"pipeline: 'scifi_quality' is also the DAG id of {source / 'scifi_quality.yaml'}; DAG ids must be unique",
        )
    ]


def test_schedule_after_a_dataset_that_is_not_produced(
    stages: dict[str, Stage], tmp_path: Path
) -> None:
    text = (PIPELINES / "scifi_quality" / "scifi_quality.yaml").read_text()
    folder = tmp_path / "scifi_quality"
    (folder / "sql").mkdir(parents=True)
    (folder / "sql" / "ratings_in_range.sql").write_text("SELECT true\n")
    (folder / "scifi_quality.yaml").write_text(
        text.replace("movielens_scifi.scifi]", "movielens_scifi.scifi_exprt]")
    )
    others = [p for p in EXAMPLES if p.stem != "scifi_quality"]
    problems = validate_paths([*others, folder / "scifi_quality.yaml"], stages).problems
    assert [(p.line, p.col, p.message) for p in problems] == [
        (
            8,
            20,
            "schedule.after: 'movielens_scifi.scifi_exprt': pipeline 'movielens_scifi' does not produce 'scifi_exprt' (it produces: scifi, scifi_export); add it to that pipeline's produces, or fix the name",
        )
    ]


@pytest.mark.parametrize("stage_name", ["dev", "staging", "prod"])
def test_examples_resolve_in_each_stage(stages: dict[str, Stage], stage_name: str) -> None:
    stage = stages[stage_name]
    pipelines = load_pipelines(EXAMPLES, stages)
    scifi = resolve_pipeline(pipelines["movielens_scifi"], stage)
    create = next(t for t in scifi.tasks if t.id == "create_scifi")
    assert f"CREATE TABLE {stage_name}_analytics.scifi" in (create.sql or "")
    assert f"s3://{stage.data_lake_bucket}/{stage_name}/analytics/scifi/{{{{ ts_nodash }}}}/" in (
        create.sql or ""
    )
    export = next(t for t in scifi.tasks if t.id == "export_scifi")
    assert export.step.to == f"s3://{stage.data_lake_bucket}/{stage_name}/exports/scifi/"
    order = [t.id for t in scifi.tasks]
    assert order.index("create_database") < order.index("create_movies") < order.index("drop_scifi")
    emr = resolve_pipeline(pipelines["movielens_emr"], stage)
    assert emr.cluster is not None
    assert emr.cluster.core_instance_count == (4 if stage_name == "prod" else 2)
    assert emr.tasks[1].step.args["source_db"] == f"{stage_name}_movielens"
    assert emr.tasks[1].step.args["ds"] == "{{ ds }}"


def test_stage_override_of_schedule_and_paused(stages: dict[str, Stage]) -> None:
    scifi = load_pipelines(EXAMPLES, stages)["movielens_scifi"]
    dev, prod = resolve_pipeline(scifi, stages["dev"]), resolve_pipeline(scifi, stages["prod"])
    assert (dev.schedule, dev.paused) == (None, True)
    assert (prod.schedule, prod.paused) == ("0 6 * * *", False)


def test_json_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(pipeline_json_schema())


def test_json_schema_is_deterministic_and_published() -> None:
    assert pipeline_json_schema() == pipeline_json_schema()
    published = (PIPELINES / "pipeline.schema.json").read_text()
    assert published == pipeline_json_schema_text(), "regenerate pipelines/pipeline.schema.json"


def _properties(schema: dict) -> list[tuple[str, dict]]:
    found = [(f"#/{name}", prop) for name, prop in schema.get("properties", {}).items()]
    for model, definition in schema.get("$defs", {}).items():
        found += [
            (f"{model}.{name}", prop) for name, prop in definition.get("properties", {}).items()
        ]
    return found


def test_every_field_has_a_description_for_editors() -> None:
    missing = [
        name for name, prop in _properties(pipeline_json_schema()) if not prop.get("description")
    ]
    assert missing == []


@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda p: p.stem)
def test_examples_validate_against_the_json_schema(spec: Path) -> None:
    doc, problems = load_yaml(spec.read_bytes())
    assert doc is not None and not problems
    jsonschema.Draft202012Validator(pipeline_json_schema()).validate(doc.data)


def test_json_schema_rejects_what_the_model_rejects() -> None:
    validator = jsonschema.Draft202012Validator(pipeline_json_schema())
    bad = {
        "pipeline": "x",
        "description": "d",
        "owner": "a",
        "start_date": "2024-01-01",
        "tasks": [{"id": "t", "athena": {"sql": "SELECT 1"}, "hive": {"script": "x.hql"}}],
    }
    assert not validator.is_valid(bad)
    assert not validator.is_valid({**bad, "tasks": [{"id": "t"}], "sheduel": "x"})


def test_examples_carry_the_schema_comment() -> None:
    for spec in EXAMPLES:
        assert spec.read_text().startswith(
            "# yaml-language-server: $schema=../pipeline.schema.json"
        )
    assert (
        json.loads((PIPELINES / "pipeline.schema.json").read_text())["title"]
        == Pipeline.model_config["title"]
    )
