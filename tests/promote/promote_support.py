"""Builders and recorders the promotion tests share."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from mwaa_elt.promote.bundle import pack
from mwaa_elt.promote.identity import Identity
from mwaa_elt.promote.plan import PipelineBuild
from mwaa_elt.stage import Stage


@dataclass
class Recorder:
    """Every S3 call a client made, as (operation, key)."""

    calls: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.calls.append((model.name, str(params.get("Key", ""))))

    def writes(self) -> list[tuple[str, str]]:
        return [c for c in self.calls if c[0] in {"PutObject", "DeleteObject", "CopyObject"}]


IDENTITY = Identity(
    promoted_by="arn:aws:iam::123456789012:user/moto",
    promoted_at="2025-01-01T00:00:00+00:00",
    tool_version="0.1.0",
)
TEMPLATES = pack({"dag.py.j2": b"{{ view }}\n"})


def build(
    stage: Stage, name: str, sql: str = "select 1", script: str | None = None
) -> PipelineBuild:
    """A pipeline as the renderer would hand it over: a DAG, maybe a script, and its bundle."""
    source = {f"{name}.yaml": f"name: {name}\n".encode(), "sql/main.sql": sql.encode()}
    scripts: dict[str, bytes] = {}
    if script is not None:
        source["scripts/job.py"] = script.encode()
        sha12 = hashlib.sha256(script.encode()).hexdigest()[:12]
        scripts[f"{stage.scripts_prefix}{name}/{sha12}/job.py"] = script.encode()
    dag = f"# {name} for {stage.name}\nSQL = {sql!r}\nSCRIPTS = {sorted(scripts)!r}\n"
    return PipelineBuild(
        name=name,
        bundle=pack(source),
        templates=TEMPLATES,
        dag_key=f"{stage.dags_prefix}{name}.py",
        dag=dag.encode(),
        scripts=scripts,
        git_commit="abc123",
    )


def plan_for(
    store: Any, builds: list[PipelineBuild], *, prune: bool = False, source: str = "working-tree"
) -> Any:
    """Read the stage's manifest and live DAGs, then build the plan (the CLI's sequence)."""
    from mwaa_elt.promote.plan import build_plan, keys_to_diff

    manifest, etag = store.load_manifest()
    manifest = store.load_histories(manifest, [b.name for b in builds])
    live = store.read_dags(keys_to_diff(builds, manifest))
    return build_plan(
        store.stage,
        builds,
        manifest,
        etag,
        source=source,
        identity=IDENTITY,
        live_dags=live,
        prune=prune,
    )
