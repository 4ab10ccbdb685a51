"""What is live in a stage: the manifest's records, checked against the bucket for drift."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from mwaa_elt.promote.lock import LockInfo, read_lock
from mwaa_elt.promote.manifest import PipelineRecord
from mwaa_elt.promote.store import RENDERED_HASH_METADATA, StageStore

Drift = Literal["in sync", "unfinished promotion", "changed outside mwaa-elt", "missing"]
# A DAG object mwaa-elt wrote that the manifest does not record yet: a promotion stopped
# between its DAG writes and its manifest write. Re-running the promotion completes it.
UNFINISHED = "unfinished promotion"


@dataclass(frozen=True)
class PipelineStatus:
    """One live pipeline: its manifest record and whether its DAG object still matches it."""

    name: str
    record: PipelineRecord
    drift: Drift

    def to_dict(self) -> dict[str, Any]:
        """The pipeline's status for `status --json`."""
        record = self.record
        return {
            "pipeline": self.name,
            "source_hash": record.source_hash,
            "rendered_hash": record.rendered_hash,
            "dag_key": record.dag_key,
            "dag_version_id": record.dag_version_id,
            "promoted_from": record.promoted_from,
            "promoted_at": record.promoted_at,
            "promoted_by": record.promoted_by,
            "git_commit": record.git_commit,
            "drift": self.drift,
            "history": [r.source_hash for r in record.history],
        }


@dataclass(frozen=True)
class StageStatus:
    """Everything `mwaa-elt status` reports for one stage."""

    stage: str
    bucket: str
    pipelines: tuple[PipelineStatus, ...]
    unmanaged: tuple[str, ...]  # DAG files in the bucket that no promotion wrote
    unfinished: tuple[str, ...]  # DAG files of pipelines an unfinished promotion added
    lock: LockInfo | None

    @property
    def drifted(self) -> list[str]:
        """Pipelines whose DAG object no longer is what the manifest records."""
        return [p.name for p in self.pipelines if p.drift != "in sync"]

    def to_dict(self) -> dict[str, Any]:
        """The status for `status --json`."""
        return {
            "stage": self.stage,
            "bucket": self.bucket,
            "pipelines": [p.to_dict() for p in self.pipelines],
            "drifted": self.drifted,
            "unmanaged_dags": list(self.unmanaged),
            "unfinished_dags": list(self.unfinished),
            "lock": None if self.lock is None else asdict(self.lock),
        }


@dataclass(frozen=True)
class LiveDag:
    """What a recorded DAG key holds when it is not the version the manifest records."""

    version_id: str | None
    rendered_hash: str | None  # the hash mwaa-elt wrote with it; None: not written by mwaa-elt


def off_record(
    store: StageStore,
    records: Mapping[str, PipelineRecord],
    live: Mapping[str, str | None] | None = None,
) -> dict[str, LiveDag | None]:
    """The pipelines among `records` whose DAG object is not the recorded version, with what is
    there instead (None: nothing). `live` is the DAG prefix's current versions, when listed."""
    if live is None:
        live = store.latest_versions(store.stage.dags_prefix) if records else {}
    found: dict[str, LiveDag | None] = {}
    for name, record in records.items():
        if record.dag_key not in live:
            found[name] = None
            continue
        if record.dag_version_id is not None and live[record.dag_key] == record.dag_version_id:
            continue
        head = store.head_version(record.dag_key)
        if head is None:
            found[name] = None
            continue
        version, metadata = head
        written_hash = metadata.get(RENDERED_HASH_METADATA)
        if record.dag_version_id is None and written_hash == record.rendered_hash:
            continue  # an unversioned bucket: the tool's own hash is all there is
        found[name] = LiveDag(version, written_hash)
    return found


def stage_status(store: StageStore) -> StageStatus:
    """Read the manifest, list the DAG prefix's current versions and compare them."""
    manifest, _ = store.load_manifest()
    manifest = store.load_histories(manifest, manifest.pipelines)
    live = store.latest_versions(store.stage.dags_prefix)
    off = off_record(store, manifest.pipelines, live)
    pipelines = []
    for name, record in sorted(manifest.pipelines.items()):
        pipelines.append(PipelineStatus(name, record, _drift(name, off)))
    recorded = {record.dag_key for record in manifest.pipelines.values()}
    others = sorted(key for key in live if key.endswith(".py") and key not in recorded)
    ours = [key for key in others if RENDERED_HASH_METADATA in (store.head_metadata(key) or {})]
    return StageStatus(
        stage=store.stage.name,
        bucket=store.bucket,
        pipelines=tuple(pipelines),
        unmanaged=tuple(key for key in others if key not in ours),
        unfinished=tuple(ours),
        lock=read_lock(store),
    )


def _drift(name: str, off: Mapping[str, LiveDag | None]) -> Drift:
    if name not in off:
        return "in sync"
    found = off[name]
    if found is None:
        return "missing"
    if found.rendered_hash is None:
        return "changed outside mwaa-elt"
    # Written by mwaa-elt but not recorded: a promotion stopped before its manifest write, or
    # (the same bytes, another version) a raced write; re-running the promotion records it.
    return UNFINISHED
