"""What is live in a stage: the manifest's records, checked against the bucket for drift."""

from __future__ import annotations

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


def stage_status(store: StageStore) -> StageStatus:
    """Read the manifest, list the DAG prefix's current versions and compare them."""
    manifest, _ = store.load_manifest()
    manifest = store.load_histories(manifest, manifest.pipelines)
    live = store.latest_versions(store.stage.dags_prefix)
    pipelines = []
    for name, record in sorted(manifest.pipelines.items()):
        pipelines.append(PipelineStatus(name, record, _drift(store, record, live)))
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


def _drift(store: StageStore, record: PipelineRecord, live: dict[str, str | None]) -> Drift:
    if record.dag_key not in live:
        return "missing"
    version = live[record.dag_key]
    if record.dag_version_id is not None and version == record.dag_version_id:
        return "in sync"
    found = store.head_metadata(record.dag_key)
    if found is None:
        return "missing"
    written_hash = found.get(RENDERED_HASH_METADATA)
    if written_hash is None:
        return "changed outside mwaa-elt"
    if written_hash == record.rendered_hash and record.dag_version_id is None:
        return "in sync"  # an unversioned bucket: the tool's own hash is all there is
    return UNFINISHED
