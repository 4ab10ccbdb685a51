"""What a promotion moves: pipelines rendered for the target stage, with the sources they came from.

From the working tree (`promote --to dev`) the specs are validated and rendered as they are on
disk. From a stage (`promote --from dev --to staging`) the source bundles and template snapshots
recorded in that stage's manifest are fetched, verified against their hashes, validated together
and re-rendered for the target: the working tree's pipelines and templates play no part.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from mwaa_elt.errors import ConfigError
from mwaa_elt.project import Project
from mwaa_elt.promote.bundle import (
    Bundle,
    pack,
    pipeline_bundle,
    pipeline_files,
    unpack_verified,
)
from mwaa_elt.promote.inputs import Selection, folder_hash, inputs_hash
from mwaa_elt.promote.manifest import WORKING_TREE, Inputs, Manifest
from mwaa_elt.promote.plan import PipelineBuild
from mwaa_elt.promote.sources import fetch_recorded, restore_sources, write_files
from mwaa_elt.promote.store import StageStore
from mwaa_elt.render.result import DAGS_DIR, SCRIPTS_DIR, RenderResult
from mwaa_elt.spec.folder import discover_specs
from mwaa_elt.spec.summary import IncrementalValidation, SpecSummary
from mwaa_elt.stage import Stage

if TYPE_CHECKING:
    from mwaa_elt.spec.model import Pipeline


@dataclass(frozen=True)
class Prepared:
    """Pipelines rendered for the target stage, ready to plan, with the render they came from."""

    source: str  # "working-tree" or the source stage's name
    target: Stage
    render: RenderResult
    builds: tuple[PipelineBuild, ...]  # the pipelines whose inputs changed, rendered
    complete: bool  # every pipeline of the source is included, so pruning is meaningful
    # Pipelines whose inputs match what the target's manifest records: neither rendered nor
    # bundled, they stay as they are.
    unchanged: tuple[str, ...] = ()


def from_working_tree(
    project: Project,
    target: Stage,
    selection: Selection,
    templates: Bundle,
    environment: str,
    *,
    complete: bool,
    on_rendered: Callable[[RenderResult], None] = lambda _: None,
) -> Prepared:
    """Render the working-tree pipelines `selection` found changed for `target` (taking those
    an earlier render vouches for from it), bundle their folders and record their inputs; the
    unchanged ones are passed on by name. `on_rendered` is given the render as soon as it is
    whole, before the bundles are built."""
    pipelines, kept = selection.changed, selection.kept
    taken = RenderResult(
        target.name,
        target.airflow.version,
        {path: data for _, k in kept.values() for path, data in k.files.items()},
        {name: k.rendered for name, (_, k) in kept.items()},
    )
    render = _merge(
        target, [_render(dict(pipelines), target, project.templates_dir, project.root), taken]
    )
    on_rendered(render)
    folders = {name: pipeline.source_dir for name, pipeline in pipelines.items()}
    folders.update((name, spec.parent) for name, (spec, _) in kept.items())
    commits = git_commits(project.root, folders, project.templates_dir) if folders else {}
    # The bundle ships the spec and the files it names; the inputs digest covers the whole
    # folder, as validation does (`promote.inputs.select_working_tree` compares the same).
    bundles = {name: pipeline_bundle(pipeline) for name, pipeline in pipelines.items()}
    bundles.update((name, pack(pipeline_files(spec, k.named))) for name, (spec, k) in kept.items())
    unchecked = _unchecked_sql(pipelines)
    unchecked.update((name, k.unchecked) for name, (_, k) in kept.items())
    inputs = {}
    for name, folder in folders.items():
        spec, summary = selection.summaries[name]
        source = selection.hashes.get(folder) or folder_hash(folder)
        digest = inputs_hash(environment, source, templates.source_hash)
        inputs[name] = Inputs(
            hash=digest, spec=spec, produces=summary.produces, after=summary.after
        )
    builds = _builds(
        target, render, bundles, dict.fromkeys(folders, templates), commits, unchecked, inputs
    )
    return Prepared(WORKING_TREE, target, render, builds, complete, selection.unchanged)


def from_stage(
    stages: Mapping[str, Stage],
    source_store: StageStore,
    target: Stage,
    names: Sequence[str] | None,
    *,
    target_manifest: Manifest | None = None,
    environment: str | None = None,
    force: Collection[str] = (),
    on_rendered: Callable[[RenderResult], None] = lambda _: None,
) -> Prepared:
    """Re-render for `target` exactly the versions live in the source stage's manifest.

    With the target's manifest and the `environment` digest, a live version whose inputs the
    target already records is neither fetched nor rendered; the checks across specs still see
    every live spec (the unchanged ones by their recorded summary). `on_rendered` is given the
    render as soon as it is whole.
    """
    source = source_store.stage.name
    manifest, _ = source_store.load_manifest()
    if not manifest.pipelines:
        raise ConfigError(
            f"nothing is live in stage {source} (no pipelines in "
            f"{source_store.uri(source_store.stage.manifest_key)}); promote into {source} first"
        )
    selected = _select(manifest, names, source)
    digests = {
        name: inputs_hash(environment, record.source_hash, record.templates_hash)
        for name, record in manifest.pipelines.items()
        if environment is not None
    }
    trusted: dict[str, Inputs] = {}
    for name, digest in digests.items():
        record = (target_manifest or Manifest(stage=target.name)).pipelines.get(name)
        if name in force or record is None or record.inputs is None:
            continue
        if record.inputs.hash == digest:
            trusted[name] = record.inputs
    to_render = [name for name in selected if name not in trusted]
    with tempfile.TemporaryDirectory(prefix="mwaa-elt-promote-") as scratch:
        root = Path(scratch)
        folder = root / "pipelines"
        fetched = [name for name in sorted(manifest.pipelines) if name not in trusted]
        bundles = restore_sources(source_store, manifest, folder, fetched)
        # Every live spec is validated together, so cross-pipeline schedules still resolve.
        summaries = {
            folder / inputs.spec: SpecSummary(name, inputs.produces, inputs.after)
            for name, inputs in trusted.items()
        }
        validation = _validate(stages, discover_specs(folder), summaries)
        if not validation.report.ok and trusted:  # locate the problem with every spec at hand
            bundles.update(restore_sources(source_store, manifest, folder, sorted(trusted)))
            validation = _validate(stages, discover_specs(folder), {})
        report = validation.report
        if not report.ok:
            raise ConfigError(
                [f"{_shown(p.path, root)}:{p.line}:{p.col}: {p.message}" for p in report.problems]
                + [
                    f"the versions live in {source} are not valid for the current stage "
                    f"configuration; fix the specs and promote them into {source} again"
                ]
            )
        templates = _restore_templates(source_store, manifest, to_render, root / "templates")
        renders = []
        for templates_hash in sorted({manifest.pipelines[n].templates_hash for n in to_render}):
            group = {
                name: report.pipelines[name]
                for name in to_render
                if manifest.pipelines[name].templates_hash == templates_hash
            }
            templates_folder = root / "templates" / templates_hash
            renders.append(_render(group, target, templates_folder, root))
    render = _merge(target, renders)
    on_rendered(render)
    commits = {name: manifest.pipelines[name].git_commit for name in to_render}
    chosen = {name: bundles[name] for name in to_render}
    by_name = {name: templates[manifest.pipelines[name].templates_hash] for name in to_render}
    inputs = {}
    if environment is not None:
        for spec, summary in validation.summaries.items():
            if summary.name in chosen:
                inputs[summary.name] = Inputs(
                    hash=digests[summary.name],
                    spec=spec.relative_to(folder).as_posix(),
                    produces=summary.produces,
                    after=summary.after,
                )
    unchecked = _unchecked_sql({name: report.pipelines[name] for name in to_render})
    builds = _builds(target, render, chosen, by_name, commits, unchecked, inputs)
    unchanged = tuple(name for name in selected if name in trusted)
    return Prepared(source, target, render, builds, complete=names is None, unchanged=unchanged)


def _validate(
    stages: Mapping[str, Stage], specs: Sequence[Path], trusted: Mapping[Path, SpecSummary]
) -> IncrementalValidation:
    """Validate `specs` together with the `trusted` ones, known by their summary alone."""
    from mwaa_elt.spec.validate import validate_incremental

    paths = sorted({*specs, *trusted})
    return validate_incremental(paths, dict(stages), trusted)


def _render(
    pipelines: Mapping[str, Any], target: Stage, templates_dir: Path, root: Path
) -> RenderResult:
    """`render_pipelines`, imported (with Jinja and the SQL parser) only when there is work."""
    if not pipelines:
        return RenderResult(target.name, target.airflow.version, {}, {})
    from mwaa_elt.render import render_pipelines

    return render_pipelines(dict(pipelines), target, templates_dir, project_root=root)


def _unchecked_sql(pipelines: Mapping[str, Pipeline]) -> dict[str, tuple[str, ...]]:
    """`spec.analysis.unchecked_sql` of each pipeline; the SQL parser is imported only when
    there is a pipeline to render."""
    if not pipelines:
        return {}
    from mwaa_elt.spec.analysis import unchecked_sql

    return {name: unchecked_sql(pipeline) for name, pipeline in pipelines.items()}


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


def _restore_templates(
    store: StageStore, manifest: Manifest, selected: Sequence[str], folder: Path
) -> dict[str, Bundle]:
    """Write each template snapshot the selected pipelines were rendered with, verified, into
    `folder/<its hash>/`; the snapshots, by hash."""
    keys = {}
    for name in selected:
        record = manifest.pipelines[name]
        keys.setdefault(record.templates_hash, record.templates_key)
    bodies = fetch_recorded(store, sorted(keys.items()), "dag_templates snapshot")
    snapshots: dict[str, Bundle] = {}
    for templates_hash, data in bodies.items():
        write_files(unpack_verified(data, templates_hash), folder / templates_hash)
        snapshots[templates_hash] = Bundle(templates_hash, data)
    return snapshots


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
    inputs: Mapping[str, Inputs] | None = None,
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
                inputs=(inputs or {}).get(name),
            )
        )
    return tuple(builds)


def git_commits(
    root: Path, folders: Mapping[str, Path], templates_dir: Path
) -> dict[str, str | None]:
    """Per pipeline, the commit its folder and the templates come from (`<sha>-dirty` when
    either has uncommitted changes), or None outside a git repository.

    One pass over `git status`: every changed path marks itself and its parent folders dirty,
    so the cost grows with the changed paths plus the pipelines, never with their product.
    """
    try:
        head = _git(root, "rev-parse", "HEAD").strip()
        status = _git(root, "status", "--porcelain", "-z", "--untracked-files=all", "--", ".")
        top = Path(_git(root, "rev-parse", "--show-toplevel").strip()).resolve()
    except (OSError, subprocess.CalledProcessError):
        return dict.fromkeys(folders)
    dirty_folders = _changed_folders(status)

    def dirty(folder: Path) -> bool:
        try:
            relative = folder.resolve().relative_to(top).as_posix()
        except ValueError:  # outside the repository: git cannot vouch for it
            return True
        return relative in dirty_folders or (relative == "." and bool(dirty_folders))

    templates_dirty = dirty(templates_dir)
    return {
        name: f"{head}-dirty" if templates_dirty or dirty(folder) else head
        for name, folder in folders.items()
    }


def _changed_folders(status: str) -> set[str]:
    """Every path `git status --porcelain -z` names (both sides of a rename) and each folder
    above it, relative to the top of the repository."""
    changed: set[str] = set()
    fields = status.split("\0")
    index = 0
    while index < len(fields):
        entry = fields[index]
        index += 1
        if len(entry) < 4:
            continue
        paths = [entry[3:]]
        if entry[0] in "RC" or entry[1] in "RC":  # a rename's origin follows as its own field
            paths.append(fields[index])
            index += 1
        for path in paths:
            parts = PurePosixPath(path.rstrip("/")).parts
            for depth in range(1, len(parts) + 1):
                changed.add("/".join(parts[:depth]))
    return changed


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], check=True, capture_output=True, text=True, timeout=30
    ).stdout
