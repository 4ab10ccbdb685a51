"""The Airflow task ids a spec turns into, so a clash is refused at its line, not at render.

The generator adds tasks of its own: `<id>_clear` before an unload, `<id>_submit` before an EMR
step, `create_cluster` / `terminate_cluster` around EMR work, `publish_datasets` when several
final tasks produce datasets. Render reads the same names from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mwaa_elt.spec.model import EMR_KINDS, TASK_KINDS, stage_clusters

CREATE_CLUSTER = "create_cluster"
TERMINATE_CLUSTER = "terminate_cluster"
PUBLISH = "publish_datasets"
SUBMIT_SUFFIX = "_submit"
CLEAR_SUFFIX = "_clear"

YamlPath = tuple[str | int, ...]

# DAG ids the platform itself deploys (mwaa-dr's DAGs on Airflow 2 stages, `mwaa-elt dr install`;
# mwaa-dr leaves exactly these ids out of the DAGs it unpauses): no pipeline may take them.
PLATFORM_DAG_IDS = {
    "backup_metadata": "mwaa-dr's backup DAG",
    "restore_metadata": "mwaa-dr's restore DAG",
}


def _kind(item: dict[str, Any]) -> str | None:
    kinds = [k for k in TASK_KINDS if isinstance(item.get(k), dict)]
    return kinds[0] if len(kinds) == 1 else None


def _creates_cluster(data: dict[str, Any], stage_names: list[str]) -> bool:
    """True when some stage launches a cluster (no existing_cluster_id there)."""
    merged = stage_clusters(data, stage_names, lambda raw: raw if isinstance(raw, dict) else {})
    return any(not cluster.get("existing_cluster_id") for _, _, cluster in merged)


def _several_sinks(tasks: list[dict[str, Any]]) -> bool:
    upstream = {
        d
        for t in tasks
        if isinstance(t.get("depends_on"), list)
        for d in t["depends_on"]
        if isinstance(d, str)
    }
    ids = [t["id"] for t in tasks if isinstance(t.get("id"), str)]
    return sum(1 for task_id in ids if task_id not in upstream) > 1


def platform_dag_clash(data: Mapping[str, Any]) -> tuple[YamlPath, str] | None:
    """(where, message) when the spec's DAG id is one the platform deploys itself."""
    name = data.get("pipeline")
    if not isinstance(name, str) or name not in PLATFORM_DAG_IDS:
        return None
    return (
        ("pipeline",),
        f"pipeline: '{name}' is the DAG id of {PLATFORM_DAG_IDS[name]}, which `mwaa-elt dr "
        "install` writes to 2.x stages (docs/upgrades.md); rename the pipeline and its file",
    )


def id_clashes(data: Mapping[str, Any], stage_names: list[str]) -> list[tuple[YamlPath, str]]:
    """(where, message) for every spec task id or group that an Airflow task id already uses."""
    raw = data.get("tasks")
    tasks = [
        (i, t) for i, t in enumerate(raw if isinstance(raw, list) else []) if isinstance(t, dict)
    ]
    owners: dict[str, str] = {}  # Airflow id -> what makes it
    claims: list[tuple[str, YamlPath, str]] = []  # (Airflow id, where, what)
    if any(_kind(t) in EMR_KINDS for _, t in tasks) and _creates_cluster(dict(data), stage_names):
        owners[CREATE_CLUSTER] = "the generated task that launches the EMR cluster"
        owners[TERMINATE_CLUSTER] = "the generated task that terminates the EMR cluster"
    if data.get("produces") and _several_sinks([t for _, t in tasks]):
        owners[PUBLISH] = "the generated task that publishes the datasets"
    for index, item in tasks:
        task_id, kind = item.get("id"), _kind(item)
        if not isinstance(task_id, str) or kind is None:
            continue
        group = item.get("group") if isinstance(item.get("group"), str) else None
        prefix = f"{group}." if group else ""
        if group:
            claims.append((group, ("tasks", index, "group"), f"group '{group}'"))
        extra = {"unload": CLEAR_SUFFIX, **dict.fromkeys(EMR_KINDS, SUBMIT_SUFFIX)}.get(kind)
        if extra:
            what = (
                f"the generated task that clears unload '{task_id}''s folder"
                if kind == "unload"
                else f"the generated task that submits EMR step '{task_id}'"
            )
            owners.setdefault(prefix + task_id + extra, what)
        claims.append((prefix + task_id, ("tasks", index, "id"), f"task '{task_id}'"))
    found: list[tuple[YamlPath, str]] = []
    groups = {c[0] for c in claims if c[2].startswith("group ")}
    for airflow_id, where, what in claims:
        if what.startswith("group "):
            continue  # one group has many members; only clashes with it are reported
        other = owners.get(airflow_id)
        if other is None and airflow_id in groups:
            other = f"group '{airflow_id}'"
        if other is not None:
            label = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in where)
            label = label.replace(".[", "[")
            found.append(
                (
                    where,
                    f"{label}: Airflow task id '{airflow_id}' would come from both {what} and "
                    f"{other}; rename {what}",
                )
            )
    return found
