"""The promotion workflow's pure parts: which gates a plan must pass, and how it is explained."""

from __future__ import annotations

from pathlib import Path

from mwaa_elt.project import Project
from mwaa_elt.promote.apply import ApplyResult
from mwaa_elt.promote.builds import Prepared
from mwaa_elt.promote.execute import Outcome
from mwaa_elt.promote.explain import plan_json, plan_rows, plan_summary, up_to_date_json
from mwaa_elt.promote.manifest import Manifest, PipelineRecord, Written
from mwaa_elt.promote.opening import PromoteRequest
from mwaa_elt.promote.plan import DeleteDag, PipelineChange, Plan, WriteDag, WriteManifest
from mwaa_elt.promote.workflow import (
    AvailableGate,
    DagBagGate,
    RequirementsGate,
    SourceRunsGate,
    promotion_gates,
)
from mwaa_elt.render import RenderResult
from mwaa_elt.stage import Stage

ROOT = Path(__file__).resolve().parents[2]
PROJECT = Project(ROOT)
REQUIREMENTS = ROOT / "infra" / "environment" / "requirements.txt"


def _record(name: str, version: str) -> PipelineRecord:
    return PipelineRecord(
        source_hash=version * 64,
        rendered_hash="r" * 64,
        bundle_key=f".mwaa-elt/bundles/{name}.tar.gz",
        templates_hash="t" * 64,
        templates_key=".mwaa-elt/templates/t.tar.gz",
        dag_key=f"dags/{name}.py",
        promoted_from="staging",
        promoted_at="2026-01-01T00:00:00+00:00",
        promoted_by="arn:aws:iam::333333333333:user/ci",
        tool_version="0",
        history=(),
    )


def _plan(stage: Stage, source: str, *, updated: tuple[str, ...] = (), removed: str = "") -> Plan:
    changes = [
        PipelineChange(name, "updated", f"dags/{name}.py", "b" * 64, "a" * 64, "r" * 64, "diff")
        for name in updated
    ]
    steps: list[WriteDag | DeleteDag | WriteManifest] = [
        WriteDag(name, f"dags/{name}.py", b"dag = 1\n", "r" * 64) for name in updated
    ]
    if removed:
        changes.append(
            PipelineChange(removed, "removed", f"dags/{removed}.py", None, "a" * 64, None)
        )
        steps.append(DeleteDag(removed, f"dags/{removed}.py"))
    manifest = Manifest(stage=stage.name, pipelines={n: _record(n, "b") for n in updated})
    if steps:
        steps.append(WriteManifest(manifest, '"etag"', updated))
    return Plan(stage.name, source, stage.source_bucket, tuple(changes), tuple(steps), '"etag"')


def _prepared(stage: Stage, source: str) -> Prepared:
    render = RenderResult(stage.name, stage.airflow.version, {}, {})
    return Prepared(source, stage, render, (), complete=True)


def test_a_plan_writing_dags_passes_packages_dagbag_source_runs_then_mwaa(stages) -> None:
    prod = stages["prod"]  # requireSourceRunSuccess: true
    plan = _plan(prod, "staging", updated=("sales",))
    request = PromoteRequest(to="prod", source="staging")
    gates = promotion_gates(PROJECT, stages, _prepared(prod, "staging"), plan, request)
    assert gates == (
        RequirementsGate(REQUIREMENTS, ("sales",)),
        DagBagGate(prod.airflow.version, ("sales",)),
        SourceRunsGate(stages["staging"], ("sales",)),
        AvailableGate(prod),
    )


def test_a_plan_alone_needs_no_mwaa_and_skipping_mwaa_drops_its_gates(stages) -> None:
    prod = stages["prod"]
    plan = _plan(prod, "staging", updated=("sales",))
    prepared = _prepared(prod, "staging")
    only_plan = PromoteRequest(to="prod", source="staging", plan_only=True)
    kinds = [type(g) for g in promotion_gates(PROJECT, stages, prepared, plan, only_plan)]
    assert kinds == [RequirementsGate, DagBagGate, SourceRunsGate]
    skip = PromoteRequest(to="prod", source="staging", skip_mwaa_checks=True)
    kinds = [type(g) for g in promotion_gates(PROJECT, stages, prepared, plan, skip)]
    assert kinds == [RequirementsGate, DagBagGate]


def test_a_removal_loads_no_dag_and_a_plan_without_changes_has_no_gates(stages) -> None:
    dev = stages["dev"]
    request = PromoteRequest(to="dev", prune=True)
    prepared = _prepared(dev, "working-tree")
    removal = _plan(dev, "working-tree", removed="old")
    assert promotion_gates(PROJECT, stages, prepared, removal, request) == (AvailableGate(dev),)
    assert promotion_gates(PROJECT, stages, prepared, _plan(dev, "working-tree"), request) == ()


def test_the_explainer_states_the_plan_without_inventing_an_apply(stages) -> None:
    dev = stages["dev"]
    plan = _plan(dev, "working-tree", updated=("sales",), removed="old")
    assert [(r.pipeline, r.action, r.versions) for r in plan_rows(plan)] == [
        ("sales", "updated", f"{'a' * 12} → {'b' * 12}"),
        ("old", "removed", f"{'a' * 12} → -"),
    ]
    assert plan_summary(plan) == (
        "0 added, 1 updated, 0 unchanged, 1 removed; 1 DAG file, 1 DAG deletion, then the manifest"
    )
    data = plan_json(plan, (DagBagGate(dev.airflow.version, ("sales",)),))
    assert data["planned"] == {"uploads": 1, "deletes": 1}
    assert data["gates"] == [
        {"gate": "dagbag", "airflow_version": dev.airflow.version, "pipelines": ["sales"]}
    ]


def test_an_up_to_date_promotion_reports_what_an_empty_apply_would(stages) -> None:
    plan = _plan(stages["dev"], "working-tree")
    # Scripts read `promote --json` the same whether or not anything was applied.
    assert up_to_date_json(plan, plan_only=False) == Outcome(ApplyResult(plan)).to_dict()
    assert up_to_date_json(plan, plan_only=True)["plan_only"] is True


def test_the_manifest_step_is_final_but_for_the_version_ids_and_etags_s3_assigns(stages) -> None:
    plan = _plan(stages["dev"], "working-tree", updated=("sales",))
    step = plan.steps[-1]
    assert isinstance(step, WriteManifest)
    written = step.written({"sales": Written("v2", '"e2"')})
    assert written.pipelines["sales"].dag_version_id == "v2"
    assert written.pipelines["sales"].dag_etag == '"e2"'
    planned = step.manifest.pipelines["sales"]
    assert planned.dag_version_id is None and planned.dag_etag is None  # the plan is not changed
    unassigned = {"dag_version_id": None, "dag_etag": None}
    assert (
        written.model_copy(
            update={
                "pipelines": {"sales": written.pipelines["sales"].model_copy(update=unassigned)}
            }
        )
        == step.manifest
    )
