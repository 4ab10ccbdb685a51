"""What a promotion moves: pipelines rendered for the target stage, with the sources they came from.

From the working tree (`promote --to dev`) the specs are validated and rendered as they are on
disk. From a stage (`promote --from dev --to staging`) the source bundles and template snapshots
recorded in that stage's manifest are fetched, verified against their hashes, validated together
and re-rendered for the target: the working tree's pipelines and templates play no part.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mwaa_elt.errors import ConfigError
from mwaa_elt.project import Project
from mwaa_elt.promote.bundle import Bundle, build_bundle, read_bundle
from mwaa_elt.promote.manifest import WORKING_TREE, Manifest
from mwaa_elt.promote.plan import PipelineBuild
from mwaa_elt.promote.store import StageStore
from mwaa_elt.render import RenderResult, render_pipelines
from mwaa_elt.render.generate import DAGS_DIR, SCRIPTS_DIR
from mwaa_elt.spec import Pipeline, discover_specs, validate_paths
from mwaa_elt.spec.analysis import unchecked_sql
from mwaa_elt.stage import Stage


@dataclass(frozen=True)
class Prepared:
    """Pipelines rendered for the target stage, ready to plan, with the render they came from."""

    source: str  # "working-tree" or the source stage's name
    target: Stage
    render: RenderResult
    builds: tuple[PipelineBuild, ...]
    complete: bool  # every pipeline of the source is included, so pruning is meaningful


def check_route(stages: Mapping[str, Stage], source: str | None, target: str) -> Stage:
    """The target stage, after refusing a promotion that does not follow `promotes_from`."""
    if target not in stages:
        raise ConfigError(f"no stage '{target}'; known: {', '.join(stages)}")
    stage = stages[target]
    expected = stage.promotes_from
    if source is None:
        if expected is not None:
            raise ConfigError(
                f"stage {target} promotes from {expected} (stacks/Pulumi.{target}.yaml: "
                f"promotesFrom); run: mwaa-elt promote --from {expected} --to {target}"
            )
        return stage
    if source not in stages:
        raise ConfigError(f"no stage '{source}'; known: {', '.join(stages)}")
    if expected != source:
        route = f"{expected} → {target}" if expected else f"the working tree → {target}"
        raise ConfigError(
            f"refusing {source} → {target}: stage {target} promotes from "
            f"{expected or 'the working tree'} only ({route}); promotions may not skip a stage"
        )
    return stage


def from_working_tree(
    project: Project,
    target: Stage,
    pipelines: Mapping[str, Pipeline],
    *,
    complete: bool,
) -> Prepared:
    """Render validated working-tree `pipelines` for `target` and bundle their folders."""
    render = render_pipelines(pipelines, target, project.templates_dir, project_root=project.root)
    templates = build_bundle(project.templates_dir)
    folders = {name: pipeline.source_dir for name, pipeline in pipelines.items()}
    commits = git_commits(project.root, folders, project.templates_dir)
    bundles = {name: build_bundle(folder) for name, folder in folders.items()}
    unchecked = {name: unchecked_sql(pipeline) for name, pipeline in pipelines.items()}
    builds = _builds(
        target, render, bundles, dict.fromkeys(pipelines, templates), commits, unchecked
    )
    return Prepared(WORKING_TREE, target, render, builds, complete)


def from_stage(
    stages: Mapping[str, Stage],
    source_store: StageStore,
    target: Stage,
    names: Sequence[str] | None,
) -> Prepared:
    """Re-render for `target` exactly the versions live in the source stage's manifest."""
    source = source_store.stage.name
    manifest, _ = source_store.load_manifest()
    if not manifest.pipelines:
        raise ConfigError(
            f"nothing is live in stage {source} (no pipelines in "
            f"{source_store.uri(source_store.stage.manifest_key)}); promote into {source} first"
        )
    selected = _select(manifest, names, source)
    with tempfile.TemporaryDirectory(prefix="mwaa-elt-promote-") as scratch:
        root = Path(scratch)
        bundles = _restore_sources(source_store, manifest, root / "pipelines")
        # Every live spec is validated together, so cross-pipeline schedules still resolve.
        report = validate_paths(discover_specs(root / "pipelines"), dict(stages))
        if not report.ok:
            raise ConfigError(
                [f"{_shown(p.path, root)}:{p.line}:{p.col}: {p.message}" for p in report.problems]
                + [
                    f"the versions live in {source} are not valid for the current stage "
                    f"configuration; fix the specs and promote them into {source} again"
                ]
            )
        templates = _restore_templates(source_store, manifest, selected, root / "templates")
        renders = []
        for templates_hash in sorted({manifest.pipelines[n].templates_hash for n in selected}):
            group = {
                name: report.pipelines[name]
                for name in selected
                if manifest.pipelines[name].templates_hash == templates_hash
            }
            folder = root / "templates" / templates_hash
            renders.append(render_pipelines(group, target, folder, project_root=root))
    render = _merge(target, renders)
    commits = {name: manifest.pipelines[name].git_commit for name in selected}
    chosen = {name: bundles[name] for name in selected}
    by_name = {name: templates[manifest.pipelines[name].templates_hash] for name in selected}
    unchecked = {name: unchecked_sql(report.pipelines[name]) for name in selected}
    builds = _builds(target, render, chosen, by_name, commits, unchecked)
    return Prepared(source, target, render, builds, complete=names is None)


def _select(manifest: Manifest, names: Sequence[str] | None, source: str) -> list[str]:
    if not names:
        return sorted(manifest.pipelines)
    unknown = sorted(set(names) - set(manifest.pipelines))
    if unknown:
        raise ConfigError(
            f"not live in stage {source}: {', '.join(unknown)}; "
            f"live: {', '.join(sorted(manifest.pipelines))}"
        )
    return sorted(set(names))


def _fetch(store: StageStore, key: str, what: str) -> bytes:
    found = store.get(key)
    if found is None:
        raise ConfigError(
            f"{store.uri(key)}: the {what} recorded in the manifest of stage {store.stage.name} "
            "is missing; it was deleted outside mwaa-elt — promote it into that stage again"
        )
    return found[0]


def _restore_sources(store: StageStore, manifest: Manifest, folder: Path) -> dict[str, Bundle]:
    """Unpack every live pipeline's bundle into `folder/<name>/`, verifying its hash."""
    bundles: dict[str, Bundle] = {}
    for name, record in sorted(manifest.pipelines.items()):
        data = _fetch(store, record.bundle_key, f"source bundle of {name}")
        with read_bundle(data, expected_hash=record.source_hash) as unpacked:
            _copy_tree(unpacked, folder / name)
        bundles[name] = Bundle(record.source_hash, data)
    return bundles


def _restore_templates(
    store: StageStore, manifest: Manifest, selected: Sequence[str], folder: Path
) -> dict[str, Bundle]:
    """Unpack each template snapshot the selected pipelines were rendered with."""
    snapshots: dict[str, Bundle] = {}
    for name in selected:
        record = manifest.pipelines[name]
        if record.templates_hash in snapshots:
            continue
        data = _fetch(store, record.templates_key, "dag_templates snapshot")
        with read_bundle(data, expected_hash=record.templates_hash) as unpacked:
            _copy_tree(unpacked, folder / record.templates_hash)
        snapshots[record.templates_hash] = Bundle(record.templates_hash, data)
    return snapshots


def _copy_tree(source: Path, target: Path) -> None:
    for path in source.rglob("*"):
        if path.is_file():
            destination = target / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(path.read_bytes())


def _shown(path: Path, root: Path) -> str:
    try:
        return f"(bundle) {path.relative_to(root).as_posix()}"
    except ValueError:
        return str(path)


def _merge(target: Stage, renders: Sequence[RenderResult]) -> RenderResult:
    files: dict[str, bytes] = {}
    pipelines = {}
    for render in renders:
        files.update(render.files)
        pipelines.update(render.pipelines)
    return RenderResult(
        stage=target.name,
        airflow_version=target.airflow.version,
        files=dict(sorted(files.items())),
        pipelines=dict(sorted(pipelines.items())),
    )


def _builds(
    target: Stage,
    render: RenderResult,
    bundles: Mapping[str, Bundle],
    templates: Mapping[str, Bundle],
    commits: Mapping[str, str | None],
    unchecked: Mapping[str, tuple[str, ...]],
) -> tuple[PipelineBuild, ...]:
    builds = []
    for name, rendered in sorted(render.pipelines.items()):
        scripts = {
            target.scripts_prefix + PurePosixPath(path).relative_to(SCRIPTS_DIR).as_posix(): (
                render.files[path]
            )
            for path in rendered.script_paths
        }
        dag_name = PurePosixPath(rendered.dag_path).relative_to(DAGS_DIR).as_posix()
        builds.append(
            PipelineBuild(
                name=name,
                bundle=bundles[name],
                templates=templates[name],
                dag_key=target.dags_prefix + dag_name,
                dag=render.files[rendered.dag_path],
                scripts=scripts,
                git_commit=commits.get(name),
                sql_unchecked=unchecked.get(name, ()),
            )
        )
    return tuple(builds)


def git_commits(
    root: Path, folders: Mapping[str, Path], templates_dir: Path
) -> dict[str, str | None]:
    """Per pipeline, the commit its folder and the templates come from (`<sha>-dirty` when
    either has uncommitted changes), or None outside a git repository."""
    try:
        head = _git(root, "rev-parse", "HEAD").strip()
        status = _git(root, "status", "--porcelain", "--untracked-files=all", "--", ".")
    except (OSError, subprocess.CalledProcessError):
        return dict.fromkeys(folders)
    top = Path(_git(root, "rev-parse", "--show-toplevel").strip()).resolve()
    changed = [
        (top / line[3:].split(" -> ")[-1].strip('"')).resolve() for line in status.splitlines()
    ]

    def dirty(folder: Path) -> bool:
        folder = folder.resolve()
        return any(path == folder or folder in path.parents for path in changed)

    templates_dirty = dirty(templates_dir)
    return {
        name: f"{head}-dirty" if templates_dirty or dirty(folder) else head
        for name, folder in folders.items()
    }


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], check=True, capture_output=True, text=True, timeout=30
    ).stdout
