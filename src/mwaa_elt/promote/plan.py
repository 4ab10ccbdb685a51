"""Build a promotion plan: typed steps computed from data, with no side effects.

The plan says per pipeline whether it is added, updated, unchanged or removed (with a diff of
the DAG file for updates) and lists the exact writes `apply.apply_plan` performs, in order:
scripts and bundles, then DAG files, then the manifest.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from mwaa_elt.errors import ConfigError
from mwaa_elt.promote.bundle import Bundle, content_hash
from mwaa_elt.promote.manifest import Manifest, PipelineRecord, Release
from mwaa_elt.stage import Stage

Action = Literal["added", "updated", "unchanged", "removed"]


@dataclass(frozen=True)
class PipelineBuild:
    """One pipeline rendered for the target stage, with the source bundle it was rendered from."""

    name: str
    bundle: Bundle
    dag_key: str
    dag: bytes
    scripts: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def rendered_hash(self) -> str:
        """sha256 of everything rendered: the DAG file and its scripts, by key."""
        return content_hash({self.dag_key: self.dag, **self.scripts})


@dataclass(frozen=True)
class Identity:
    """Who promotes, when, and from which commit; recorded in the manifest."""

    promoted_by: str
    promoted_at: str
    git_commit: str | None = None


@dataclass(frozen=True)
class UploadScript:
    """Upload an EMR script under its content-addressed key, unless the key already exists."""

    pipeline: str
    key: str
    body: bytes


@dataclass(frozen=True)
class UploadBundle:
    """Upload a pipeline's source bundle under its content-addressed key, unless it exists."""

    pipeline: str
    key: str
    body: bytes


@dataclass(frozen=True)
class WriteDag:
    """Write one DAG file with a single PutObject, so schedulers see the old or the new file."""

    pipeline: str
    key: str
    body: bytes
    rendered_hash: str


@dataclass(frozen=True)
class DeleteDag:
    """Delete a DAG file this tool wrote, recorded in the manifest, for a pruned pipeline."""

    pipeline: str
    key: str


@dataclass(frozen=True)
class WriteManifest:
    """Write the new manifest last, conditional on the ETag read when planning."""

    manifest: Manifest
    expected_etag: str | None
    # Pipelines whose DAG object version id is only known once their WriteDag has run.
    pending_versions: tuple[str, ...] = ()


Step = UploadScript | UploadBundle | WriteDag | DeleteDag | WriteManifest


@dataclass(frozen=True)
class PipelineChange:
    """What the plan does to one pipeline, and the DAG diff when it is updated."""

    pipeline: str
    action: Action
    dag_key: str
    source_hash: str | None  # the version going live; None when removed
    previous_source_hash: str | None  # the version live now; None when added
    rendered_hash: str | None
    diff: str | None = None  # unified diff of the DAG file, for updates whose DAG changed

    def to_dict(self) -> dict[str, object]:
        """The change for `--json` output."""
        return {
            "pipeline": self.pipeline,
            "action": self.action,
            "dag_key": self.dag_key,
            "source_hash": self.source_hash,
            "previous_source_hash": self.previous_source_hash,
            "rendered_hash": self.rendered_hash,
        }


@dataclass(frozen=True)
class Plan:
    """Everything one promotion will change in a stage, as data."""

    stage: str
    source: str  # the stage promoted from, or "working-tree"
    bucket: str
    changes: tuple[PipelineChange, ...]
    steps: tuple[Step, ...]

    @property
    def has_changes(self) -> bool:
        """Whether applying the plan writes anything."""
        return bool(self.steps)

    def count(self, action: Action) -> int:
        """How many pipelines the plan gives `action`."""
        return sum(change.action == action for change in self.changes)


def build_plan(
    stage: Stage,
    builds: Sequence[PipelineBuild],
    manifest: Manifest,
    manifest_etag: str | None,
    *,
    source: str,
    identity: Identity,
    live_dags: Mapping[str, bytes] | None = None,
    prune: bool = False,
) -> Plan:
    """The plan promoting `builds` into `stage`, given its manifest; this has no side effects.

    `live_dags` holds the current DAG files by key (for diffs); with `prune`, pipelines in the
    manifest but not in `builds` are removed, so pass every pipeline of the source then.
    """
    _check_builds(stage, builds)
    live_dags = live_dags or {}
    changes: list[PipelineChange] = []
    uploads: list[Step] = []
    dag_steps: list[Step] = []
    records = dict(manifest.pipelines)
    pending: list[str] = []

    for build in sorted(builds, key=lambda b: b.name):
        record = manifest.pipelines.get(build.name)
        rendered_hash = build.rendered_hash
        dag_changed = record is None or record.rendered_hash != rendered_hash
        source_changed = record is None or record.source_hash != build.bundle.source_hash
        if not dag_changed and not source_changed and record.dag_key == build.dag_key:
            changes.append(_change(build, "unchanged", record))
            continue
        action: Action = "added" if record is None else "updated"
        diff = None
        if record is not None and dag_changed:
            diff = _diff(stage, record.dag_key, live_dags.get(record.dag_key), build)
        changes.append(_change(build, action, record, diff))
        bundle_key = build.bundle.key(stage.bundles_prefix)
        uploads.extend(
            UploadScript(build.name, key, body) for key, body in sorted(build.scripts.items())
        )
        uploads.append(UploadBundle(build.name, bundle_key, build.bundle.data))
        release = Release(
            source_hash=build.bundle.source_hash,
            rendered_hash=rendered_hash,
            bundle_key=bundle_key,
            dag_key=build.dag_key,
            dag_version_id=None if dag_changed or record is None else record.dag_version_id,
            scripts=tuple(sorted(build.scripts)),
            promoted_from=source,
            promoted_at=identity.promoted_at,
            promoted_by=identity.promoted_by,
            git_commit=identity.git_commit,
        )
        if record is None:
            records[build.name] = PipelineRecord(**release.model_dump())
        else:
            records[build.name] = record.succeeded_by(release)
        if dag_changed:
            dag_steps.append(WriteDag(build.name, build.dag_key, build.dag, rendered_hash))
            pending.append(build.name)
        if record is not None and record.dag_key != build.dag_key:
            dag_steps.append(_delete(stage, build.name, record.dag_key))

    if prune:
        kept = {build.name for build in builds}
        for name in sorted(set(manifest.pipelines) - kept):
            record = manifest.pipelines[name]
            changes.append(
                PipelineChange(name, "removed", record.dag_key, None, record.source_hash, None)
            )
            dag_steps.append(_delete(stage, name, record.dag_key))
            del records[name]

    steps: list[Step] = [*uploads, *dag_steps]
    if steps:
        new_manifest = Manifest(stage=stage.name, pipelines=dict(sorted(records.items())))
        steps.append(WriteManifest(new_manifest, manifest_etag, tuple(pending)))
    return Plan(
        stage=stage.name,
        source=source,
        bucket=stage.source_bucket,
        changes=tuple(sorted(changes, key=lambda c: c.pipeline)),
        steps=tuple(steps),
    )


def _change(
    build: PipelineBuild, action: Action, record: PipelineRecord | None, diff: str | None = None
) -> PipelineChange:
    return PipelineChange(
        pipeline=build.name,
        action=action,
        dag_key=build.dag_key,
        source_hash=build.bundle.source_hash,
        previous_source_hash=None if record is None else record.source_hash,
        rendered_hash=build.rendered_hash,
        diff=diff,
    )


def _delete(stage: Stage, pipeline: str, key: str) -> DeleteDag:
    # Only DAG files under the stage's DAG prefix that the manifest records are ever deleted.
    if not key.startswith(stage.dags_prefix) or not key.endswith(".py"):
        raise ConfigError(
            f"manifest of stage {stage.name} records DAG key {key!r} for {pipeline}, outside "
            f"{stage.dags_prefix}; refusing to delete it — fix the manifest by hand"
        )
    return DeleteDag(pipeline, key)


def _diff(stage: Stage, old_key: str, old: bytes | None, build: PipelineBuild) -> str:
    where = f"s3://{stage.source_bucket}/"
    old_lines = [] if old is None else old.decode("utf-8", "replace").splitlines(keepends=True)
    new_lines = build.dag.decode("utf-8", "replace").splitlines(keepends=True)
    return "".join(
        difflib.unified_diff(
            old_lines,
            new_lines,
            fromfile=f"{where}{old_key} (live)",
            tofile=f"{where}{build.dag_key} (planned)",
        )
    )


def _check_builds(stage: Stage, builds: Sequence[PipelineBuild]) -> None:
    names = [build.name for build in builds]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(f"pipelines given more than once: {', '.join(duplicates)}")
    for build in builds:
        if not build.dag_key.startswith(stage.dags_prefix):
            raise ConfigError(
                f"{build.name}: DAG key {build.dag_key!r} is outside {stage.dags_prefix}"
            )
        outside = [key for key in build.scripts if not key.startswith(stage.scripts_prefix)]
        if outside:
            raise ConfigError(
                f"{build.name}: script keys outside {stage.scripts_prefix}: {', '.join(outside)}"
            )
