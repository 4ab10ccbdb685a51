"""Applying plans against a real S3 API (moto on loopback): what is written, and in what order."""

from __future__ import annotations

import json

import pytest
from promote_support import Recorder, build, plan_for

from mwaa_elt.errors import ConfigError
from mwaa_elt.promote.apply import apply_plan
from mwaa_elt.promote.plan import Step, WriteDag
from mwaa_elt.promote.status import stage_status
from mwaa_elt.promote.store import RENDERED_HASH_METADATA, StageStore
from mwaa_elt.stage import Stage


def _pipelines(dev: Stage, sql_a: str = "select 1"):
    return [build(dev, "a", sql=sql_a), build(dev, "b", script="print('b')")]


def test_first_promotion_writes_everything_scripts_then_dags_then_manifest(
    store: StageStore, dev: Stage, recorder: Recorder
) -> None:
    result = apply_plan(store, plan_for(store, _pipelines(dev)))
    puts = [key for op, key in recorder.writes()]
    uploads, dags = puts[:3], sorted(puts[3:5])  # parallel within a phase, phases in order
    assert sum(k.startswith("scripts/b/") for k in uploads) == 1
    # Both source bundles in one pack: one object, not one per pipeline.
    assert sum(k.startswith(f"{dev.bundles_prefix}packs/") for k in uploads) == 1
    assert sum(k.startswith(dev.templates_prefix) for k in uploads) == 1
    assert dags == ["dags/a.py", "dags/b.py"]
    assert puts[-1] == dev.manifest_key and len(puts) == 6
    assert result.to_dict() == {
        "stage": "dev",
        "from": "working-tree",
        "uploaded": 3,
        "deleted": 0,
        "unchanged": 0,
        "pipelines": [c.to_dict() for c in result.plan.changes],
    }
    manifest, etag = store.load_manifest()
    assert etag is not None
    record = manifest.pipelines["a"]
    assert record.dag_version_id == result.written["a"].version_id is not None
    head = store.client.head_object(Bucket=store.bucket, Key="dags/a.py")
    assert record.dag_etag == result.written["a"].etag == head["ETag"]
    assert record.promoted_from == "working-tree" and record.git_commit == "abc123"
    assert record.templates_hash == _pipelines(dev)[0].templates.source_hash
    head = store.client.head_object(Bucket=store.bucket, Key="dags/a.py")
    assert head["Metadata"][RENDERED_HASH_METADATA] == record.rendered_hash


def test_re_promotion_writes_nothing(store: StageStore, dev: Stage, recorder: Recorder) -> None:
    apply_plan(store, plan_for(store, _pipelines(dev)))
    recorder.calls.clear()
    result = apply_plan(store, plan_for(store, _pipelines(dev)))
    assert recorder.writes() == []
    assert (result.uploaded, result.deleted, result.unchanged) == (0, 0, 2)


def test_planning_alone_writes_nothing(store: StageStore, dev: Stage, recorder: Recorder) -> None:
    plan = plan_for(store, _pipelines(dev))
    assert plan.has_changes
    assert recorder.writes() == []
    assert {op for op, _ in recorder.calls} <= {"GetObject", "HeadObject", "ListObjectsV2"}


def test_one_changed_pipeline_uploads_exactly_one_dag_and_the_manifest(
    store: StageStore, dev: Stage, recorder: Recorder
) -> None:
    apply_plan(store, plan_for(store, _pipelines(dev)))
    recorder.calls.clear()
    plan = plan_for(store, _pipelines(dev, sql_a="select 2"))
    result = apply_plan(store, plan)
    keys = [key for _, key in recorder.writes()]
    assert keys[1] == "dags/a.py" and keys[3] == dev.manifest_key
    assert keys[0].startswith(dev.bundles_prefix)
    assert keys[2].startswith(f"{dev.history_prefix}a/")  # only the changed pipeline's history
    assert (result.uploaded, result.unchanged) == (1, 1)
    assert "+SQL = 'select 2'" in (plan.changes[0].diff or "")
    manifest, _ = store.load_manifest()
    assert manifest.pipelines["a"].history_key == keys[2]
    manifest = store.load_histories(manifest, ["a"])
    assert manifest.pipelines["a"].history[0].dag_version_id is not None


def test_a_changed_manifest_between_plan_and_apply_is_refused(
    store: StageStore, dev: Stage
) -> None:
    apply_plan(store, plan_for(store, _pipelines(dev)))
    plan = plan_for(store, _pipelines(dev, sql_a="select 2"))
    other = plan_for(store, _pipelines(dev, sql_a="select 3"))
    apply_plan(store, other)
    with pytest.raises(ConfigError, match=r"changed by someone else.*re-run"):
        apply_plan(store, plan)
    manifest, _ = store.load_manifest()
    assert manifest.pipelines["a"].rendered_hash == build(dev, "a", sql="select 3").rendered_hash


def test_creating_the_manifest_twice_is_refused(store: StageStore, dev: Stage) -> None:
    first = plan_for(store, _pipelines(dev))
    second = plan_for(store, [build(dev, "c")])
    apply_plan(store, first)
    with pytest.raises(ConfigError, match="changed by someone else"):
        apply_plan(store, second)


def test_interrupted_after_dag_write_leaves_old_manifest_and_rerun_completes(
    store: StageStore, dev: Stage
) -> None:
    apply_plan(store, plan_for(store, _pipelines(dev)))
    before, _ = store.load_manifest()

    class Killed(Exception):
        pass

    def die_after_dag(index: int, total: int, step: Step) -> None:
        if isinstance(step, WriteDag):
            raise Killed

    def die_after_dag_c(index: int, total: int, step: Step) -> None:
        if isinstance(step, WriteDag) and step.pipeline == "c":
            raise Killed

    changed = [*_pipelines(dev, sql_a="select 2"), build(dev, "c")]
    with pytest.raises(Killed):
        apply_plan(store, plan_for(store, changed), progress=die_after_dag)
    with pytest.raises(Killed):  # the second DAG write too: "a" and "c" are written
        apply_plan(store, plan_for(store, changed), progress=die_after_dag_c)
    still, _ = store.load_manifest()
    assert still == before  # the manifest still describes the last completed promotion
    status = stage_status(store)
    assert {p.name: p.drift for p in status.pipelines} == {
        "a": "unfinished promotion",
        "b": "in sync",
    }
    assert status.unfinished == ("dags/c.py",) and status.unmanaged == ()
    result = apply_plan(store, plan_for(store, changed))
    manifest, _ = store.load_manifest()
    assert manifest.pipelines["a"].rendered_hash == changed[0].rendered_hash
    assert (result.plan.count("updated"), result.plan.count("added")) == (1, 1)
    assert apply_plan(store, plan_for(store, changed)).plan.steps == ()
    status = stage_status(store)
    assert {p.drift for p in status.pipelines} == {"in sync"} and status.unfinished == ()


def test_prune_deletes_the_dag_and_keeps_content_addressed_scripts(
    store: StageStore, dev: Stage, recorder: Recorder
) -> None:
    store.put("dags/hand_written.py", b"# not ours\n")
    apply_plan(store, plan_for(store, _pipelines(dev)))
    recorder.calls.clear()
    result = apply_plan(store, plan_for(store, [build(dev, "a")], prune=True))
    assert [op for op, _ in recorder.writes()] == ["DeleteObject", "PutObject"]
    assert result.deleted == 1
    assert not store.exists("dags/b.py")
    assert store.exists("dags/hand_written.py")
    assert store.exists(next(iter(_pipelines(dev)[1].scripts)))


def test_progress_reports_every_step(store: StageStore, dev: Stage) -> None:
    seen: list[tuple[int, int]] = []
    plan = plan_for(store, _pipelines(dev))
    apply_plan(store, plan, progress=lambda i, n, _step: seen.append((i, n)))
    assert seen == [(i, len(plan.steps)) for i in range(1, len(plan.steps) + 1)]


def test_manifest_is_readable_json(store: StageStore, dev: Stage) -> None:
    apply_plan(store, plan_for(store, _pipelines(dev)))
    body = store.client.get_object(Bucket=store.bucket, Key=dev.manifest_key)["Body"].read()
    data = json.loads(body)
    assert data["version"] == 3 and data["stage"] == "dev"
    assert set(data["pipelines"]["b"]) >= {
        "source_hash",
        "rendered_hash",
        "dag_version_id",
        "promoted_from",
        "promoted_at",
        "promoted_by",
        "git_commit",
        "history_key",
        "scripts",
    }
    assert len(body.splitlines()) == 2 + len(data["pipelines"])  # one line per pipeline


def test_the_live_index_stays_small_while_histories_grow(
    store: StageStore, dev: Stage, recorder: Recorder
) -> None:
    apply_plan(store, plan_for(store, _pipelines(dev)))
    sizes = []
    for index in range(3):
        apply_plan(store, plan_for(store, _pipelines(dev, sql_a=f"select {index + 2}")))
        sizes.append(len(store.get(dev.manifest_key)[0]))
    assert max(sizes) - min(sizes) < 200  # a new history key, not a longer history inline
    manifest = store.load_histories(store.load_manifest()[0], ["a", "b"])
    assert len(manifest.pipelines["a"].history) == 3 and manifest.pipelines["b"].history == ()
    recorder.calls.clear()
    apply_plan(store, plan_for(store, _pipelines(dev, sql_a="select 9")))
    history_reads = [k for op, k in recorder.calls if k.startswith(dev.history_prefix)]
    assert history_reads and all(k.startswith(f"{dev.history_prefix}a/") for k in history_reads)


def test_a_manifest_in_the_old_format_is_read(store: StageStore, dev: Stage) -> None:
    apply_plan(store, plan_for(store, _pipelines(dev)))
    apply_plan(store, plan_for(store, _pipelines(dev, sql_a="select 2")))
    current = store.load_histories(store.load_manifest()[0], ["a", "b"])
    old = json.loads(current.to_bytes())
    assert old["version"] == 1 and "history" in old["pipelines"]["a"]
    assert "history_key" not in old["pipelines"]["a"]
    store.put(dev.manifest_key, json.dumps(old).encode())
    loaded, _ = store.load_manifest()
    assert loaded.pipelines["a"].history == current.pipelines["a"].history
    assert loaded.pipelines["a"].history_loaded
    result = apply_plan(store, plan_for(store, _pipelines(dev, sql_a="select 3")))
    assert result.manifest_etag is not None
    rewritten = store.load_histories(store.load_manifest()[0], ["a"])
    assert [r.rendered_hash for r in rewritten.pipelines["a"].history] == [
        build(dev, "a", sql="select 2").rendered_hash,
        build(dev, "a").rendered_hash,
    ]
