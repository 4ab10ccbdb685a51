"""A local run's plan: what the sandbox is seeded with and which DAGs run, without side effects."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mwaa_elt.cli import app
from mwaa_elt.errors import ConfigError
from mwaa_elt.project import Project
from mwaa_elt.run import plan_pipeline_run
from mwaa_elt.run.plan import (
    CreateBucket,
    CreateDatabase,
    CreateRole,
    CreateSubnet,
    CreateTopic,
    CreateWorkgroup,
    PutObject,
    explain,
    sample_objects,
)

ROOT = Path(__file__).resolve().parents[2]
DAY = date(2024, 1, 1)


@pytest.fixture(scope="module")
def quality_plan():  # type: ignore[no-untyped-def]
    return plan_pipeline_run(Project(ROOT), "dev", "scifi_quality", DAY)


def test_a_pipeline_scheduled_after_a_dataset_runs_after_its_producer(quality_plan) -> None:  # type: ignore[no-untyped-def]
    assert [(d.dag_id, d.upstream) for d in quality_plan.dags] == [
        ("movielens_scifi", True),
        ("scifi_quality", False),
    ]
    assert set(quality_plan.files) >= {"dags/movielens_scifi.py", "dags/scifi_quality.py"}


def test_the_sandbox_is_seeded_with_what_the_stage_provisions(quality_plan) -> None:  # type: ignore[no-untyped-def]
    seed = quality_plan.seed
    stage = quality_plan.stage
    assert CreateBucket(stage.source_bucket) in seed
    assert CreateBucket(stage.data_lake_bucket) in seed
    assert CreateWorkgroup("mwaa-elt-dev", stage.athena_results_uri) in seed
    assert {s.name for s in seed if isinstance(s, CreateDatabase)} == {
        "dev_movielens",
        "dev_analytics",
        "dev_ops",
    }
    assert {s.name for s in seed if isinstance(s, CreateRole)} == {
        "mwaa-elt-dev-emr-service",
        "mwaa-elt-dev-emr-ec2",
    }
    assert CreateTopic("mwaa-elt-dev-data-alerts") in seed
    (subnet,) = [s for s in seed if isinstance(s, CreateSubnet)]
    assert subnet.secret_name == "mwaa-elt/dev/variables/emr_subnet_id"


def test_samples_land_at_the_keys_their_folders_name(quality_plan) -> None:  # type: ignore[no-untyped-def]
    uploads = {s.uri: s.origin for s in quality_plan.seed if isinstance(s, PutObject)}
    lake = "s3://mwaa-elt-dev-lake-111111111111/"
    assert uploads == {
        f"{lake}landing/movielens/movies/movies.csv": (
            "movielens_scifi/samples/lake/landing/movielens/movies/movies.csv"
        ),
        f"{lake}landing/movielens/ratings/ratings.csv": (
            "movielens_scifi/samples/lake/landing/movielens/ratings/ratings.csv"
        ),
    }
    lines = explain(quality_plan)
    assert lines[-2:] == [
        "run DAG movielens_scifi (upstream, logical date 2024-01-01)",
        "run DAG scifi_quality (logical date 2024-01-01)",
    ]


def test_an_emr_pipelines_scripts_are_uploaded_where_its_dag_points() -> None:
    plan = plan_pipeline_run(Project(ROOT), "dev", "movielens_emr", DAY)
    dag = plan.files["dags/movielens_emr.py"].decode()
    scripts = [s for s in plan.seed if isinstance(s, PutObject) and "/scripts/" in s.uri]
    assert len(scripts) == 2
    for script in scripts:
        assert script.uri in dag


def test_a_sample_outside_the_known_roots_is_refused_with_its_path(tmp_path: Path) -> None:
    from mwaa_elt.spec import discover_specs, validate_paths
    from mwaa_elt.stage import load_all_stages

    stages = load_all_stages(ROOT / "stacks")
    report = validate_paths(discover_specs(ROOT / "pipelines"), stages)
    pipeline = report.pipelines["movielens_scifi"]
    stray = tmp_path / "samples" / "landing" / "x.csv"
    stray.parent.mkdir(parents=True)
    stray.write_text("a\n")
    moved = pipeline.model_copy()
    moved._source = tmp_path / "movielens_scifi.yaml"  # as if the spec lived in tmp_path
    with pytest.raises(ConfigError, match=r"x\.csv: a sample file outside the known roots"):
        sample_objects(moved, stages["dev"])


def test_unknown_pipeline_and_bad_date_are_refused_before_anything_runs() -> None:
    runner = CliRunner()
    unknown = runner.invoke(app, ["run", "nope", "--stage", "dev", "-C", str(ROOT)])
    assert unknown.exit_code == 1
    assert "no pipeline named nope" in str(unknown.exception)
    bad = runner.invoke(app, ["run", "movielens_scifi", "--stage", "dev", "--date", "01/02/2024"])
    assert bad.exit_code == 2
