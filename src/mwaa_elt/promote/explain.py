"""The plan explainer: a promotion's plan and gates as table rows, summary lines and JSON.

It decides nothing and writes nothing; the CLI styles what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass

from mwaa_elt.promote.plan import (
    DeleteDag,
    PipelineChange,
    Plan,
    UploadBundle,
    UploadPack,
    UploadScript,
    UploadTemplates,
    WriteDag,
)
from mwaa_elt.promote.workflow import (
    AvailableGate,
    DagBagGate,
    Gate,
    RequirementsGate,
    SourceRunsGate,
)

JsonValue = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]

_STEP_KINDS = (
    (UploadScript, "script", "scripts"),
    (UploadBundle, "source bundle", "source bundles"),
    (UploadPack, "pack of source bundles", "packs of source bundles"),
    (UploadTemplates, "templates snapshot", "templates snapshots"),
    (WriteDag, "DAG file", "DAG files"),
    (DeleteDag, "DAG deletion", "DAG deletions"),
)
_ACTIONS = ("added", "updated", "unchanged", "removed", "rolled_back", "repaired")


@dataclass(frozen=True)
class PlanRow:
    """One pipeline of the plan table: what happens to it, and its versions live → planned."""

    pipeline: str
    action: str
    versions: str
    dag_key: str


def short_hash(value: str | None) -> str:
    """A version (source hash) cut to 12 hex digits, as tables show it."""
    return value[:12] if value else "-"


def plan_title(plan: Plan) -> str:
    """The plan table's title: the route and the bucket."""
    return f"plan: {plan.source} → {plan.stage} (s3://{plan.bucket})"


def plan_rows(plan: Plan) -> list[PlanRow]:
    """Per pipeline, what the plan does to it."""
    rows = []
    for change in plan.changes:
        versions = (
            short_hash(change.source_hash)
            if change.action == "unchanged"
            else f"{short_hash(change.previous_source_hash)} → {short_hash(change.source_hash)}"
        )
        rows.append(PlanRow(change.pipeline, change.action, versions, change.dag_key))
    return rows


def plan_summary(plan: Plan) -> str:
    """One line: how many pipelines per action, then what is written."""
    parts = _writes(plan)
    counts = ", ".join(
        f"{plan.count(a)} {a.replace('_', ' ')}"
        for a in _ACTIONS
        if plan.count(a) or a not in {"rolled_back", "repaired"}
    )
    if plan.recorded:
        parts.append(f"the live version of {len(plan.recorded)} DAG file(s) recorded")
    writes = f"{', '.join(parts)}, then the manifest" if parts else "nothing to write"
    return f"{counts}; {writes}"


def _writes(plan: Plan) -> list[str]:
    """How many objects of each kind the plan writes ("2 scripts", "1 DAG file")."""
    parts = []
    for kind, one, many in _STEP_KINDS:
        steps = [step for step in plan.steps if isinstance(step, kind)]
        if not steps:
            continue
        part = f"{len(steps)} {one if len(steps) == 1 else many}"
        if kind is UploadPack:
            packed = sum(len(s.pipelines) for s in plan.steps if isinstance(s, UploadPack))
            part += f" ({packed} pipelines)"
        parts.append(part)
    return parts


def plan_diffs(plan: Plan) -> list[str]:
    """The unified diffs of the DAG files the plan changes."""
    return [change.diff for change in plan.changes if change.diff]


def kept_line(kept: tuple[str, ...]) -> str | None:
    """The line naming live pipelines the source no longer has, kept without --prune."""
    if not kept:
        return None
    return f"kept, though the source no longer has them: {', '.join(kept)} (--prune removes them)"


def gate_title(gate: Gate) -> str:
    """What a gate checks, as its progress line shows it."""
    match gate:
        case RequirementsGate(pipelines=pipelines):
            return f"package gate: what {len(pipelines)} DAG(s) import is installed…"
        case DagBagGate(airflow_version=version, pipelines=pipelines):
            return f"integrity gate: {len(pipelines)} DAG(s) in DagBag under Airflow {version}…"
        case SourceRunsGate(source=source):
            return f"gate: latest runs in {source.name} succeeded…"
        case AvailableGate(stage=stage):
            return f"gate: MWAA environment {stage.environment_name} is AVAILABLE…"


def gate_json(gate: Gate) -> dict[str, JsonValue]:
    """One gate for `--json`: its kind and what it covers."""
    match gate:
        case RequirementsGate(requirements=requirements, pipelines=pipelines):
            return {
                "gate": "packages",
                "requirements": requirements.name,
                "pipelines": [*pipelines],
            }
        case DagBagGate(airflow_version=version, pipelines=pipelines):
            return {"gate": "dagbag", "airflow_version": version, "pipelines": [*pipelines]}
        case SourceRunsGate(source=source, pipelines=pipelines):
            return {"gate": "source_runs", "source": source.name, "pipelines": [*pipelines]}
        case AvailableGate(stage=stage):
            return {"gate": "mwaa_available", "environment": stage.environment_name}


def plan_json(plan: Plan, gates: tuple[Gate, ...] = ()) -> dict[str, JsonValue]:
    """`promote --plan --json`: the planned writes (nothing uploaded or deleted), the gates
    passed, and per pipeline its change with the DAG diff."""
    return {
        "stage": plan.stage,
        "from": plan.source,
        "plan_only": True,
        "uploaded": 0,
        "deleted": 0,
        "unchanged": plan.count("unchanged"),
        "planned": {
            "uploads": sum(isinstance(s, WriteDag | UploadScript) for s in plan.steps),
            "deletes": sum(isinstance(s, DeleteDag) for s in plan.steps),
        },
        "gates": [gate_json(gate) for gate in gates],
        "pipelines": [{**_change_json(c), "diff": c.diff} for c in plan.changes],
    }


def up_to_date_json(plan: Plan, *, plan_only: bool) -> dict[str, JsonValue]:
    """`promote --json` when nothing changes: the shape of an applied promotion, all zero."""
    data: dict[str, JsonValue] = {
        "stage": plan.stage,
        "from": plan.source,
        "uploaded": 0,
        "deleted": 0,
        "unchanged": plan.count("unchanged"),
        "pipelines": [_change_json(change) for change in plan.changes],
        "verification": None,
        "rolled_back": [],
    }
    return {**data, "plan_only": True} if plan_only else data


def _change_json(change: PipelineChange) -> dict[str, JsonValue]:
    return {
        "pipeline": change.pipeline,
        "action": change.action,
        "dag_key": change.dag_key,
        "source_hash": change.source_hash,
        "previous_source_hash": change.previous_source_hash,
        "rendered_hash": change.rendered_hash,
    }
