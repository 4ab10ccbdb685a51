"""Rollback: put an earlier recorded release of a pipeline back live, as an ordinary plan.

The DAG file comes back byte for byte from the object version the manifest recorded, so what
goes live is exactly what was live before; its EMR scripts are content-addressed and were never
deleted, so the restored DAG finds them.
"""

from __future__ import annotations

from collections.abc import Mapping

from mwaa_elt.errors import ConfigError
from mwaa_elt.promote.identity import Identity
from mwaa_elt.promote.manifest import Manifest, Release
from mwaa_elt.promote.plan import Plan, build_rollback_plan, find_release
from mwaa_elt.promote.store import RENDERED_HASH_METADATA, StageStore


def restore_release(store: StageStore, pipeline: str, release: Release) -> bytes:
    """The DAG file `release` wrote, verified against its recorded hash, with its scripts."""
    if release.dag_version_id is None:
        raise ConfigError(
            f"{pipeline}: version {release.source_hash[:12]} has no recorded S3 version id "
            f"(the bucket was not versioned then); promote that version again instead"
        )
    found = store.get_version(release.dag_key, release.dag_version_id)
    if found is None:
        raise ConfigError(
            f"{pipeline}: {store.uri(release.dag_key)} version {release.dag_version_id} no longer "
            "exists (expired by the bucket's lifecycle rule?); promote that version again instead"
        )
    body, metadata = found
    if metadata.get(RENDERED_HASH_METADATA) != release.rendered_hash:
        raise ConfigError(
            f"{pipeline}: {store.uri(release.dag_key)} version {release.dag_version_id} is not "
            f"the file the manifest recorded for {release.source_hash[:12]}; refusing to restore it"
        )
    missing = [key for key in release.scripts if not store.exists(key)]
    if missing:
        raise ConfigError(
            f"{pipeline}: scripts of version {release.source_hash[:12]} are missing: "
            f"{', '.join(store.uri(k) for k in missing)}; promote that version again instead"
        )
    return body


def plan_rollback(
    store: StageStore,
    manifest: Manifest,
    etag: str | None,
    wanted: Mapping[str, str | None],
    identity: Identity,
    *,
    remove_without_history: bool = False,
) -> Plan:
    """The plan putting each pipeline of `wanted` back to the release a source-hash prefix names
    (None: the one before the live one); pipelines without history are removed when allowed."""
    manifest = store.load_histories(manifest, wanted)
    targets: dict[str, tuple[Release, bytes] | None] = {}
    for name, source_hash in sorted(wanted.items()):
        record = manifest.pipelines.get(name)
        if record is None:
            live = ", ".join(sorted(manifest.pipelines)) or "none"
            raise ConfigError(
                f"no pipeline {name} is live in stage {store.stage.name}; live: {live}"
            )
        if source_hash is None and not record.history and remove_without_history:
            targets[name] = None
            continue
        release = find_release(record, source_hash)
        targets[name] = (release, restore_release(store, name, release))
    live = store.read_dags(sorted({manifest.pipelines[name].dag_key for name in targets}))
    return build_rollback_plan(
        store.stage, manifest, etag, targets, identity=identity, live_dags=live
    )
