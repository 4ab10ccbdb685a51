"""Recorded source bundles read back for `promote --from` and `upgrade rehearse`, on moto."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from mwaa_elt.errors import ConfigError
from mwaa_elt.promote.bundle import Bundle, pack
from mwaa_elt.promote.manifest import Manifest, PipelineRecord
from mwaa_elt.promote.sources import restore_sources
from mwaa_elt.promote.store import StageStore

COUNT = 24


def _stored(store: StageStore) -> Manifest:
    """COUNT pipelines whose bundles are in the bucket, and the manifest recording them."""
    records = {}
    for index in range(COUNT):
        name = f"p{index:02d}"
        bundle = pack({f"{name}.yaml": f"name: {name}\n".encode(), "sql/main.sql": b"select 1\n"})
        key = bundle.key(store.stage.bundles_prefix)
        store.put_if_absent(key, bundle.data)
        records[name] = PipelineRecord(
            source_hash=bundle.source_hash,
            rendered_hash="0" * 64,
            bundle_key=key,
            templates_hash="1" * 64,
            templates_key=f"{store.stage.templates_prefix}{'1' * 64}.tar.gz",
            dag_key=f"{store.stage.dags_prefix}{name}.py",
            promoted_from="working-tree",
            promoted_at="2025-01-01T00:00:00+00:00",
            promoted_by="arn:aws:iam::123456789012:user/moto",
            tool_version="0.1.0",
        )
    return Manifest(stage=store.stage.name, pipelines=records)


def test_every_bundle_is_fetched_once_at_once_and_written_out_verified(
    store: StageStore, recorder: Any, tmp_path: Path
) -> None:
    manifest = _stored(store)
    threads: set[str] = set()
    store.client.meta.events.register(
        "before-send.s3.GetObject", lambda **_: threads.add(threading.current_thread().name)
    )
    recorder.calls.clear()
    names = sorted(manifest.pipelines)
    bundles = restore_sources(store, manifest, tmp_path, names)
    assert sorted(recorder.calls) == sorted(
        ("GetObject", manifest.pipelines[n].bundle_key) for n in names
    )
    assert len(threads) > 1  # not one round trip after another
    assert {name: bundle.source_hash for name, bundle in bundles.items()} == {
        name: record.source_hash for name, record in manifest.pipelines.items()
    }
    assert (tmp_path / "p07" / "p07.yaml").read_text() == "name: p07\n"
    assert (tmp_path / "p07" / "sql" / "main.sql").read_bytes() == b"select 1\n"


def test_a_bundle_deleted_from_the_bucket_is_named(store: StageStore, tmp_path: Path) -> None:
    manifest = _stored(store)
    store.delete(manifest.pipelines["p05"].bundle_key)
    with pytest.raises(ConfigError) as raised:
        restore_sources(store, manifest, tmp_path, sorted(manifest.pipelines))
    (message,) = raised.value.messages
    assert message.startswith(store.uri(manifest.pipelines["p05"].bundle_key))
    assert "source bundle of p05" in message and "deleted outside mwaa-elt" in message


def test_a_bundle_replaced_in_the_bucket_is_refused(store: StageStore, tmp_path: Path) -> None:
    manifest = _stored(store)
    other = pack({"p03.yaml": b"name: p03\nschedule: '@hourly'\n"})
    store.put(manifest.pipelines["p03"].bundle_key, other.data)
    with pytest.raises(ConfigError, match="corrupt or was replaced"):
        restore_sources(store, manifest, tmp_path, ["p03"])
    assert not (tmp_path / "p03").exists()  # nothing of it written


def _packed(store: StageStore) -> Manifest:
    """The pipelines of `_stored`, their bundles stored as one pack the way a promotion does."""
    from mwaa_elt.promote.packs import pack_bundles

    manifest = _stored(store)
    bundles = {
        name: Bundle(record.source_hash, store.get(record.bundle_key)[0])  # type: ignore[index]
        for name, record in manifest.pipelines.items()
    }
    for record in manifest.pipelines.values():
        store.delete(record.bundle_key)  # only the pack holds them now
    (packed,) = pack_bundles(bundles.values())
    key = packed.key(store.stage.bundles_prefix)
    store.put_if_absent(key, packed.data)
    records = {
        name: record.model_copy(
            update={"bundle_key": key, "bundle_range": packed.ranges[record.source_hash]}
        )
        for name, record in manifest.pipelines.items()
    }
    return manifest.model_copy(update={"pipelines": records})


def test_bundles_in_a_pack_are_read_with_one_request_and_each_verified(
    store: StageStore, recorder: Any, tmp_path: Path
) -> None:
    manifest = _packed(store)
    recorder.calls.clear()
    bundles = restore_sources(store, manifest, tmp_path, sorted(manifest.pipelines))
    (key,) = {record.bundle_key for record in manifest.pipelines.values()}
    assert recorder.calls == [("GetObject", key)]  # one request for COUNT bundles
    assert {name: bundle.source_hash for name, bundle in bundles.items()} == {
        name: record.source_hash for name, record in manifest.pipelines.items()
    }
    assert (tmp_path / "p11" / "p11.yaml").read_text() == "name: p11\n"


def test_one_bundle_of_a_pack_is_read_by_its_byte_range(store: StageStore, tmp_path: Path) -> None:
    manifest = _packed(store)
    ranges: list[str] = []
    store.client.meta.events.register(
        "before-send.s3.GetObject",
        lambda request, **_: ranges.append(request.headers["Range"].decode()),
    )
    restore_sources(store, manifest, tmp_path, ["p09"])
    offset, length = manifest.pipelines["p09"].bundle_range  # type: ignore[misc]
    assert ranges == [f"bytes={offset}-{offset + length - 1}"]
    assert (tmp_path / "p09" / "p09.yaml").read_text() == "name: p09\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p09"]


@pytest.mark.parametrize(
    ("wanted", "kept"),
    [
        (["p02"], 10),  # read by its range: 10 of its bytes come back
        (["p02"], 0),  # read by its range: the pack ends before it (HTTP 416)
        (sorted(f"p{index:02d}" for index in range(COUNT)), 10),  # the pack read whole
    ],
)
def test_a_pack_cut_short_is_refused_naming_the_pipeline(
    store: StageStore, tmp_path: Path, wanted: list[str], kept: int
) -> None:
    manifest = _packed(store)
    key = manifest.pipelines["p02"].bundle_key
    whole = store.get(key)[0]  # type: ignore[index]
    offset, _ = manifest.pipelines["p02"].bundle_range  # type: ignore[misc]
    store.put(key, whole[: offset + kept])  # replaced outside mwaa-elt: p02 onwards is gone
    with pytest.raises(ConfigError) as raised:
        restore_sources(store, manifest, tmp_path, wanted)
    (message,) = raised.value.messages
    gone = [n for n in wanted if sum(manifest.pipelines[n].bundle_range or ()) > offset + kept]
    assert message.startswith(store.uri(key)) and f"source of {gone[0]}" in message
    assert "p02" in gone and not (tmp_path / "p02").exists()
