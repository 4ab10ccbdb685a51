"""Build a promotion plan: typed steps computed from data, with no side effects.

The plan says per pipeline whether it is added, updated, unchanged or removed (with a diff of
the DAG file for updates) and lists the exact writes `apply.apply_plan` performs, in order:
scripts, source bundles (several in one pack, `promote.packs`) and template snapshots, then DAG
files, then the manifest.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from mwaa_elt.errors import ConfigError
from mwaa_elt.promote.bundle import Bundle, content_hash
from mwaa_elt.promote.manifest import Inputs, Manifest, PipelineRecord, Release, Written
from mwaa_elt.promote.packs import SMALLEST_PACK, pack_bundles
from mwaa_elt.stage import Stage

if TYPE_CHECKING:
    from mwaa_elt.promote.identity import Identity
    from mwaa_elt.promote.status import LiveDag

# "repaired": the manifest's version is unchanged, but its DAG object holds other bytes (a raced
# or interrupted write, a hand edit), so the recorded file is written again.
Action = Literal["added", "updated", "unchanged", "removed", "rolled_back", "repaired"]


@dataclass(frozen=True)
class PipelineBuild:
    """One pipeline rendered for the target stage, with the sources it was rendered from."""

    name: str
    bundle: Bundle  # the pipeline's folder: spec, SQL, scripts
    templates: Bundle  # the dag_templates/ it was rendered with
    dag_key: str
    dag: bytes
    scripts: Mapping[str, bytes] = field(default_factory=dict)
    git_commit: str | None = None
    sql_unchecked: tuple[str, ...] = ()  # "<task>: <why>" of tasks with skip_sql_checks
    inputs: Inputs | None = None  # what it was rendered from, digested (`promote.inputs`)

    @property
    def rendered_hash(self) -> str:
        """sha256 of everything rendered: the DAG file and its scripts, by key."""
        return content_hash({self.dag_key: self.dag, **self.scripts})


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
class UploadPack:
    """Upload the source bundles of several pipelines as one content-addressed object (a pack,
    `promote.packs`), unless it exists."""

    pipelines: tuple[str, ...]
    key: str
    body: bytes


@dataclass(frozen=True)
class UploadTemplates:
    """Upload a snapshot of dag_templates/ under its content-addressed key, unless it exists."""

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
    """Delete a DAG file this tool wrote, recorded in the manifest (a removed pipeline)."""

    pipeline: str
    key: str


@dataclass(frozen=True)
class WriteManifest:
    """Write the new manifest last, conditional on the ETag read when planning."""

    manifest: Manifest
    expected_etag: str | None
    # Pipelines whose DAG object version id is only known once their WriteDag has run.
    pending_versions: tuple[str, ...] = ()

    def written(self, dags: Mapping[str, Written]) -> Manifest:
        """The manifest to write: the planned one with the version ids and ETags S3 gave the
        DAG files of `pending_versions` (the only part a plan cannot know); the step is not
        changed."""
        records = dict(self.manifest.pipelines)
        for name in self.pending_versions:
            dag = dags.get(name, Written(None, None))
            records[name] = records[name].model_copy(
                update={"dag_version_id": dag.version_id, "dag_etag": dag.etag}
            )
        return self.manifest.model_copy(update={"pipelines": records})


Step = (
    UploadScript
    | UploadBundle
    | UploadPack
    | UploadTemplates
    | WriteDag
    | DeleteDag
    | WriteManifest
)


@dataclass(frozen=True)
class PipelineChange:
    """What the plan does to one pipeline, and the DAG diff when its DAG file changes."""

    pipeline: str
    action: Action
    dag_key: str
    source_hash: str | None  # the version going live; None when removed
    previous_source_hash: str | None  # the version live now; None when added
    rendered_hash: str | None
    diff: str | None = None  # unified diff of the DAG file, when it changes

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
    """Everything one promotion (or rollback) will change in a stage, as data."""

    stage: str
    source: str  # the stage promoted from, "working-tree", or "rollback"
    bucket: str
    changes: tuple[PipelineChange, ...]
    steps: tuple[Step, ...]
    manifest_etag: str | None = None  # the manifest the plan was built against
    # Unchanged pipelines whose recorded bytes are live under another S3 version: the manifest
    # is rewritten to record the live version (no DAG file is written for them).
    recorded: tuple[str, ...] = ()

    # The manifest is rewritten only to record the inputs of pipelines whose DAGs render as
    # recorded, from inputs digested otherwise (mwaa-elt changed, or records predate digests).
    inputs_only: bool = False

    @property
    def has_changes(self) -> bool:
        """Whether applying the plan writes anything but new input digests."""
        return bool(self.steps) and not self.inputs_only

    @property
    def records_only(self) -> bool:
        """Whether the plan only records input digests in the manifest (`inputs_only`)."""
        return bool(self.steps) and self.inputs_only

    def count(self, action: Action) -> int:
        """How many pipelines the plan gives `action`."""
        return sum(change.action == action for change in self.changes)

    def changed(self) -> list[str]:
        """Pipelines whose DAG file the plan writes (added, updated or rolled back)."""
        return [step.pipeline for step in self.steps if isinstance(step, WriteDag)]


def _dag_changed(build: PipelineBuild, record: PipelineRecord | None) -> bool:
    return record is None or record.rendered_hash != build.rendered_hash


def _is_unchanged(build: PipelineBuild, record: PipelineRecord | None) -> bool:
    return (
        record is not None
        and not _dag_changed(build, record)
        and record.source_hash == build.bundle.source_hash
        and record.templates_hash == build.templates.source_hash
        and record.dag_key == build.dag_key
    )


@dataclass(frozen=True)
class _BundlePlaces:
    """Where the source bundle of each moving pipeline is stored: `(key, range)` by pipeline;
    the pipelines whose bundle is uploaded as an object of its own, and the packs to upload."""

    places: dict[str, tuple[str, tuple[int, int] | None]]
    alone: frozenset[str]
    packs: tuple[UploadPack, ...]


def _place_bundles(
    stage: Stage, moving: Sequence[PipelineBuild], manifest: Manifest, present: set[str]
) -> _BundlePlaces:
    """A bundle already stored (its own object, or a pack a live record points into) is used
    where it is; new ones go into packs when there are at least `SMALLEST_PACK` of them."""
    stored = {
        record.source_hash: (record.bundle_key, record.bundle_range)
        for record in manifest.pipelines.values()
    }
    places: dict[str, tuple[str, tuple[int, int] | None]] = {}
    new: list[PipelineBuild] = []
    for build in moving:
        own_key = build.bundle.key(stage.bundles_prefix)
        if own_key in present:
            places[build.name] = (own_key, None)
        elif build.bundle.source_hash in stored:
            places[build.name] = stored[build.bundle.source_hash]
        else:
            new.append(build)
    if len({build.bundle.source_hash for build in new}) < SMALLEST_PACK:
        for build in new:
            places[build.name] = (build.bundle.key(stage.bundles_prefix), None)
        return _BundlePlaces(places, frozenset(build.name for build in new), ())
    names: dict[str, list[str]] = {}
    for build in new:
        names.setdefault(build.bundle.source_hash, []).append(build.name)
    uploads = []
    for pack in pack_bundles(build.bundle for build in new):
        key = pack.key(stage.bundles_prefix)
        packed = sorted(name for source_hash in pack.ranges for name in names[source_hash])
        uploads.append(UploadPack(tuple(packed), key, pack.data))
        for source_hash, bundle_range in pack.ranges.items():
            places.update(dict.fromkeys(names[source_hash], (key, bundle_range)))
    return _BundlePlaces(places, frozenset(), tuple(uploads))


def keys_to_diff(builds: Sequence[PipelineBuild], manifest: Manifest) -> list[str]:
    """The live DAG keys a plan shows diffs for: only pipelines whose DAG file changes."""
    keys = []
    for build in builds:
        record = manifest.pipelines.get(build.name)
        if record is not None and _dag_changed(build, record):
            keys.append(record.dag_key)
    return sorted(keys)


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
    unchanged: Sequence[str] = (),
    off_record: Mapping[str, LiveDag | None] | None = None,
) -> Plan:
    """The plan promoting `builds` into `stage`, given its manifest; this has no side effects.

    `live_dags` holds the current DAG files by key (`keys_to_diff`, for diffs); with `prune`,
    pipelines in the manifest but not in `builds` are removed, so pass every pipeline then.
    `unchanged` names pipelines whose inputs the manifest records as they are now
    (`promote.inputs`): they were not rendered and stay as they are.
    `off_record` (`status.off_record`) names pipelines whose DAG object is not the recorded
    version: an unchanged one is converged by content — its live version recorded when it holds
    the recorded bytes, its recorded file written again when it does not.
    """
    _check_builds(stage, builds, unchanged, manifest)
    live_dags = live_dags or {}
    off_record = off_record or {}
    recorded: list[str] = []
    changes: list[PipelineChange] = []
    uploads: list[Step] = []
    templates: dict[str, UploadTemplates] = {}
    dag_steps: list[Step] = []
    records = dict(manifest.pipelines)
    pending: list[str] = []
    # Content-addressed objects live records point at are in the bucket: no need to send them.
    present = {
        key
        for record in manifest.pipelines.values()
        for key in (record.bundle_key, record.templates_key, *record.scripts)
    }

    bundles = _place_bundles(
        stage,
        [b for b in builds if not _is_unchanged(b, manifest.pipelines.get(b.name))],
        manifest,
        present,
    )

    refreshed = False
    for name in unchanged:
        record = manifest.pipelines[name]
        changes.append(
            PipelineChange(
                name,
                "unchanged",
                record.dag_key,
                record.source_hash,
                record.source_hash,
                record.rendered_hash,
            )
        )
    for build in sorted(builds, key=lambda b: b.name):
        record = manifest.pipelines.get(build.name)
        if _is_unchanged(build, record):
            assert record is not None
            if build.inputs is not None and record.inputs != build.inputs:
                # Rendered as recorded from inputs digested otherwise (mwaa-elt changed, or
                # the record predates digests): record them, so the next promotion skips it.
                # The same bytes render for this Airflow version too: record it as theirs.
                update = {"inputs": build.inputs, "airflow_version": stage.airflow.version}
                record = record.model_copy(update=update)
                records[build.name] = record
                refreshed = True
            if build.name not in off_record:
                changes.append(_change(build, "unchanged", record))
                continue
            live = off_record[build.name]
            if live is not None and live.rendered_hash == record.rendered_hash:
                records[build.name] = record.model_copy(
                    update={"dag_version_id": live.version_id, "dag_etag": live.etag}
                )
                recorded.append(build.name)
                changes.append(_change(build, "unchanged", record))
                continue
            changes.append(_change(build, "repaired", record))
            dag_steps.append(WriteDag(build.name, build.dag_key, build.dag, build.rendered_hash))
            pending.append(build.name)
            continue
        dag_changed = _dag_changed(build, record)
        action: Action = "added" if record is None else "updated"
        diff = None
        if record is not None and dag_changed:
            diff = _text_diff(
                stage, record.dag_key, live_dags.get(record.dag_key), build.dag_key, build.dag
            )
        changes.append(_change(build, action, record, diff))
        source_key, source_range = bundles.places[build.name]
        templates_key = build.templates.key(stage.templates_prefix)
        uploads.extend(
            UploadScript(build.name, key, body)
            for key, body in sorted(build.scripts.items())
            if key not in present
        )
        if build.name in bundles.alone:
            uploads.append(UploadBundle(build.name, source_key, build.bundle.data))
        if templates_key not in present:
            templates.setdefault(
                templates_key, UploadTemplates(templates_key, build.templates.data)
            )
        release = Release(
            source_hash=build.bundle.source_hash,
            rendered_hash=build.rendered_hash,
            bundle_key=source_key,
            bundle_range=source_range,
            templates_hash=build.templates.source_hash,
            templates_key=templates_key,
            dag_key=build.dag_key,
            dag_version_id=None if dag_changed or record is None else record.dag_version_id,
            dag_etag=None if dag_changed or record is None else record.dag_etag,
            scripts=tuple(sorted(build.scripts)),
            promoted_from=source,
            promoted_at=identity.promoted_at,
            promoted_by=identity.promoted_by,
            git_commit=build.git_commit,
            tool_version=identity.tool_version,
            sql_unchecked=build.sql_unchecked,
            inputs=build.inputs,
            airflow_version=stage.airflow.version,
        )
        records[build.name] = (
            PipelineRecord(**release.model_dump())
            if record is None
            else record.succeeded_by(release)
        )
        if dag_changed:
            dag_steps.append(WriteDag(build.name, build.dag_key, build.dag, build.rendered_hash))
            pending.append(build.name)
        if record is not None and record.dag_key != build.dag_key:
            dag_steps.append(_delete(stage, build.name, record.dag_key))

    if prune:
        kept = {build.name for build in builds} | set(unchanged)
        for name in sorted(set(manifest.pipelines) - kept):
            record = manifest.pipelines[name]
            changes.append(
                PipelineChange(name, "removed", record.dag_key, None, record.source_hash, None)
            )
            dag_steps.append(_delete(stage, name, record.dag_key))
            del records[name]

    steps: list[Step] = [*uploads, *bundles.packs, *templates.values(), *dag_steps]
    if steps or recorded or refreshed:
        new_manifest = Manifest(stage=stage.name, pipelines=dict(sorted(records.items())))
        steps.append(WriteManifest(new_manifest, manifest_etag, tuple(pending)))
    return Plan(
        stage=stage.name,
        source=source,
        bucket=stage.source_bucket,
        changes=tuple(sorted(changes, key=lambda c: c.pipeline)),
        steps=tuple(steps),
        manifest_etag=manifest_etag,
        recorded=tuple(recorded),
        inputs_only=refreshed and not steps[:-1] and not recorded,
    )


def find_release(record: PipelineRecord, source_hash: str | None) -> Release:
    """The release to roll back to: the one before the live one, or the one `source_hash` names.

    `source_hash` may be a prefix (as `status` prints it) and may name the live release itself,
    which rewrites the recorded DAG over one changed outside mwaa-elt.
    """
    releases = [record.release(), *record.history]
    if source_hash is None:
        if not record.history:
            raise ConfigError(
                f"{record.dag_key}: no earlier version in the manifest's history to roll back to"
            )
        return record.history[0]
    matches = [r for r in releases if r.source_hash.startswith(source_hash)]
    distinct = {r.source_hash for r in matches}
    if not matches:
        known = ", ".join(r.source_hash[:12] for r in releases)
        raise ConfigError(f"--to {source_hash}: no such version in the history; known: {known}")
    if len(distinct) > 1:
        raise ConfigError(f"--to {source_hash}: ambiguous prefix; give more characters")
    return matches[0]


def build_rollback_plan(
    stage: Stage,
    manifest: Manifest,
    manifest_etag: str | None,
    targets: Mapping[str, tuple[Release, bytes] | None],
    *,
    identity: Identity,
    live_dags: Mapping[str, bytes] | None = None,
) -> Plan:
    """Restore each pipeline in `targets` to a recorded release (its DAG bytes given), or
    remove it when the target is None (a pipeline that had no earlier version)."""
    live_dags = live_dags or {}
    records = dict(manifest.pipelines)
    changes: list[PipelineChange] = []
    dag_steps: list[Step] = []
    pending: list[str] = []
    for name in sorted(targets):
        record = manifest.pipelines.get(name)
        if record is None:
            raise ConfigError(f"no pipeline {name} is live in stage {stage.name}")
        target = targets[name]
        if target is None:
            changes.append(
                PipelineChange(name, "removed", record.dag_key, None, record.source_hash, None)
            )
            dag_steps.append(_delete(stage, name, record.dag_key))
            del records[name]
            continue
        release, dag = target
        old = live_dags.get(record.dag_key)
        diff = _text_diff(stage, record.dag_key, old, release.dag_key, dag)
        changes.append(
            PipelineChange(
                name,
                "rolled_back",
                release.dag_key,
                release.source_hash,
                record.source_hash,
                release.rendered_hash,
                diff,
            )
        )
        restored = release.model_copy(
            update={
                "dag_version_id": None,
                "dag_etag": None,
                "promoted_from": "rollback",
                "promoted_at": identity.promoted_at,
                "promoted_by": identity.promoted_by,
            }
        )
        records[name] = record.succeeded_by(restored)
        dag_steps.append(WriteDag(name, release.dag_key, dag, release.rendered_hash))
        pending.append(name)
        if record.dag_key != release.dag_key:
            dag_steps.append(_delete(stage, name, record.dag_key))
    steps: list[Step] = list(dag_steps)
    if steps:
        new_manifest = Manifest(stage=stage.name, pipelines=dict(sorted(records.items())))
        steps.append(WriteManifest(new_manifest, manifest_etag, tuple(pending)))
    return Plan(
        stage=stage.name,
        source="rollback",
        bucket=stage.source_bucket,
        changes=tuple(changes),
        steps=tuple(steps),
        manifest_etag=manifest_etag,
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


def _text_diff(stage: Stage, old_key: str, old: bytes | None, new_key: str, new: bytes) -> str:
    where = f"s3://{stage.source_bucket}/"
    old_lines = [] if old is None else old.decode("utf-8", "replace").splitlines(keepends=True)
    new_lines = new.decode("utf-8", "replace").splitlines(keepends=True)
    return "".join(
        difflib.unified_diff(
            old_lines,
            new_lines,
            fromfile=f"{where}{old_key} (live)",
            tofile=f"{where}{new_key} (planned)",
        )
    )


def _check_builds(
    stage: Stage, builds: Sequence[PipelineBuild], unchanged: Sequence[str], manifest: Manifest
) -> None:
    names = [build.name for build in builds] + list(unchanged)
    unknown = sorted(set(unchanged) - set(manifest.pipelines))
    if unknown:
        raise ConfigError(f"not live in stage {stage.name}, so not unchanged: {', '.join(unknown)}")
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
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
