"""What is live in a stage: the manifest's records, checked against the bucket for drift."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
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
    etag: str | None = None


@dataclass(frozen=True)
class LiveListing:
    """The current objects under a stage's DAG prefix, and how a record is told to be live."""

    keys: Collection[str]
    as_recorded: Callable[[PipelineRecord], bool]


def list_live(
    store: StageStore,
    records: Mapping[str, PipelineRecord],
    current_etags: Mapping[str, str] | None = None,
) -> LiveListing:
    """List the DAG prefix the cheapest way that decides every record of `records`.

    When every record has the ETag its DAG object got, one listing of the current objects
    decides by content (an object with the recorded ETag holds the recorded bytes), so the
    cost does not grow with the bucket's history; `current_etags` is that listing when already
    read (`StageStore.current_etags` of the DAG prefix). Records from an mwaa-elt that did not
    record ETags are decided by S3 version id, from the versions listing.
    """
    prefix = store.stage.dags_prefix
    if all(record.dag_etag is not None for record in records.values()):
        etags = store.current_etags(prefix) if current_etags is None else current_etags
        return LiveListing(etags, lambda record: etags[record.dag_key] == record.dag_etag)
    versions = store.latest_versions(prefix)
    return LiveListing(
        versions,
        lambda record: (
            record.dag_version_id is not None and versions[record.dag_key] == record.dag_version_id
        ),
    )


def off_record(
    store: StageStore,
    records: Mapping[str, PipelineRecord],
    live: LiveListing | None = None,
) -> dict[str, LiveDag | None]:
    """The pipelines among `records` whose DAG object is not the recorded one, with what is
    there instead (None: nothing). `live` is the DAG prefix's listing, when already read."""
    if not records:
        return {}
    return _off_record(store, records, live or list_live(store, records))


def _off_record(
    store: StageStore, records: Mapping[str, PipelineRecord], live: LiveListing
) -> dict[str, LiveDag | None]:
    found: dict[str, LiveDag | None] = {}
    for name, record in records.items():
        if record.dag_key not in live.keys:
            found[name] = None
            continue
        if live.as_recorded(record):
            continue
        head = store.head_version(record.dag_key)
        if head is None:
            found[name] = None
            continue
        current, metadata = head
        written_hash = metadata.get(RENDERED_HASH_METADATA)
        if record.dag_version_id is None and written_hash == record.rendered_hash:
            continue  # an unversioned bucket: the tool's own hash is all there is
        found[name] = LiveDag(current.version_id, written_hash, current.etag)
    return found


def stage_status(store: StageStore) -> StageStatus:
    """Read the manifest, list the DAG prefix's current versions and compare them."""
    manifest, _ = store.load_manifest()
    manifest = store.load_histories(manifest, manifest.pipelines)
    live = list_live(store, manifest.pipelines)
    off = off_record(store, manifest.pipelines, live)
    pipelines = []
    for name, record in sorted(manifest.pipelines.items()):
        pipelines.append(PipelineStatus(name, record, _drift(name, off)))
    recorded = {record.dag_key for record in manifest.pipelines.values()}
    others = sorted(key for key in live.keys if key.endswith(".py") and key not in recorded)
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
