"""Plans are pure data: actions, diffs and step order computed without touching S3."""

from __future__ import annotations

from promote_support import IDENTITY, build

from mwaa_elt.promote.explain import plan_summary
from mwaa_elt.promote.manifest import Manifest, empty_manifest
from mwaa_elt.promote.plan import (
    DeleteDag,
    Plan,
    UploadBundle,
    UploadPack,
    UploadScript,
    UploadTemplates,
    WriteDag,
    WriteManifest,
    build_plan,
)
from mwaa_elt.stage import Stage


def _plan(stage: Stage, builds, manifest: Manifest | None = None, **kwargs) -> Plan:
    return build_plan(
        stage,
        builds,
        manifest or empty_manifest(stage.name),
        None,
        source="working-tree",
        identity=IDENTITY,
        **kwargs,
    )


def _applied(plan: Plan) -> Manifest:
    step = plan.steps[-1]
    assert isinstance(step, WriteManifest)
    return step.manifest


def test_first_plan_adds_everything_in_order_scripts_bundles_dags_manifest(dev: Stage) -> None:
    builds = {"b": build(dev, "b", script="print(1)"), "a": build(dev, "a")}
    plan = _plan(dev, list(builds.values()))
    assert [(c.pipeline, c.action) for c in plan.changes] == [("a", "added"), ("b", "added")]
    kinds = [type(step) for step in plan.steps]
    assert kinds == [UploadScript, UploadPack, UploadTemplates, WriteDag, WriteDag, WriteManifest]
    records = _applied(plan).pipelines
    assert set(records) == {"a", "b"}
    (pack,) = [step for step in plan.steps if isinstance(step, UploadPack)]
    assert pack.pipelines == ("a", "b")
    assert plan_summary(plan) == (
        "2 added, 0 updated, 0 unchanged, 0 removed; 1 script, 1 pack of source bundles "
        "(2 pipelines), 1 templates snapshot, 2 DAG files, then the manifest"
    )
    for name in ("a", "b"):  # each bundle is where its record says, byte for byte
        offset, length = records[name].bundle_range or (-1, -1)
        assert records[name].bundle_key == pack.key
        assert pack.body[offset : offset + length] == builds[name].bundle.data


def test_unchanged_pipelines_plan_no_steps(dev: Stage) -> None:
    builds = [build(dev, "a"), build(dev, "b", script="print(1)")]
    manifest = _applied(_plan(dev, builds))
    plan = _plan(dev, builds, manifest)
    assert plan.steps == ()
    assert not plan.has_changes
    assert plan.count("unchanged") == 2


def test_one_changed_pipeline_writes_one_dag_with_a_diff_and_keeps_history(dev: Stage) -> None:
    manifest = _applied(_plan(dev, [build(dev, "a"), build(dev, "b")]))
    old_dag = build(dev, "a").dag
    plan = _plan(
        dev,
        [build(dev, "a", sql="select 2"), build(dev, "b")],
        manifest,
        live_dags={"dags/a.py": old_dag},
    )
    assert [(c.pipeline, c.action) for c in plan.changes] == [("a", "updated"), ("b", "unchanged")]
    assert [type(s) for s in plan.steps] == [UploadBundle, WriteDag, WriteManifest]
    diff = plan.changes[0].diff or ""
    assert "-SQL = 'select 1'" in diff and "+SQL = 'select 2'" in diff
    record = _applied(plan).pipelines["a"]
    assert record.history[0].source_hash == manifest.pipelines["a"].source_hash


def test_history_is_bounded(dev: Stage) -> None:
    manifest = empty_manifest(dev.name)
    for n in range(25):
        manifest = _applied(_plan(dev, [build(dev, "a", sql=f"select {n}")], manifest))
    assert len(manifest.pipelines["a"].history) == 20


def test_prune_removes_only_pipelines_the_manifest_records(dev: Stage) -> None:
    manifest = _applied(_plan(dev, [build(dev, "a"), build(dev, "b")]))
    kept = _plan(dev, [build(dev, "a")], manifest)
    assert kept.steps == () and [c.action for c in kept.changes] == ["unchanged"]
    pruned = _plan(dev, [build(dev, "a")], manifest, prune=True)
    assert [(c.pipeline, c.action) for c in pruned.changes] == [
        ("a", "unchanged"),
        ("b", "removed"),
    ]
    assert [type(s) for s in pruned.steps] == [DeleteDag, WriteManifest]
    assert pruned.steps[0] == DeleteDag("b", "dags/b.py")
    assert set(_applied(pruned).pipelines) == {"a"}


def test_source_change_with_identical_output_records_the_new_bundle_without_a_dag_write(
    dev: Stage,
) -> None:
    first = build(dev, "a")
    manifest = _applied(_plan(dev, [first]))
    from dataclasses import replace

    from mwaa_elt.promote.bundle import pack

    moved = replace(
        first, bundle=pack({"a.yaml": b"name: a\n# a comment\n", "sql/main.sql": b"select 1"})
    )
    plan = _plan(dev, [moved], manifest)
    assert [c.action for c in plan.changes] == ["updated"]
    assert [type(s) for s in plan.steps] == [UploadBundle, WriteManifest]
    assert _applied(plan).pipelines["a"].source_hash == moved.bundle.source_hash


def test_a_template_change_with_identical_output_records_the_snapshot_only(dev: Stage) -> None:
    first = build(dev, "a")
    manifest = _applied(_plan(dev, [first]))
    from dataclasses import replace

    from mwaa_elt.promote.bundle import pack

    retemplated = replace(first, templates=pack({"dag.py.j2": b"{# a comment #}{{ view }}\n"}))
    plan = _plan(dev, [retemplated], manifest)
    assert [c.action for c in plan.changes] == ["updated"]
    assert [type(s) for s in plan.steps] == [UploadTemplates, WriteManifest]
    record = _applied(plan).pipelines["a"]
    assert record.templates_hash == retemplated.templates.source_hash
    assert record.history[0].templates_hash == first.templates.source_hash


def test_objects_the_manifest_already_points_at_are_not_sent_again(dev: Stage) -> None:
    manifest = _applied(_plan(dev, [build(dev, "a", script="print(1)")]))
    changed = build(dev, "a", sql="select 2", script="print(1)")
    plan = _plan(dev, [changed], manifest)
    assert [type(s) for s in plan.steps] == [UploadBundle, WriteDag, WriteManifest]


def test_rollback_targets_the_previous_release_or_a_named_one(dev: Stage) -> None:
    import pytest

    from mwaa_elt.errors import ConfigError
    from mwaa_elt.promote.plan import build_rollback_plan, find_release

    manifest = empty_manifest(dev.name)
    for n in range(3):
        manifest = _applied(_plan(dev, [build(dev, "a", sql=f"select {n}")], manifest))
    record = manifest.pipelines["a"]
    hashes = [r.source_hash for r in (record.release(), *record.history)]
    assert find_release(record, None).source_hash == hashes[1]
    assert find_release(record, hashes[2][:8]).source_hash == hashes[2]
    assert find_release(record, hashes[0]).source_hash == hashes[0]  # rewrite the live one
    with pytest.raises(ConfigError, match="no such version"):
        find_release(record, "not-a-hash")
    with pytest.raises(ConfigError, match="no earlier version"):
        find_release(_applied(_plan(dev, [build(dev, "b")])).pipelines["b"], None)

    target = find_release(record, None)
    plan = build_rollback_plan(
        dev, manifest, '"etag"', {"a": (target, b"# old dag\n")}, identity=IDENTITY
    )
    assert [type(s) for s in plan.steps] == [WriteDag, WriteManifest]
    assert plan.changes[0].action == "rolled_back" and plan.manifest_etag == '"etag"'
    restored = _applied(plan).pipelines["a"]
    assert restored.source_hash == target.source_hash and restored.promoted_from == "rollback"
    assert restored.history[0].source_hash == hashes[0]
    removed = build_rollback_plan(dev, manifest, None, {"a": None}, identity=IDENTITY)
    assert [type(s) for s in removed.steps] == [DeleteDag, WriteManifest]
    assert _applied(removed).pipelines == {}


def _recorded(stage: Stage, builds, version: str) -> Manifest:
    """The manifest a completed promotion of `builds` leaves, each DAG at S3 `version`."""
    manifest = _applied(_plan(stage, builds))
    records = {
        name: record.model_copy(update={"dag_version_id": version})
        for name, record in manifest.pipelines.items()
    }
    return manifest.model_copy(update={"pipelines": records})


def test_the_recorded_bytes_live_under_another_version_are_recorded_without_a_write(
    dev: Stage,
) -> None:
    from mwaa_elt.promote.status import LiveDag

    builds = [build(dev, "a"), build(dev, "b")]
    manifest = _recorded(dev, builds, "v1")
    same_bytes = LiveDag("v2", manifest.pipelines["a"].rendered_hash)
    plan = _plan(dev, builds, manifest, off_record={"a": same_bytes})
    assert [type(step) for step in plan.steps] == [WriteManifest]
    assert plan.recorded == ("a",) and plan.count("unchanged") == 2
    records = _applied(plan).pipelines
    assert records["a"].dag_version_id == "v2" and records["b"].dag_version_id == "v1"
    assert records["a"].history == manifest.pipelines["a"].history  # not a new release


def test_other_bytes_or_none_under_a_recorded_key_are_written_again(dev: Stage) -> None:
    from mwaa_elt.promote.status import LiveDag

    builds = [build(dev, "a"), build(dev, "b"), build(dev, "c")]
    manifest = _recorded(dev, builds, "v1")
    off = {"a": LiveDag("v9", "another render"), "b": None}  # c is as recorded
    plan = _plan(dev, builds, manifest, off_record=off)
    actions = {c.pipeline: c.action for c in plan.changes}
    assert actions == {"a": "repaired", "b": "repaired", "c": "unchanged"}
    writes = [step for step in plan.steps if isinstance(step, WriteDag)]
    assert [(w.pipeline, w.body) for w in writes] == [("a", builds[0].dag), ("b", builds[1].dag)]
    final = plan.steps[-1]
    assert isinstance(final, WriteManifest) and final.pending_versions == ("a", "b")
    assert final.manifest.pipelines["a"].history == manifest.pipelines["a"].history


def _with_inputs(build, digest: str):
    from dataclasses import replace

    from mwaa_elt.promote.manifest import Inputs

    return replace(build, inputs=Inputs(hash=digest, spec=f"{build.name}/{build.name}.yaml"))


def test_pipelines_unchanged_by_their_inputs_are_kept_without_a_build(dev: Stage) -> None:
    manifest = _applied(_plan(dev, [build(dev, "a"), build(dev, "b")]))
    plan = _plan(dev, [build(dev, "b", sql="select 2")], manifest, unchanged=["a"], prune=True)
    assert [(c.pipeline, c.action) for c in plan.changes] == [("a", "unchanged"), ("b", "updated")]
    assert set(_applied(plan).pipelines) == {"a", "b"}  # not pruned: unchanged is not missing
    assert _applied(plan).pipelines["a"] == manifest.pipelines["a"]


def test_a_pipeline_given_twice_is_refused_naming_only_the_repeated_ones(dev: Stage) -> None:
    import pytest

    from mwaa_elt.errors import ConfigError

    manifest = _applied(_plan(dev, [build(dev, name) for name in ("a", "b", "c")]))
    twice = [build(dev, "b", sql="select 2"), build(dev, "c", sql="select 2")]
    with pytest.raises(ConfigError, match=r"pipelines given more than once: b, c$"):
        _plan(dev, [*twice, build(dev, "c", sql="select 3")], manifest, unchanged=["a", "b"])


def test_new_inputs_of_an_identical_render_are_recorded_without_writing_a_dag(dev: Stage) -> None:
    manifest = _applied(_plan(dev, [_with_inputs(build(dev, "a"), "old")]))
    plan = _plan(dev, [_with_inputs(build(dev, "a"), "new")], manifest)
    assert [c.action for c in plan.changes] == ["unchanged"]
    assert [type(step) for step in plan.steps] == [WriteManifest]
    assert not plan.has_changes and plan.records_only
    record = _applied(plan).pipelines["a"]
    assert record.inputs is not None and record.inputs.hash == "new"
    assert record.history == () and record.promoted_at == manifest.pipelines["a"].promoted_at
    same = _plan(dev, [_with_inputs(build(dev, "a"), "new")], _applied(plan))
    assert same.steps == () and not same.records_only


def test_a_history_not_yet_read_is_never_overwritten(dev: Stage) -> None:
    import pytest

    manifest = _applied(_plan(dev, [build(dev, "a")]))
    stored = manifest.pipelines["a"].model_copy(update={"history_key": "h/a/1.json"})
    manifest = manifest.model_copy(update={"pipelines": {"a": stored}})
    with pytest.raises(RuntimeError, match="history was not read"):
        _plan(dev, [build(dev, "a", sql="select 2")], manifest)


def test_new_templates_keep_every_bundle_where_a_pack_holds_it(dev: Stage) -> None:
    from dataclasses import replace

    from mwaa_elt.promote.bundle import pack

    builds = [build(dev, "a"), build(dev, "b")]
    manifest = _applied(_plan(dev, builds))
    templates = pack({"dag.py.j2": b"{{ view }}\n# v2\n"})
    rerendered = [replace(b, templates=templates, dag=b.dag + b"# v2\n") for b in builds]
    plan = _plan(dev, rerendered, manifest)
    assert plan.count("updated") == 2
    assert not [s for s in plan.steps if isinstance(s, UploadBundle | UploadPack)]
    for name, record in _applied(plan).pipelines.items():
        before = manifest.pipelines[name]
        assert (record.bundle_key, record.bundle_range) == (before.bundle_key, before.bundle_range)
