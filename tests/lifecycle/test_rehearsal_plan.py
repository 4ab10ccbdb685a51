"""The rehearsal plan: decided from the route and the manifest alone, explained step by step."""

from __future__ import annotations

from pathlib import Path

from mwaa_elt.lifecycle.rehearsal import (
    BuildEnvironment,
    CheckConstraints,
    CheckPackages,
    LintAirflow3,
    ListRuntimeDifferences,
    LoadDagBag,
    RenderLive,
    explain,
    plan_rehearsal,
    target_stage,
)
from mwaa_elt.lifecycle.routes import plan_route
from mwaa_elt.project import Project
from mwaa_elt.promote.manifest import Manifest, PipelineRecord
from mwaa_elt.stage import Stage

ROOT = Path(__file__).resolve().parents[2]


def manifest(stage: str, *names: str) -> Manifest:
    records = {
        name: PipelineRecord(
            source_hash=f"{index:064x}",
            rendered_hash="r",
            bundle_key=f".mwaa-elt/bundles/{index:064x}.tar.gz",
            templates_hash="t",
            templates_key=".mwaa-elt/templates/t.tar.gz",
            dag_key=f"dags/{name}.py",
            promoted_from="working-tree",
            promoted_at="2026-01-01T00:00:00+00:00",
            promoted_by="arn:aws:iam::111111111111:user/ci",
            git_commit="abc",
            tool_version="0.1.0",
        )
        for index, name in enumerate(names)
    }
    return Manifest(stage=stage, pipelines=records)


def kinds(plan) -> list[type]:
    return [type(step) for step in plan.steps]


def test_crossing_into_airflow_3_plans_every_gate_lint_and_differences(
    stages: dict[str, Stage],
) -> None:
    staging = stages["staging"]
    plan = plan_rehearsal(
        staging,
        plan_route("2.11.0", "3.0.6"),
        manifest("staging", "b", "a"),
        "s3://bucket/.mwaa-elt/manifest.json",
        Project(ROOT),
        environment_missing=True,
    )
    assert [p.name for p in plan.pipelines] == ["a", "b"]
    assert kinds(plan) == [
        BuildEnvironment,  # first: the DagBag needs it
        RenderLive,
        LoadDagBag,
        CheckPackages,
        CheckConstraints,
        LintAirflow3,
        ListRuntimeDifferences,
    ]
    assert plan.steps[0] == BuildEnvironment("3.0.6", str(ROOT / ".venv-airflow-3.0.6"))
    lines = explain(plan)
    assert len(lines) == len(plan.steps)
    assert lines[0].startswith(f"build {ROOT / '.venv-airflow-3.0.6'}")
    assert "2 live pipeline(s)" in lines[1] and "a, b" in lines[1]


def test_a_minor_upgrade_neither_lints_nor_lists_differences(stages: dict[str, Stage]) -> None:
    plan = plan_rehearsal(
        stages["staging"],
        plan_route("2.11.0", "2.11.2"),
        manifest("staging", "a"),
        "s3://b/m",
        Project(ROOT),
        environment_missing=False,
    )
    assert kinds(plan) == [RenderLive, LoadDagBag, CheckPackages, CheckConstraints]


def test_with_nothing_live_only_the_environment_files_are_checked(
    stages: dict[str, Stage],
) -> None:
    plan = plan_rehearsal(
        stages["staging"],
        plan_route("2.11.0", "3.0.6"),
        manifest("staging"),
        "s3://b/m",
        Project(ROOT),
        environment_missing=True,  # no DAG to load: nothing to build
    )
    assert kinds(plan) == [CheckConstraints, LintAirflow3]


def test_the_target_copy_differs_only_in_its_airflow_version(stages: dict[str, Stage]) -> None:
    staging = stages["staging"]
    copy = target_stage(staging, "3.0.6")
    assert copy.airflow.version == "3.0.6" and staging.airflow.version == "2.11.0"
    assert copy.config.model_dump(exclude={"airflow_version"}) == staging.config.model_dump(
        exclude={"airflow_version"}
    )
    assert (copy.name, copy.source_bucket, copy.dags_prefix) == (
        staging.name,
        staging.source_bucket,
        staging.dags_prefix,
    )
